"""Unit tests for ``labs.outcomes``: bounds, evaluation and outcome reports."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from labs.outcomes import (
    MODES,
    OUTCOME_MIMETYPE,
    TARGETS,
    Bound,
    Outcome,
    evaluate,
    report_outcome,
)

LESSON = "00_welcome"
GOOD = {"env_failures": 0, "softmax_max_abs_err": 0.0, "spiral_val_accuracy": 0.99}


# --------------------------------------------------------------------------- Bound


@pytest.mark.parametrize(
    ("op", "limit", "value", "met"),
    [
        (">=", 0.9, 0.9, True),
        (">=", 0.9, 0.89, False),
        ("<=", 1e-6, 1e-7, True),
        ("<=", 1e-6, 1e-5, False),
        ("==", 0, 0, True),
        ("==", 0, 1, False),
        ("<", 1.0, 0.5, True),
        ("<", 1.0, 1.0, False),
        (">", 1.0, 1.5, True),
        (">", 1.0, 1.0, False),
    ],
)
def test_bound_ops(op, limit, value, met):
    """Each comparison operator behaves as written."""
    assert Bound(op, limit).met(value) is met


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf])
def test_bound_not_met_by_missing_or_non_finite(value):
    """None, NaN and inf never meet a bound, whatever the direction."""
    assert not Bound("<=", 1e9).met(value)
    assert not Bound(">=", -1e9).met(value)


def test_bound_str():
    """A bound prints as ``op limit``."""
    assert str(Bound(">=", 0.95)) == ">= 0.95"
    assert str(Bound("<=", 1e-6)) == "<= 1e-06"


@pytest.mark.parametrize("op", ["=>", "!=", "", "ge"])
def test_invalid_op_raises(op):
    """An unknown comparison is rejected when the bound is made."""
    with pytest.raises(ValueError, match="unknown comparison"):
        Bound(op, 1.0)


# --------------------------------------------------------------------------- evaluate


def test_evaluate_all_met():
    """Good metrics meet every full bound."""
    results = evaluate(LESSON, "full", GOOD)
    assert {r.metric for r in results} == set(TARGETS[LESSON]["full"])
    assert all(r.met for r in results)


def test_evaluate_missing_metric_is_not_met():
    """A metric the bounds name but the notebook did not report counts as missed."""
    metrics = dict(GOOD)
    del metrics["spiral_val_accuracy"]
    results = {r.metric: r for r in evaluate(LESSON, "full", metrics)}
    assert results["spiral_val_accuracy"].value is None
    assert not results["spiral_val_accuracy"].met
    assert results["env_failures"].met


def test_evaluate_depends_on_mode():
    """An accuracy good enough for smoke mode can miss the full target."""
    metrics = dict(GOOD, spiral_val_accuracy=0.6)
    smoke = {r.metric: r.met for r in evaluate(LESSON, "smoke", metrics)}
    full = {r.metric: r.met for r in evaluate(LESSON, "full", metrics)}
    assert smoke["spiral_val_accuracy"] and not full["spiral_val_accuracy"]


def test_evaluate_unknown_lesson():
    """An unknown lesson is a KeyError pointing at TARGETS."""
    with pytest.raises(KeyError, match="TARGETS"):
        evaluate("99_nope", "full", GOOD)


def test_evaluate_bad_mode():
    """Only 'smoke' and 'full' are modes."""
    with pytest.raises(ValueError, match="smoke"):
        evaluate(LESSON, "quick", GOOD)


def test_bound_result_to_json():
    """A bound result serialises to value, bound text and met."""
    result = evaluate(LESSON, "full", GOOD)[0]
    record = json.loads(json.dumps(result.to_json()))
    assert set(record) == {"value", "bound", "met"}
    assert record["bound"] == str(result.bound)


# --------------------------------------------------------------------------- report_outcome


def test_report_outcome_rejects_non_numbers():
    """A metric that is not a number is a TypeError naming the metric."""
    with pytest.raises(TypeError, match="spiral_val_accuracy"):
        report_outcome(LESSON, smoke=True, spiral_val_accuracy="high")


def test_report_outcome_needs_metrics():
    """Reporting nothing is an error."""
    with pytest.raises(ValueError, match="at least one metric"):
        report_outcome(LESSON, smoke=True)


def test_report_outcome_unknown_lesson():
    """An unknown lesson is a KeyError pointing at TARGETS."""
    with pytest.raises(KeyError, match="TARGETS"):
        report_outcome("99_nope", smoke=True, accuracy=1.0)


def test_report_outcome_prints_a_table_outside_ipython(capsys):
    """Outside IPython the outcome prints as a text table naming each metric."""
    report_outcome(LESSON, smoke=False, **GOOD)
    out = capsys.readouterr().out
    assert LESSON in out
    assert "full mode" in out
    for name in GOOD:
        assert name in out
    assert "NO" not in out


def test_report_outcome_converts_nan_and_inf_to_missing(capsys):
    """NaN and inf are reported as n/a and miss their bounds."""
    report_outcome(
        LESSON, smoke=True, env_failures=0, softmax_max_abs_err=math.nan, spiral_val_accuracy=1.0
    )
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("softmax_max_abs_err"))
    assert "n/a" in line
    assert line.rstrip().endswith("NO")


def test_outcome_cleans_tensors_numpy_and_bools(monkeypatch):
    """Tensors, NumPy scalars and bools become floats; NaN/inf become None."""
    shown = []
    monkeypatch.setattr("labs.outcomes.show", shown.append)
    report_outcome(
        LESSON,
        smoke=True,
        env_failures=np.int64(0),
        softmax_max_abs_err=torch.tensor(1e-7),
        spiral_val_accuracy=True,
        extra_nan=float("nan"),
        extra_inf=torch.tensor(float("inf")),
    )
    (outcome,) = shown
    assert isinstance(outcome, Outcome)
    assert outcome.mode == "smoke"
    metrics = outcome.metrics
    assert metrics["env_failures"] == 0.0 and isinstance(metrics["env_failures"], float)
    assert metrics["softmax_max_abs_err"] == pytest.approx(1e-7)
    assert metrics["spiral_val_accuracy"] == 1.0
    assert metrics["extra_nan"] is None
    assert metrics["extra_inf"] is None


# --------------------------------------------------------------------------- Outcome


def test_outcome_mimebundle():
    """The bundle carries the outcome record under OUTCOME_MIMETYPE."""
    outcome = Outcome(LESSON, "full", dict(GOOD))
    bundle = outcome._repr_mimebundle_()
    assert set(bundle) >= {"text/plain", "text/html", OUTCOME_MIMETYPE}
    record = json.loads(json.dumps(bundle[OUTCOME_MIMETYPE]))
    assert record == {"lesson": LESSON, "mode": "full", "metrics": GOOD}
    assert outcome.met


def test_outcome_text_marks_missed_bound_with_no():
    """A missed bound is marked NO on its metric's row."""
    outcome = Outcome(LESSON, "full", dict(GOOD, spiral_val_accuracy=0.5))
    assert not outcome.met
    rows = outcome.text().splitlines()
    row = next(r for r in rows if r.startswith("spiral_val_accuracy"))
    assert row.rstrip().endswith("NO")
    assert ">= 0.95" in row
    ok_row = next(r for r in rows if r.startswith("env_failures"))
    assert ok_row.rstrip().endswith("yes")


def test_outcome_text_lists_missing_metric():
    """A bounded metric that was not reported appears as 'missing' and NO."""
    metrics = dict(GOOD)
    del metrics["spiral_val_accuracy"]
    outcome = Outcome(LESSON, "full", metrics)
    assert not outcome.met
    row = next(r for r in outcome.text().splitlines() if r.startswith("spiral_val_accuracy"))
    assert "missing" in row
    assert row.rstrip().endswith("NO")


def test_outcome_html_lists_missing_metric():
    """The HTML view (what JupyterLab shows) lists a missing bounded metric, like the text does."""
    metrics = dict(GOOD)
    del metrics["spiral_val_accuracy"]
    html = Outcome(LESSON, "full", metrics)._repr_mimebundle_()["text/html"]
    assert "spiral_val_accuracy" in html
    assert "missing" in html


def test_outcome_text_shows_unbounded_extra_metric():
    """An extra metric without a bound is shown, neither met nor missed."""
    outcome = Outcome(LESSON, "full", dict(GOOD, train_seconds=12.5))
    row = next(r for r in outcome.text().splitlines() if r.startswith("train_seconds"))
    assert "12.5" in row
    assert "NO" not in row and "yes" not in row
    assert outcome.met


# --------------------------------------------------------------------------- TARGETS


@pytest.mark.parametrize("lesson", sorted(TARGETS))
def test_targets_have_both_modes_with_the_same_metrics(lesson):
    """Every lesson has smoke and full bounds naming the same metrics."""
    assert set(TARGETS[lesson]) == set(MODES)
    assert TARGETS[lesson]["smoke"], f"{lesson} has no smoke bounds"
    assert set(TARGETS[lesson]["smoke"]) == set(TARGETS[lesson]["full"])


@pytest.mark.parametrize("lesson", sorted(TARGETS))
def test_smoke_bounds_are_no_stricter_than_full(lesson):
    """A smoke bound is a looser sanity check: anything meeting full also meets smoke."""
    for metric, full in TARGETS[lesson]["full"].items():
        smoke = TARGETS[lesson]["smoke"][metric]
        assert smoke.op == full.op, f"{lesson}.{metric}: {smoke} vs {full}"
        if full.op in (">=", ">"):
            assert smoke.limit <= full.limit, f"{lesson}.{metric}: smoke {smoke}, full {full}"
        elif full.op in ("<=", "<"):
            assert smoke.limit >= full.limit, f"{lesson}.{metric}: smoke {smoke}, full {full}"
        else:
            assert smoke.limit == full.limit, f"{lesson}.{metric}: smoke {smoke}, full {full}"


def test_targets_cover_every_lesson_stem_with_a_solution():
    """Each solution notebook's lesson has bounds (report_outcome would raise otherwise)."""
    from labs.paths import SOLUTIONS_DIR

    stems = {p.stem for p in SOLUTIONS_DIR.glob("*.ipynb")}
    assert stems, "no solution notebooks found"
    assert stems <= set(TARGETS)
