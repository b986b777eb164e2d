"""nbval (lax) on the solution notebooks: seeded cells marked `# NBVAL_CHECK_OUTPUT` must
print exactly what is stored in solutions/ (recorded by `python -m labs.generate --record-outputs`).

nbval needs an execution count on every reference cell that has outputs, which
nbstripout removes; so the test runs nbval on a copy with counts filled in.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from offline import offline

from labs.paths import REPO_ROOT, SOLUTIONS_DIR

MARK = "# NBVAL_CHECK_OUTPUT"
TESTS_DIR = Path(__file__).resolve().parent


def _prepare(target, tamper: bool = False):
    """Copy the solutions with execution counts.

    ``tamper`` alters one digit in ONE checked output (the first stored stdout containing
    a 0) and copies only that notebook, so exactly one cell must fail: rerunning every
    lesson to prove the comparison works would cost CI minutes and prove nothing more.
    """
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in sorted(SOLUTIONS_DIR.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        tampered = False
        for count, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
            if cell.outputs:
                cell.execution_count = count
                for output in cell.outputs:
                    stdout = output.get("name") == "stdout"
                    if tamper and not tampered and stdout and "0" in output["text"]:
                        output["text"] = output["text"].replace("0", "9", 1)
                        tampered = True
        if not tamper or tampered:
            nbformat.write(nb, target / path.name)
        if tampered:
            break
    assert any(target.glob("*.ipynb")), "no checked stdout with a 0 to tamper with"
    return target


def _nbval(folder, cache):
    # Two kernels share the 2-core machine: one thread each (as `labs.run --jobs 2` does)
    # instead of four threads fighting over two cores; and the nbval_patience plugin.
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])),
    )
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    command, env, _ = offline(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-current-env",
            "-p",
            "no:cacheprovider",
            "-p",
            "nbval_patience",
            "-n",
            "2",
            "--dist",
            "loadfile",
            "-q",
            "--rootdir",
            str(folder),
            str(folder),
        ],
        env,
    )
    env.update(AIGC_LAB_SMOKE="1", AIGC_LAB_CACHE=str(cache), PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=1200
    )


def test_every_lesson_has_checked_outputs_committed():
    for path in sorted(SOLUTIONS_DIR.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        checked = [c for c in nb.cells if c.cell_type == "code" and MARK in c.source]
        assert checked, f"{path.name}: mark a few seeded cells with {MARK}"
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            if MARK in cell.source:
                assert cell.outputs and cell.metadata.get("keep_output") is True, (
                    f"{path.name} cell {cell.get('id')}: run `python -m labs.run --which solutions` then "
                    "`python -m labs.generate --record-outputs build/run`"
                )
            else:
                assert not cell.outputs, f"{path.name} cell {cell.get('id')} has outputs committed"


def test_nbval_passes_on_the_solutions(tmp_path):
    proc = _nbval(_prepare(REPO_ROOT / "build" / "nbval"), tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) > 0, proc.stdout


def test_nbval_fails_when_a_checked_output_changes(tmp_path):
    """Proof that the marked cells are really compared: alter one stored digit, nbval fails."""
    proc = _nbval(_prepare(REPO_ROOT / "build" / "nbval-tampered", tamper=True), tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "Cell outputs differ" in proc.stdout and "1 failed" in proc.stdout
