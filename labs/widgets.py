"""Interactive explorers that also work headless.

``explore(draw, temperature=FloatSlider(...))`` displays the controls and, below
them, ``draw(**values)`` for the current values as an ordinary cell output. Moving a
control redraws that same output in place. Headless runs (papermill, nbval, the
static site) therefore keep the default picture as a static figure, and a live
JupyterLab gets the interactive one. No ``interact``/``clear_output`` involved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from matplotlib.figure import Figure

from labs.display import in_notebook
from labs.plots import as_image


class Explorer:
    """Controls plus one output that ``draw`` fills; returned by :func:`explore`."""

    def __init__(self, draw: Callable[..., Any], controls: dict[str, Any]) -> None:
        if not controls:
            raise ValueError(
                "explore() needs at least one control, e.g. temperature=FloatSlider(...)"
            )
        self.draw = draw
        self.controls = controls
        self.renders = 0
        self._handle = None
        self.output = self._render()

    def values(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def _render(self) -> Any:
        """Call ``draw``; a figure becomes a PNG image, so it shows under any backend."""
        result = self.draw(**self.values())
        self.renders += 1
        if isinstance(result, Figure):
            return as_image(result)  # also closes it: shown through the handle only
        return result

    def _on_change(self, change: dict[str, Any]) -> None:
        self.output = self._render()
        if self._handle is not None:
            self._handle.update(self.output)

    def _ipython_display_(self) -> None:
        """Already on screen: a trailing ``explore(...)`` in a cell shows nothing more."""

    def show(self) -> Explorer:
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        if in_notebook():
            import ipywidgets
            from IPython.display import display

            display(ipywidgets.VBox(list(self.controls.values())))
            self._handle = display(self.output, display_id=True)
        return self


def explore(draw: Callable[..., Any], **controls: Any) -> Explorer:
    """Show ``controls`` (ipywidgets) and ``draw(**values)`` below them, redrawn on change.

    ``draw`` returns a matplotlib figure or anything IPython can display.
    """
    return Explorer(draw, controls).show()
