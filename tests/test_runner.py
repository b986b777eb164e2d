"""The runner, `python -m labs.run`: selection, judging, and real executions of tiny notebooks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from labs import run as runner
from labs.checks.core import CHECK_MIMETYPE
from labs.outcomes import OUTCOME_MIMETYPE
from labs.paths import REPO_ROOT

GOOD_METRICS = {"env_failures": 0.0, "softmax_max_abs_err": 0.0, "spiral_val_accuracy": 0.99}


# ------------------------------------------------------------------ selection


def test_discover_by_number_name_and_glob():
    assert [p.name for p in runner.discover(["00"], "solutions")] == ["00_welcome.ipynb"]
    assert [p.name for p in runner.discover(["welcome"], "student")] == ["00_welcome.ipynb"]
    both = [f"{p.parent.name}/{p.name}" for p in runner.discover(["0[0-9]*"], "both")]
    assert both[0] == "solutions/00_welcome.ipynb" and "notebooks/00_welcome.ipynb" in both
    assert [p.name for p in runner.discover(["0[0-1]*"], "solutions")] == [
        "00_welcome.ipynb",
        "01_attention.ipynb",
    ]
    assert len(runner.discover([], "both")) == 2 * len(runner.discover([], "solutions"))


def test_unknown_pattern_lists_the_lessons():
    with pytest.raises(SystemExit) as info:
        runner.discover(["no-such-lesson"], "both")
    assert "no notebook matches 'no-such-lesson'" in str(info.value) and "00_welcome" in str(
        info.value
    )


# ------------------------------------------------------------------ judging (no kernel)


def _executed(outcomes=(), checks=()):
    cell = new_code_cell("")
    cell.outputs = [
        new_output("display_data", data={OUTCOME_MIMETYPE: o, "text/plain": ""}) for o in outcomes
    ]
    cell.outputs += [
        new_output("display_data", data={CHECK_MIMETYPE: c, "text/plain": ""}) for c in checks
    ]
    return new_notebook(cells=[cell])


def _job(folder: str, stem: str = "00_welcome") -> runner.Job:
    source = Path(folder) / f"{stem}.ipynb"
    return runner.Job(source, f"{folder}/{stem}.ipynb", Path("out.ipynb"), Path("cwd"))


def _check(status: str) -> dict:
    return {"exercise": "softmax", "status": status, "message": f"it is {status}"}


def _judge(folder, nb, mode="smoke", error=None):
    result = runner.Result(f"{folder}/00_welcome.ipynb", mode, error=error)
    runner.judge(result, _job(folder), nb)
    return result


def test_judge_ok_collects_metrics_bounds_and_checks():
    nb = _executed(
        [{"lesson": "00_welcome", "mode": "smoke", "metrics": GOOD_METRICS}], [_check("passed")]
    )
    result = _judge("solutions", nb)
    assert result.status == "ok" and result.error is None
    assert result.metrics == GOOD_METRICS
    assert result.checks == {"softmax": "passed"}
    assert result.bounds["spiral_val_accuracy"] == {"value": 0.99, "bound": ">= 0.5", "met": True}


def test_judge_fails_a_missed_bound_with_the_numbers():
    metrics = dict(GOOD_METRICS, spiral_val_accuracy=0.9)
    result = _judge(
        "solutions", _executed([{"lesson": "00_welcome", "metrics": metrics}]), mode="full"
    )
    assert result.status == "failed"
    assert "spiral_val_accuracy=0.9 misses the full bound (>= 0.95)" in result.error


def test_judge_fails_missing_outcome_missing_metric_and_wrong_lesson():
    assert "reported no measured outcome" in _judge("solutions", _executed()).error
    partial = {k: v for k, v in GOOD_METRICS.items() if k != "env_failures"}
    assert (
        "env_failures=None misses"
        in _judge("solutions", _executed([{"lesson": "00_welcome", "metrics": partial}])).error
    )
    wrong = _judge("solutions", _executed([{"lesson": "03_gpt", "metrics": GOOD_METRICS}]))
    assert "outcome for lesson '03_gpt', expected '00_welcome'" in wrong.error


def test_solution_must_pass_its_checks_but_student_stub_may_be_not_done():
    outcome = [{"lesson": "00_welcome", "metrics": GOOD_METRICS}]
    failed = _judge("solutions", _executed(outcome, [_check("not_done")]))
    assert failed.status == "failed" and "'softmax' did not pass in the solution" in failed.error
    student = _judge("notebooks", _executed(outcome, [_check("not_done")]))
    assert student.status == "ok" and student.checks == {"softmax": "not_done"}


def test_judge_keeps_the_cell_error():
    result = _judge("solutions", None, error="cell [3]: ValueError: boom")
    assert result.status == "failed" and result.error.startswith("cell [3]: ValueError: boom")


def test_table_marks_budget_overruns():
    ok = runner.Result(
        "solutions/00_welcome.ipynb",
        "smoke",
        "ok",
        75.0,
        2500.0,
        {"acc": 0.5},
        {},
        {"softmax": "passed"},
    )
    table = runner.format_table([ok])
    assert "75.0!" in table and "2500!" in table and "1/1" in table and "acc=0.5" in table


# ------------------------------------------------------------------ real executions


def _write(path: Path, *sources: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = [new_code_cell(s) for s in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(nb, path)
    return path


TIMEOUT = 15
PARAMS = 'SMOKE = False\nDEVICE = "cpu"\nSEED = 0'
REPORT = (
    "from labs.outcomes import report_outcome\n"
    'report_outcome("00_welcome", smoke=SMOKE, env_failures=0, softmax_max_abs_err=0.0, '
    "spiral_val_accuracy=0.97 if DEVICE == 'auto' else 0.1)"
)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Run four tiny notebooks through the real runner, two at a time."""
    root = tmp_path_factory.mktemp("runner")
    sources = [
        # never finishes within the timeout (first, so it runs beside the others)
        _write(root / "c" / "00_welcome.ipynb", PARAMS, "import time\ntime.sleep(60)"),
        # parameters are injected (SMOKE=True, DEVICE="auto"), so the outcome passes
        _write(root / "solutions" / "00_welcome.ipynb", PARAMS, REPORT),
        # a cell raises
        _write(
            root / "a" / "00_welcome.ipynb", PARAMS, "x = 1", "raise ValueError('planted failure')"
        ),
        # holds ~400 MB at its peak, then frees it
        _write(
            root / "b" / "00_welcome.ipynb",
            PARAMS,
            "import numpy as np\nx = np.ones(50_000_000)\ndel x",
        ),
    ]
    results = runner.run_notebooks(
        sources, mode="smoke", jobs=2, out=root / "out", timeout=TIMEOUT, quiet=True
    )
    return root, {r.key.split("/")[0]: r for r in results}


def test_injected_parameters_and_outcome_are_collected(executed):
    root, results = executed
    ok = results["solutions"]
    assert ok.status == "ok", ok.error
    assert ok.metrics["spiral_val_accuracy"] == pytest.approx(0.97)
    executed_nb = nbformat.read(root / "out" / "solutions" / "00_welcome.ipynb", as_version=4)
    injected = [c for c in executed_nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert (
        injected
        and "SMOKE = True" in injected[0].source
        and 'DEVICE = "auto"' in injected[0].source
    )


def test_cell_error_is_reported_with_the_exception(executed):
    _, results = executed
    assert results["a"].status == "failed"
    assert "ValueError: planted failure" in results["a"].error


def test_peak_memory_of_the_kernel_is_measured(executed):
    _, results = executed
    assert results["b"].peak_rss_mb is not None and results["b"].peak_rss_mb > 400
    assert results["solutions"].peak_rss_mb < results["b"].peak_rss_mb


def test_timeout_kills_the_notebook(executed):
    _, results = executed
    assert results["c"].status == "failed" and f"timed out after {TIMEOUT} s" in results["c"].error
    assert results["c"].seconds < TIMEOUT + 10


def test_outcomes_json_has_one_entry_per_notebook(executed):
    root, _ = executed
    data = json.loads((root / "out" / "outcomes.json").read_text())
    assert set(data) == {
        "solutions/00_welcome.ipynb",
        "a/00_welcome.ipynb",
        "b/00_welcome.ipynb",
        "c/00_welcome.ipynb",
    }
    for entry in data.values():
        assert {
            "status",
            "seconds",
            "peak_rss_mb",
            "metrics",
            "error",
            "checks",
            "bounds",
            "mode",
        } <= entry.keys()
    assert data["solutions/00_welcome.ipynb"]["status"] == "ok"


def test_cli_exit_status_and_bad_arguments():
    bad = subprocess.run(
        [sys.executable, "-m", "labs.run", "zzz"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "no notebook matches 'zzz'" in bad.stderr
    jobs = subprocess.run(
        [sys.executable, "-m", "labs.run", "--jobs", "0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert jobs.returncode == 2 and "--jobs must be at least 1" in jobs.stderr
