"""Repository hygiene and the shape of every lesson, checked from the files alone."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from labs.course import LESSONS
from labs.outcomes import TARGETS
from labs.paths import NOTEBOOKS_DIR, REPO_ROOT, REQUIREMENTS_FILE, SOLUTIONS_DIR

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
CI = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
SOLUTIONS = sorted(SOLUTIONS_DIR.glob("*.ipynb"))
NBSTRIPOUT = ["--keep-id", "--extra-keys", "metadata.papermill cell.metadata.papermill"]


def _tool(name: str) -> str:
    return (
        str(REPO_ROOT / ".venv" / "bin" / name)
        if (REPO_ROOT / ".venv" / "bin" / name).exists()
        else shutil.which(name) or name
    )


# ------------------------------------------------------------------ README and CI


def _commands(section: str) -> list[str]:
    """The lines of the first fenced code block after a bold '**Section**' heading."""
    match = re.search(rf"\*\*{section}\*\*.*?```bash\n(.*?)```", README, re.S)
    assert match, f"README has no **{section}** command block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_readme_has_one_install_launch_and_test_command():
    install, launch, test = _commands("Install"), _commands("Launch"), _commands("Test")
    assert install == [
        "python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt"
    ]
    assert launch == ["python -m labs.workspace && jupyter lab workspace/00_welcome.ipynb"]
    assert test == ["python -m pytest"]


def test_ci_runs_the_readme_install_and_test_commands():
    assert "pip install --quiet -r requirements.txt" in CI
    assert re.search(r"^python -m pytest\b", CI, re.M), "CI must call the README's test command"
    assert "set -euo pipefail" in CI and "no tests ran" in CI and "skipped" in CI
    assert os.access(REPO_ROOT / ".ci" / "run", os.X_OK)


def test_readme_course_map_lists_every_lesson_and_links_existing_ones():
    for lesson in LESSONS:
        assert re.search(rf"^\| {lesson.number} \|", README, re.M), (
            f"course map misses lesson {lesson.number}"
        )
    for path in SOLUTIONS:
        assert f"(notebooks/{path.name})" in README, f"course map should link notebooks/{path.name}"


def test_binder_badge_opens_lesson_00_in_jupyterlab():
    assert "https://mybinder.org/badge_logo.svg" in README
    assert re.search(
        r"https://mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/HEAD\?urlpath=lab/tree/notebooks/00_welcome\.ipynb",
        README,
    )


# ------------------------------------------------------------------ Binder


def test_binder_installs_cpu_torch_python_311_and_the_package():
    assert (REPO_ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    binder = (REPO_ROOT / "binder" / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in binder
    assert "-r ../requirements.txt" in binder
    torch_pin = re.search(r"^torch==([\d.]+)$", REQUIREMENTS_FILE.read_text(), re.M).group(1)
    assert f"torch=={torch_pin}+cpu" in binder, "binder's CPU torch must match the root pin"
    assert re.search(r"^-e \.$", REQUIREMENTS_FILE.read_text(), re.M), (
        "requirements.txt installs labs (-e .)"
    )


def test_repo2docker_generates_a_dockerfile():
    """`repo2docker --no-build` needs no Docker; CI installs it and requires this test to run."""
    exe = shutil.which(
        "repo2docker",
        path=os.pathsep.join([str(REPO_ROOT / ".venv" / "bin"), os.environ.get("PATH", "")]),
    )
    if exe is None:
        if os.environ.get("AIGC_LAB_REQUIRE_REPO2DOCKER") == "1":
            pytest.fail(
                "repo2docker is required here (AIGC_LAB_REQUIRE_REPO2DOCKER=1) but not installed"
            )
        pytest.skip("repo2docker not installed (pip install jupyter-repo2docker)")
    proc = subprocess.run(
        [exe, "--no-build", "--debug", "."],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    dockerfile = proc.stdout + proc.stderr
    assert proc.returncode == 0, dockerfile[-2000:]
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in dockerfile
    assert (
        "python=3.11" in dockerfile
        or "python3.11" in dockerfile
        or "PYTHON_VERSION=3.11" in dockerfile
    )


# ------------------------------------------------------------------ clean diffs


def test_nbstripout_finds_nothing_to_strip():
    files = [str(p) for p in [*SOLUTIONS, *sorted(NOTEBOOKS_DIR.glob("*.ipynb"))]]
    proc = subprocess.run(
        [sys.executable, "-m", "nbstripout", "--verify", *NBSTRIPOUT, *files],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_nbstripout_verify_catches_outputs(tmp_path):
    """The verification above can fail: a notebook with an output is reported."""
    nb = nbformat.read(SOLUTIONS[0], as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "keep_output" not in c.metadata)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="leftover\n")]
    nbformat.write(nb, tmp_path / "dirty.ipynb")
    proc = subprocess.run(
        [sys.executable, "-m", "nbstripout", "--verify", *NBSTRIPOUT, str(tmp_path / "dirty.ipynb")]
    )
    assert proc.returncode == 1


def test_gitattributes_routes_notebooks_through_nbstripout():
    attributes = (REPO_ROOT / ".gitattributes").read_text()
    assert "*.ipynb filter=nbstripout" in attributes and "*.ipynb diff=ipynb" in attributes


def test_ruff_lints_and_formats_code_and_notebooks():
    check = subprocess.run(
        [_tool("ruff"), "check", "."], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run(
        [_tool("ruff"), "format", "--check", "."], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout


# ------------------------------------------------------------------ the shape of a lesson


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.fixture(params=SOLUTIONS, ids=lambda p: p.stem)
def lesson(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_lesson_is_in_the_course_map_and_has_bounds(lesson):
    path, _ = lesson
    assert path.stem in {entry.stem for entry in LESSONS}, f"add {path.stem} to labs/course.py"
    assert path.stem in TARGETS, f"add {path.stem}'s smoke and full bounds to labs/outcomes.py"


def test_targets_only_name_existing_lessons():
    assert set(TARGETS) == {p.stem for p in SOLUTIONS}


def test_lesson_opens_with_title_and_measured_runtime_table(lesson):
    path, nb = lesson
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {path.stem[:2]} ·")
    header = first.source.lower()
    for word in ("prerequisites", "learner time", "smoke", "full, 2-core cpu", "gpu"):
        assert word in header, f"{path.name}: the first cell should state {word!r}"
    assert not re.search(r"RUNTIME_|TODO|TBD", first.source), (
        f"{path.name}: runtime table not filled in"
    )


def test_lesson_has_one_parameters_cell_with_smoke_device_seed(lesson):
    path, nb = lesson
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
    tree = ast.parse(tagged[0].source)
    assigned = {
        t.id: node.value for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
    }
    assert {"SMOKE", "DEVICE", "SEED"} <= assigned.keys()
    assert "smoke_default" in ast.unparse(assigned["SMOKE"]), (
        "SMOKE must default from AIGC_LAB_SMOKE"
    )
    assert ast.literal_eval(assigned["DEVICE"]) == "auto"
    assert isinstance(ast.literal_eval(assigned["SEED"]), int)


def test_every_exercise_is_followed_by_its_check_and_states_difficulty(lesson):
    path, nb = lesson
    cells = nb.cells
    exercises = [
        i for i, c in enumerate(cells) if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source
    ]
    assert exercises, f"{path.name} has no exercise"
    for i in exercises:
        following = next(c for c in cells[i + 1 :] if c.cell_type == "code")
        assert re.search(r"=\s*check_\w+\(", following.source), (
            f"{path.name} cell {i}: the next code cell must run a check"
        )
        intro = next(c for c in reversed(cells[:i]) if c.cell_type == "markdown")
        assert "★" in intro.source and "minutes" in intro.source, (
            f"{path.name} cell {i}: state difficulty and minutes"
        )


def test_lesson_reports_its_outcome_under_its_own_name(lesson):
    path, nb = lesson
    calls = [c.source for c in _code(nb) if "report_outcome(" in c.source]
    assert calls and f'"{path.stem}"' in calls[-1]


def test_student_notebooks_have_stubs_no_solutions_no_outputs():
    for path in SOLUTIONS:
        student = nbformat.read(NOTEBOOKS_DIR / path.name, as_version=4)
        text = "\n".join(c.source for c in student.cells)
        assert "### BEGIN SOLUTION" not in text and "### END SOLUTION" not in text
        assert "raise NotImplementedError()" in text
        assert all(not c.outputs and c.execution_count is None for c in _code(student))
