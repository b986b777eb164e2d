"""Write the student notebooks (``notebooks/``) from the solutions (``solutions/``).

    python -m labs.generate            # regenerate notebooks/
    python -m labs.generate --check    # exit 1 if notebooks/ is stale (CI runs this)
    python -m labs.generate --record-outputs build/run
                                       # store nbval's expected outputs in solutions/

``solutions/`` is the single source. In every cell, each region between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes a stub: in code cells
``# YOUR CODE HERE`` + ``raise NotImplementedError()`` at the marker's indentation,
in markdown cells *YOUR ANSWER HERE*. Outputs, execution counts and tool metadata
are cleared. An unclosed, unopened or nested marker is an error naming the cell.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

from labs.paths import NOTEBOOKS_DIR, SOLUTIONS_DIR

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
MARKDOWN_STUB = "*YOUR ANSWER HERE*"
# Cell metadata that belongs to the author's copy only.
_AUTHOR_KEYS = ("keep_output", "papermill", "execution", "ExecuteTime", "scrolled", "collapsed")


NBVAL_MARK = "# NBVAL_CHECK_OUTPUT"


class MarkerError(ValueError):
    """A solution marker is unclosed, unopened or nested."""


def strip_solutions(source: str, cell_type: str, where: str) -> str:
    """Replace each marked region of one cell's source with a stub."""
    out: list[str] = []
    open_at: int | None = None
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if open_at is not None:
                raise MarkerError(
                    f"{where}: nested {BEGIN} at line {number} (the region opened at line {open_at} is still open)"
                )
            open_at = number
            indent = line[: len(line) - len(line.lstrip())]
            if cell_type == "code":
                out.extend(indent + stub for stub in CODE_STUB)
            else:
                out.append(indent + MARKDOWN_STUB)
        elif stripped.startswith(END):
            if open_at is None:
                raise MarkerError(f"{where}: {END} at line {number} without a {BEGIN} before it")
            open_at = None
        elif open_at is None:
            out.append(line)
    if open_at is not None:
        raise MarkerError(f"{where}: {BEGIN} at line {open_at} is never closed with {END}")
    return "\n".join(out)


def student_version(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The student notebook for one solution notebook (a new object)."""
    nb = copy.deepcopy(solution)
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index} (id {cell.get('id', '?')})"
        cell.source = strip_solutions(cell.source, cell.cell_type, where)
        for key in _AUTHOR_KEYS:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    for key in ("papermill", "widgets", "signature"):
        nb.metadata.pop(key, None)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def expected_notebooks(solutions: Path = SOLUTIONS_DIR) -> dict[str, str]:
    """File name → text of every student notebook the solutions imply."""
    paths = sorted(solutions.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no solution notebooks in {solutions}")
    result = {}
    for path in paths:
        solution = nbformat.read(path, as_version=4)
        result[path.name] = render(student_version(solution, f"{solutions.name}/{path.name}"))
    return result


def stale(solutions: Path = SOLUTIONS_DIR, notebooks: Path = NOTEBOOKS_DIR) -> list[str]:
    """What differs between ``notebooks/`` and what the generator would write."""
    expected = expected_notebooks(solutions)
    problems = []
    for name, text in expected.items():
        path = notebooks / name
        if not path.exists():
            problems.append(f"{notebooks.name}/{name} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{notebooks.name}/{name} differs from its solution")
    for path in sorted(notebooks.glob("*.ipynb")):
        if path.name not in expected:
            problems.append(f"{notebooks.name}/{path.name} has no source in {solutions.name}/")
    return problems


def generate(solutions: Path = SOLUTIONS_DIR, notebooks: Path = NOTEBOOKS_DIR) -> list[str]:
    """Write every student notebook; remove ones whose solution is gone. Returns changes."""
    expected = expected_notebooks(solutions)
    notebooks.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in expected.items():
        path = notebooks / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            tmp = path.with_suffix(".ipynb.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            changed.append(f"wrote {notebooks.name}/{name}")
    for path in sorted(notebooks.glob("*.ipynb")):
        if path.name not in expected:
            path.unlink()
            changed.append(f"removed {notebooks.name}/{path.name} (no solution source)")
    return changed


def record_outputs(executed: Path, solutions: Path = SOLUTIONS_DIR) -> list[str]:
    """Copy the outputs of ``# NBVAL_CHECK_OUTPUT`` cells from executed notebooks into the sources.

    ``executed`` is a runner output folder (``build/run``) holding ``solutions/*.ipynb``
    run in smoke mode. Those cells get ``keep_output`` (so nbstripout keeps what nbval
    compares); every other cell's outputs are cleared. Cells are matched by id.
    """
    changed = []
    for path in sorted(solutions.glob("*.ipynb")):
        run_path = executed / solutions.name / path.name
        if not run_path.exists():
            continue
        source = nbformat.read(path, as_version=4)
        ran = {cell.get("id"): cell for cell in nbformat.read(run_path, as_version=4).cells}
        for cell in source.cells:
            if cell.cell_type != "code":
                continue
            if NBVAL_MARK in cell.source:
                if cell.get("id") not in ran:
                    raise ValueError(
                        f"{path.name}: cell {cell.get('id')} is not in {run_path}; re-run it first"
                    )
                outputs = copy.deepcopy(ran[cell.get("id")].outputs)
                for output in outputs:
                    if "execution_count" in output:
                        output["execution_count"] = None
                cell.outputs = outputs
                cell.metadata["keep_output"] = True
            else:
                cell.outputs = []
                cell.metadata.pop("keep_output", None)
            cell.execution_count = None
        text = render(source)
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(f"recorded checked outputs in {solutions.name}/{path.name}")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m labs.generate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--check", action="store_true", help="only check that notebooks/ is up to date"
    )
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS_DIR)
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS_DIR)
    parser.add_argument(
        "--record-outputs",
        type=Path,
        metavar="RUN_DIR",
        help="copy nbval-checked outputs from a smoke run",
    )
    args = parser.parse_args(argv)
    try:
        if args.record_outputs:
            changes = record_outputs(args.record_outputs, args.solutions)
            print("\n".join(changes) if changes else "checked outputs already up to date.")
            return 0
        if args.check:
            problems = stale(args.solutions, args.notebooks)
            for problem in problems:
                print(f"STALE: {problem}")
            if problems:
                print(
                    "notebooks/ is out of date: run `python -m labs.generate` and commit the result."
                )
                return 1
            print(f"notebooks/ is up to date with {args.solutions.name}/.")
            return 0
        changes = generate(args.solutions, args.notebooks)
        print("\n".join(changes) if changes else "notebooks/ already up to date.")
        return 0
    except (MarkerError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
