"""The single-source generator: solutions/ -> notebooks/ with stubs."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from labs import generate
from labs.generate import MarkerError, strip_solutions
from labs.paths import NOTEBOOKS_DIR, REPO_ROOT, SOLUTIONS_DIR


def test_code_region_becomes_indented_stub():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n\nprint(f)"
    assert strip_solutions(source, "code", "cell") == (
        "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\nprint(f)"
    )


def test_several_regions_and_markdown_answer():
    source = "### BEGIN SOLUTION\na = 1\n### END SOLUTION\nb = 2\n### BEGIN SOLUTION\nc = 3\n### END SOLUTION"
    assert strip_solutions(source, "code", "c") == (
        "# YOUR CODE HERE\nraise NotImplementedError()\nb = 2\n# YOUR CODE HERE\nraise NotImplementedError()"
    )
    assert strip_solutions(
        "Q?\n### BEGIN SOLUTION\nThe answer.\n### END SOLUTION", "markdown", "m"
    ) == ("Q?\n*YOUR ANSWER HERE*")


def test_cells_without_markers_are_unchanged():
    source = "x = 1\n# a comment mentioning SOLUTION\nprint(x)"
    assert strip_solutions(source, "code", "c") == source


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("### BEGIN SOLUTION\nx = 1\n", ["never closed", "line 1"]),
        ("x = 1\n### END SOLUTION\n", ["without a ### BEGIN SOLUTION", "line 2"]),
        (
            "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n",
            ["nested", "line 2", "line 1"],
        ),
    ],
    ids=["unclosed", "unopened", "nested"],
)
def test_bad_markers_name_the_cell_and_line(source, words):
    with pytest.raises(MarkerError) as info:
        strip_solutions(source, "code", "solutions/99_x.ipynb, cell 4 (id abc)")
    message = str(info.value)
    assert "solutions/99_x.ipynb, cell 4 (id abc)" in message
    for word in words:
        assert word in message


def _solution_notebook():
    code = new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    code.execution_count = 3
    code.metadata.update(
        {"keep_output": True, "papermill": {"duration": 1.0}, "tags": ["parameters"]}
    )
    nb = new_notebook(cells=[new_markdown_cell("# Title"), code])
    nb.metadata["papermill"] = {"x": 1}
    nb.metadata["widgets"] = {"state": {}}
    return nb


def test_student_version_clears_outputs_and_author_metadata_but_keeps_tags():
    solution = _solution_notebook()
    student = generate.student_version(solution, "x.ipynb")
    cell = student.cells[1]
    assert cell.outputs == [] and cell.execution_count is None
    assert "keep_output" not in cell.metadata and "papermill" not in cell.metadata
    assert cell.metadata["tags"] == ["parameters"]
    assert "papermill" not in student.metadata and "widgets" not in student.metadata
    assert "raise NotImplementedError()" in cell.source and "return 1" not in cell.source
    # the source notebook object is untouched
    assert solution.cells[1].outputs and "return 1" in solution.cells[1].source


def test_check_detects_stale_missing_and_orphan_notebooks(tmp_path):
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    nbformat.write(_solution_notebook(), solutions / "01_a.ipynb")
    assert generate.stale(solutions, notebooks) == ["notebooks/01_a.ipynb is missing"]
    assert generate.generate(solutions, notebooks) == ["wrote notebooks/01_a.ipynb"]
    assert generate.stale(solutions, notebooks) == []
    assert generate.generate(solutions, notebooks) == []  # idempotent

    # a hand edit in notebooks/ is stale
    path = notebooks / "01_a.ipynb"
    path.write_text(path.read_text().replace("YOUR CODE HERE", "edited"))
    assert generate.stale(solutions, notebooks) == [
        "notebooks/01_a.ipynb differs from its solution"
    ]

    # an orphan (its solution was deleted) is reported, then removed by generate
    (notebooks / "02_gone.ipynb").write_text(path.read_text())
    assert "notebooks/02_gone.ipynb has no source in solutions/" in generate.stale(
        solutions, notebooks
    )
    generate.generate(solutions, notebooks)
    assert sorted(p.name for p in notebooks.iterdir()) == ["01_a.ipynb"]


def test_cli_check_exit_codes_and_marker_error(tmp_path):
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    nb = _solution_notebook()
    nbformat.write(nb, solutions / "01_a.ipynb")
    args = ["--solutions", str(solutions), "--notebooks", str(notebooks)]
    assert generate.main([*args, "--check"]) == 1
    assert generate.main(args) == 0
    assert generate.main([*args, "--check"]) == 0
    nb.cells[1].source = "### BEGIN SOLUTION\nx = 1"
    nbformat.write(nb, solutions / "01_a.ipynb")
    result = subprocess.run(
        [sys.executable, "-m", "labs.generate", *args], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "solutions/01_a.ipynb, cell 1" in result.stderr and "never closed" in result.stderr


def test_record_outputs_keeps_only_checked_cells(tmp_path):
    solutions, executed = tmp_path / "solutions", tmp_path / "run" / "solutions"
    solutions.mkdir()
    executed.mkdir(parents=True)
    checked = new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)")
    other = new_code_cell("print(2)")
    nb = new_notebook(cells=[checked, other])
    nbformat.write(nb, solutions / "01_a.ipynb")
    ran = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell, text in zip(ran.cells, ["1\n", "2\n"], strict=True):
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        cell.execution_count = 7
    nbformat.write(ran, executed / "01_a.ipynb")
    assert generate.record_outputs(tmp_path / "run", solutions) == [
        "recorded checked outputs in solutions/01_a.ipynb"
    ]
    stored = nbformat.read(solutions / "01_a.ipynb", as_version=4)
    assert (
        stored.cells[0].outputs[0]["text"] == "1\n"
        and stored.cells[0].metadata["keep_output"] is True
    )
    assert stored.cells[1].outputs == []
    assert all(c.execution_count is None for c in stored.cells)


def test_the_course_notebooks_are_up_to_date():
    """What CI checks: notebooks/ is exactly what the generator makes from solutions/."""
    result = subprocess.run(
        [sys.executable, "-m", "labs.generate", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p.name for p in SOLUTIONS_DIR.glob("*.ipynb")} == {
        p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")
    }
