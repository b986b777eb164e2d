"""Pictures the lessons share: the course map, live loss curves, decision regions,
attention heat maps."""

from __future__ import annotations

import io
import itertools
import textwrap
import time
from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from labs.course import LESSONS
from labs.display import in_notebook

# ----------------------------------------------------------------------------- the map

_MODALITIES = (
    ("Text", "chat, writing, translation\nChatGPT, Claude, Llama", "#4c72b0"),
    ("Code", "completion, program-aided reasoning\nCodex, Copilot", "#55a868"),
    ("Image", "text-to-image, editing\nStable Diffusion, DALL·E", "#c44e52"),
    ("Audio & video", "speech, music, video\nthe same ideas: tokens + diffusion", "#8172b2"),
)
_TRACK_COLOURS = {"start": "#999999", "language": "#4c72b0", "vision": "#c44e52"}


def _box(ax, x, y, w, h, text, colour, *, fontsize=9, alpha=0.18, weight="normal"):
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.03",
            facecolor=colour,
            alpha=alpha,
            edgecolor=colour,
            linewidth=1.5,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, weight=weight, wrap=True)


def _arrow(ax, start, end, colour="#555555", style="-|>", alpha=1.0, linestyle="-"):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=12,
            color=colour,
            alpha=alpha,
            linewidth=1.2,
            linestyle=linestyle,
            shrinkA=2,
            shrinkB=2,
        )
    )


def aigc_map() -> Figure:
    """The AIGC landscape and where each technique of the course is built.

    Left: the two tracks of lessons, language (01-07) and vision (08-10). Right: what
    generative AI makes (text, code, image, audio/video) and which track feeds it.
    """
    fig, ax = plt.subplots(figsize=(14, 5.4))
    ax.set_xlim(0, 15)
    ax.set_ylim(0.3, 5.9)
    ax.axis("off")
    ax.text(
        5.4,
        5.55,
        "What you build in this course (lesson numbers)",
        ha="center",
        fontsize=13,
        weight="bold",
    )
    ax.text(13.0, 5.55, "What generative AI makes", ha="center", fontsize=13, weight="bold")

    outputs = {}
    for (name, examples, colour), y in zip(_MODALITIES, (4.6, 3.5, 2.2, 1.1), strict=True):
        outputs[name] = (11.3, y)
        _box(ax, 13.0, y, 3.4, 0.9, f"{name}\n{examples}", colour, fontsize=8.5)

    centres: dict[str, tuple[float, float]] = {}
    language = [lesson for lesson in LESSONS if lesson.track == "language"]
    for i, lesson in enumerate(language):
        centres[lesson.number] = (0.85 + i * 1.55, 4.0)
    for i, lesson in enumerate(lesson for lesson in LESSONS if lesson.track == "vision"):
        centres[lesson.number] = (5.6 + i * 2.05, 1.8)
    widths = {"language": 1.4, "vision": 1.7}
    for lesson in LESSONS:
        if lesson.number not in centres:
            continue
        x, y = centres[lesson.number]
        title = textwrap.fill(lesson.title, 16)
        _box(
            ax,
            x,
            y,
            widths[lesson.track],
            0.9,
            f"{lesson.number}\n{title}",
            _TRACK_COLOURS[lesson.track],
            fontsize=8.5,
        )
    for track, gap in (("language", 1.4), ("vision", 1.7)):
        numbers = [lesson.number for lesson in LESSONS if lesson.track == track]
        for a, b in itertools.pairwise(numbers):
            (xa, ya), (xb, yb) = centres[a], centres[b]
            _arrow(ax, (xa + gap / 2, ya), (xb - gap / 2, yb))
    _box(
        ax,
        2.0,
        1.8,
        3.3,
        0.9,
        "00 Welcome: environment, checks,\nwidgets, checkpoints",
        _TRACK_COLOURS["start"],
        fontsize=8.5,
    )

    ax.text(
        0.15,
        4.62,
        "language track: towards a chat model",
        fontsize=9.5,
        color=_TRACK_COLOURS["language"],
    )
    ax.text(
        5.9,
        2.42,
        "vision track: towards a text-to-image model",
        fontsize=9.5,
        color=_TRACK_COLOURS["vision"],
    )
    # CLIP's text encoder is the transformer of the language track.
    (x3, y3), (x8, y8) = centres["03"], centres["08"]
    _arrow(ax, (x3 + 0.2, y3 - 0.45), (x8 - 0.5, y8 + 0.45), "#777777", linestyle="--")
    ax.text(4.55, 3.05, "the transformer becomes\nCLIP's text encoder", fontsize=8, color="#555555")
    (x7, y7), (x10, y10) = centres["07"], centres["10"]
    for name in ("Text", "Code"):
        _arrow(ax, (x7 + 0.7, y7), outputs[name], _TRACK_COLOURS["language"])
    _arrow(ax, (x10 + 0.85, y10), outputs["Image"], _TRACK_COLOURS["vision"])
    _arrow(
        ax,
        (x10 + 0.85, y10),
        outputs["Audio & video"],
        _TRACK_COLOURS["vision"],
        alpha=0.6,
        linestyle="--",
    )
    ax.text(
        0.15,
        0.55,
        "Also along the way: scaling laws and emergent abilities (03), program-aided reasoning (05), "
        "GAN / VAE / flow models (09).",
        fontsize=8.5,
        color="#555555",
    )
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- training


def as_image(fig: Figure) -> Any:
    """A PNG ``IPython.display.Image`` of ``fig``, whatever matplotlib backend is active.

    Used for outputs that are redrawn in place (``display_id``): the inline backend's
    automatic figure display does not apply to them.
    """
    from IPython.display import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight")
    plt.close(fig)
    return Image(data=buffer.getvalue(), format="png")


class LiveLossPlot:
    """A loss curve that redraws while training runs (at most every ``every_seconds``).

    >>> plot = LiveLossPlot("spiral classifier")
    >>> for step in range(steps): ...; plot.update(step, train=loss)
    >>> plot.close()   # final figure, also shown when the notebook runs headless
    """

    def __init__(
        self,
        title: str = "training",
        *,
        every_seconds: float = 2.0,
        xlabel: str = "step",
        logy: bool = True,
    ) -> None:
        self.title = title
        self.every_seconds = every_seconds
        self.xlabel = xlabel
        self.logy = logy
        self.history: dict[str, tuple[list[float], list[float]]] = {}
        self._handle = None
        self._last_draw = 0.0

    def update(self, step: int, **values: float) -> None:
        for name, value in values.items():
            steps, ys = self.history.setdefault(name, ([], []))
            steps.append(step)
            ys.append(float(value))
        if in_notebook() and time.monotonic() - self._last_draw >= self.every_seconds:
            self._show(self.figure())

    def figure(self) -> Figure:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        for name, (steps, ys) in self.history.items():
            ax.plot(steps, ys, label=name, marker="o" if len(ys) < 30 else None, markersize=3)
        if self.logy and all(y > 0 for _, ys in self.history.values() for y in ys):
            ax.set_yscale("log")
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel("loss")
        ax.set_title(self.title)
        if self.history:
            ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        plt.close(fig)
        return fig

    def _show(self, fig: Figure) -> None:
        from IPython.display import display

        if self._handle is None:
            self._handle = display(as_image(fig), display_id=True)
        else:
            self._handle.update(as_image(fig))
        self._last_draw = time.monotonic()

    def close(self) -> Figure:
        """Draw the final curve (in the notebook) and return it."""
        fig = self.figure()
        if in_notebook():
            self._show(fig)
        return fig


def decision_regions(
    predict_proba: Callable[[torch.Tensor], torch.Tensor],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    title: str = "",
    resolution: int = 150,
) -> Figure:
    """Colour the plane by the predicted class (paler where the model is unsure).

    ``predict_proba`` maps points ``(N, 2)`` to class probabilities ``(N, C)``.
    """
    colours = np.array(plt.get_cmap("tab10").colors)
    lo, hi = X.min(0).values - 0.2, X.max(0).values + 0.2
    gx, gy = torch.meshgrid(
        torch.linspace(float(lo[0]), float(hi[0]), resolution),
        torch.linspace(float(lo[1]), float(hi[1]), resolution),
        indexing="xy",
    )
    grid = torch.stack([gx.flatten(), gy.flatten()], dim=1)
    with torch.no_grad():
        probs = predict_proba(grid).detach().cpu().numpy()
    confidence = probs.max(1, keepdims=True)
    image = np.clip(
        colours[probs.argmax(1)] * confidence + (1 - confidence), 0, 1
    )  # blend to white
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.imshow(
        image.reshape(resolution, resolution, 3),
        origin="lower",
        extent=(float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])),
        alpha=0.55,
    )
    labels = y.detach().cpu().numpy() % len(colours)
    ax.scatter(X[:, 0].cpu(), X[:, 1].cpu(), c=colours[labels], s=8, edgecolors="k", linewidths=0.2)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    plt.close(fig)
    return fig


# ----------------------------------------------------------------------------- attention


def plot_attention(
    weights: torch.Tensor,
    queries: list[str],
    keys: list[str] | None = None,
    *,
    ax=None,
    title: str = "",
    annotate: bool = True,
    highlight_row: int | None = None,
):
    """Heat map of attention weights (T_q, T_k): one row per query, one column per key.

    Returns the matplotlib Axes. ``highlight_row`` outlines one query's row.
    """
    weights = weights.detach().float().cpu()
    if weights.dim() != 2:
        raise ValueError(f"plot_attention expects weights (T_q, T_k), got {tuple(weights.shape)}")
    keys = queries if keys is None else keys
    if weights.shape != (len(queries), len(keys)):
        raise ValueError(
            f"weights {tuple(weights.shape)} do not match {len(queries)} query and "
            f"{len(keys)} key labels"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * len(keys) + 1.5, 0.4 * len(queries) + 1.2))
    ax.imshow(weights.numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(keys)), keys, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(queries)), queries, fontsize=8)
    ax.set_xlabel("key (attended to)", fontsize=8)
    ax.set_ylabel("query", fontsize=8)
    if annotate and weights.numel() <= 400:
        for (i, j), w in zip(
            ((i, j) for i in range(weights.shape[0]) for j in range(weights.shape[1])),
            weights.flatten().tolist(),
            strict=True,
        ):
            if w >= 0.005:
                text = f"{w:.2f}".removeprefix("0")  # ".37", "1.00"
                colour = "white" if w > 0.6 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color=colour)
    if highlight_row is not None:
        ax.add_patch(
            Rectangle(
                (-0.5, highlight_row - 0.5),
                len(keys),
                1,
                fill=False,
                edgecolor="#c44e52",
                linewidth=2,
            )
        )
    ax.set_title(title, fontsize=9)
    return ax
