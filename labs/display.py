"""Showing things: in a notebook through IPython's display, elsewhere as printed text."""

from __future__ import annotations

from typing import Any


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, papermill, nbval), False in plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the course
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def show(obj: Any) -> None:
    """Display ``obj`` in a notebook; print its ``text()`` (or itself) outside one."""
    if in_notebook():
        from IPython.display import display

        display(obj)
    else:
        print(obj.text() if hasattr(obj, "text") else obj)
