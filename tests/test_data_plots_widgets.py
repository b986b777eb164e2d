"""Unit tests for the toy data, the shared plots and the headless-friendly widgets."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from IPython.display import Image
from ipywidgets import FloatSlider, IntSlider
from matplotlib.figure import Figure

from labs.course import LESSONS
from labs.data import make_spirals
from labs.plots import LiveLossPlot, aigc_map, decision_regions
from labs.widgets import Explorer, explore


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------- make_spirals


def test_spirals_shapes_and_dtypes():
    """X is (N, 2) float32 and y is (N,) int64 with N = n_per_class * n_classes."""
    X, y = make_spirals(n_per_class=50, n_classes=4)
    assert X.shape == (200, 2) and X.dtype == torch.float32
    assert y.shape == (200,) and y.dtype == torch.int64


def test_spirals_labels_balanced_and_in_range():
    """Every class appears exactly n_per_class times and labels lie in [0, n_classes)."""
    _, y = make_spirals(n_per_class=30, n_classes=3)
    assert int(y.min()) == 0 and int(y.max()) == 2
    assert torch.bincount(y).tolist() == [30, 30, 30]


def test_spirals_are_shuffled_and_bounded():
    """Classes are interleaved (not in blocks) and points lie in [-1, 1]."""
    X, y = make_spirals(n_per_class=100, n_classes=3)
    assert not torch.equal(y, y.sort().values)
    assert float(X.abs().max()) <= 1.0
    assert torch.isfinite(X).all()


def test_spirals_deterministic_per_seed():
    """The same seed gives the same data; another seed gives other data."""
    X1, y1 = make_spirals(seed=3)
    X2, y2 = make_spirals(seed=3)
    X3, _ = make_spirals(seed=4)
    assert torch.equal(X1, X2) and torch.equal(y1, y2)
    assert not torch.equal(X1, X3)


def test_spirals_leave_the_global_rng_alone():
    """Generating data does not consume the global torch random stream."""
    torch.manual_seed(0)
    expected = torch.randn(3)
    torch.manual_seed(0)
    make_spirals()
    assert torch.equal(torch.randn(3), expected)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_per_class": 0}, {"n_classes": 1}, {"noise": -0.1}],
    ids=["no-points", "one-class", "negative-noise"],
)
def test_spirals_invalid_arguments(kwargs):
    """Empty classes, a single class or negative noise are rejected."""
    with pytest.raises(ValueError):
        make_spirals(**kwargs)


# --------------------------------------------------------------------------- aigc_map


def _normalise(text: str) -> str:
    return " ".join(text.split())


def test_aigc_map_shows_every_lesson():
    """The course map has a box starting with each lesson's number and (unwrapped) title."""
    fig = aigc_map()
    assert isinstance(fig, Figure)
    texts = [_normalise(t.get_text()) for t in fig.axes[0].texts]
    for lesson in LESSONS:
        label = f"{lesson.number} {lesson.title}"
        assert any(t.startswith(label) for t in texts), f"no box for {label!r} in {texts}"


# --------------------------------------------------------------------------- LiveLossPlot


def test_live_loss_plot_records_history():
    """update appends (step, value) for each named series."""
    plot = LiveLossPlot("demo")
    plot.update(0, train=2.0, val=2.5)
    plot.update(10, train=1.0, val=torch.tensor(1.5))
    assert plot.history["train"] == ([0, 10], [2.0, 1.0])
    assert plot.history["val"] == ([0, 10], [2.5, 1.5])


def test_live_loss_plot_figure_has_one_line_per_series():
    """figure() draws one line per series, titled, log scale for positive losses."""
    plot = LiveLossPlot("demo")
    for step in range(5):
        plot.update(step, train=1.0 / (step + 1), val=1.2 / (step + 1))
    fig = plot.figure()
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["train", "val"]
    assert list(ax.get_lines()[0].get_xdata()) == [0, 1, 2, 3, 4]
    assert ax.get_title() == "demo"
    assert ax.get_yscale() == "log"


def test_live_loss_plot_linear_scale_for_non_positive_values():
    """A zero or negative value switches to a linear y axis (log would fail)."""
    plot = LiveLossPlot()
    plot.update(0, reward=-1.0)
    plot.update(1, reward=0.5)
    assert plot.figure().axes[0].get_yscale() == "linear"


def test_live_loss_plot_close_returns_figure_without_leaking():
    """close() returns the final figure, already closed in pyplot."""
    before = set(plt.get_fignums())
    plot = LiveLossPlot()
    plot.update(0, train=1.0)
    fig = plot.close()
    assert isinstance(fig, Figure)
    assert len(fig.axes[0].get_lines()) == 1
    assert set(plt.get_fignums()) == before


def test_live_loss_plot_empty_figure():
    """A plot with no data still produces a figure."""
    assert isinstance(LiveLossPlot().figure(), Figure)


# --------------------------------------------------------------------------- decision_regions


def test_decision_regions_returns_figure():
    """decision_regions colours a grid by a predict_proba and returns a closed Figure."""
    X, y = make_spirals(n_per_class=20, n_classes=3)
    seen = {}

    def predict_proba(points: torch.Tensor) -> torch.Tensor:
        seen["shape"] = tuple(points.shape)
        logits = torch.stack([points[:, 0], points[:, 1], -points[:, 0]], dim=1)
        return torch.softmax(logits, dim=1)

    before = set(plt.get_fignums())
    fig = decision_regions(predict_proba, X, y, title="dummy", resolution=20)
    assert isinstance(fig, Figure)
    assert seen["shape"] == (400, 2)
    ax = fig.axes[0]
    assert ax.get_title() == "dummy"
    assert ax.images[0].get_array().shape == (20, 20, 3)
    assert set(plt.get_fignums()) == before


# --------------------------------------------------------------------------- widgets.explore


def _recording_draw(calls: list):
    def draw(temperature, n):
        calls.append({"temperature": temperature, "n": n})
        fig, ax = plt.subplots()
        ax.set_title(f"T={temperature} n={n}")
        return fig

    return draw


def test_explore_draws_once_with_defaults():
    """Outside a notebook explore draws once, with each control's default value."""
    calls = []
    explorer = explore(
        _recording_draw(calls), temperature=FloatSlider(value=1.0, min=0.1, max=5.0), n=IntSlider(3)
    )
    assert isinstance(explorer, Explorer)
    assert calls == [{"temperature": 1.0, "n": 3}]
    assert explorer.renders == 1
    assert explorer.values() == {"temperature": 1.0, "n": 3}
    assert isinstance(explorer.output, Image) and explorer.output.data.startswith(b"\x89PNG")


def test_explore_redraws_on_change():
    """Moving a control redraws with the new value and replaces the output."""
    calls = []
    slider = FloatSlider(value=1.0, min=0.1, max=5.0)
    explorer = explore(_recording_draw(calls), temperature=slider, n=IntSlider(3))
    first = explorer.output
    slider.value = 2.5
    assert calls[-1] == {"temperature": 2.5, "n": 3}
    assert len(calls) == 2
    assert explorer.output is not first
    assert explorer.output.data != first.data  # the new title is in the picture


def test_explore_needs_a_control():
    """explore without controls is an error."""
    with pytest.raises(ValueError, match="at least one control"):
        explore(lambda: None)


def test_explore_closes_its_figures():
    """Figures returned by draw are closed: pyplot's figure list does not grow."""
    before = set(plt.get_fignums())
    slider = IntSlider(value=1, min=0, max=10)
    explore(_recording_draw([]), temperature=FloatSlider(1.0), n=slider)
    for value in (2, 3, 4):
        slider.value = value
    assert set(plt.get_fignums()) == before


def test_explore_accepts_non_figure_output():
    """draw may return anything displayable; it becomes the output as is."""
    slider = IntSlider(value=2)
    explorer = explore(lambda k: f"k={k}", k=slider)
    assert explorer.output == "k=2"
    slider.value = 5
    assert explorer.output == "k=5"
