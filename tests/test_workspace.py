"""labs.workspace: the learner's own copy of the notebooks survives course updates."""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from labs import workspace
from labs.paths import NOTEBOOKS_DIR, REPO_ROOT
from labs.workspace import MANIFEST_NAME, content_hash, main, read_manifest, sync


def _notebook(*sources: str) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(sources[0])] + [
        nbformat.v4.new_code_cell(s) for s in sources[1:]
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return (nbformat.writes(nb) + "\n").encode()


@pytest.fixture
def course(tmp_path):
    """A course folder with two lessons; returns (source dir, workspace dir)."""
    source = tmp_path / "course" / "notebooks"
    source.mkdir(parents=True)
    (source / "00_welcome.ipynb").write_bytes(_notebook("# 00 · Welcome", "x = 1"))
    (source / "01_attention.ipynb").write_bytes(_notebook("# 01 · Attention", "y = 2"))
    return source, tmp_path / "workspace"


def _edit(path, new_source="x = 41  # my answer"):
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = new_source
    nbformat.write(nb, path)


def _run_cells(path):
    """What running and saving in JupyterLab does: outputs, counts, metadata; no edits."""
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = i + 1
        cell.outputs = [nbformat.v4.new_output("stream", text="hi\n")]
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.2"}
    nbformat.write(nb, path)


def test_a_new_workspace_gets_every_lesson_and_a_manifest(course):
    source, ws = course
    report = sync(ws, source=source)
    assert report.added == ["00_welcome.ipynb", "01_attention.ipynb"]
    for name in report.added:
        assert (ws / name).read_bytes() == (source / name).read_bytes()
    manifest = json.loads((ws / MANIFEST_NAME).read_text())
    assert manifest["format"] == 1
    assert manifest["files"] == {
        name: content_hash((source / name).read_bytes()) for name in report.added
    }
    assert not [p for p in ws.iterdir() if p.name.endswith(".tmp")], "no temporary files left"


def test_the_manifest_is_written_atomically(course, monkeypatch):
    source, ws = course
    written = []
    real = workspace.atomic_write
    monkeypatch.setattr(
        workspace,
        "atomic_write",
        lambda path, write: (written.append(path.name), real(path, write)),
    )
    sync(ws, source=source)
    assert MANIFEST_NAME in written


def test_running_it_again_changes_nothing(course):
    source, ws = course
    sync(ws, source=source)
    before = {p.name: p.stat().st_mtime_ns for p in ws.iterdir()}
    report = sync(ws, source=source)
    assert report.unchanged == ["00_welcome.ipynb", "01_attention.ipynb"]
    assert not (report.added or report.updated or report.kept)
    assert {p.name: p.stat().st_mtime_ns for p in ws.iterdir()} == before


def test_a_new_lesson_is_added(course):
    source, ws = course
    sync(ws, source=source)
    (source / "02_tokens.ipynb").write_bytes(_notebook("# 02 · Tokens", "z = 3"))
    report = sync(ws, source=source)
    assert report.added == ["02_tokens.ipynb"]
    assert (ws / "02_tokens.ipynb").read_bytes() == (source / "02_tokens.ipynb").read_bytes()


def test_an_unedited_notebook_is_updated(course):
    source, ws = course
    sync(ws, source=source)
    new = _notebook("# 00 · Welcome", "x = 1", "print('new cell')")
    (source / "00_welcome.ipynb").write_bytes(new)
    report = sync(ws, source=source)
    assert report.updated == ["00_welcome.ipynb"] and not report.kept
    assert (ws / "00_welcome.ipynb").read_bytes() == new
    assert read_manifest(ws)["00_welcome.ipynb"] == content_hash(new)


def test_running_cells_is_not_an_edit(course):
    source, ws = course
    sync(ws, source=source)
    _run_cells(ws / "00_welcome.ipynb")
    assert sync(ws, source=source).unchanged == ["00_welcome.ipynb", "01_attention.ipynb"]
    new = _notebook("# 00 · Welcome", "x = 1  # fixed")
    (source / "00_welcome.ipynb").write_bytes(new)
    report = sync(ws, source=source)
    assert report.updated == ["00_welcome.ipynb"]
    assert (ws / "00_welcome.ipynb").read_bytes() == new


def test_an_edited_notebook_is_kept_and_the_new_version_goes_beside_it(course):
    source, ws = course
    sync(ws, source=source)
    _edit(ws / "00_welcome.ipynb")
    mine = (ws / "00_welcome.ipynb").read_bytes()
    new = _notebook("# 00 · Welcome (v2)", "x = 1")
    (source / "00_welcome.ipynb").write_bytes(new)

    report = sync(ws, source=source)
    assert report.kept == {"00_welcome.ipynb": "00_welcome.updated.ipynb"}
    assert report.unchanged == ["01_attention.ipynb"]
    assert (ws / "00_welcome.ipynb").read_bytes() == mine, "the learner's edit must survive"
    assert (ws / "00_welcome.updated.ipynb").read_bytes() == new
    text = "\n".join(report.lines())
    assert re.search(r"kept +00_welcome.ipynb  \(you edited it", text)
    assert "00_welcome.updated.ipynb" in text

    # a second run, and a second course update, still never touch the edited copy
    assert sync(ws, source=source).kept == {"00_welcome.ipynb": "00_welcome.updated.ipynb"}
    newer = _notebook("# 00 · Welcome (v3)", "x = 1")
    (source / "00_welcome.ipynb").write_bytes(newer)
    sync(ws, source=source)
    assert (ws / "00_welcome.ipynb").read_bytes() == mine
    assert (ws / "00_welcome.updated.ipynb").read_bytes() == newer


def test_an_edited_notebook_with_no_course_change_gets_no_copy(course):
    source, ws = course
    sync(ws, source=source)
    _edit(ws / "00_welcome.ipynb")
    report = sync(ws, source=source)
    assert not report.kept and not report.updated
    assert not (ws / "00_welcome.updated.ipynb").exists()


def test_an_edited_updated_copy_is_not_overwritten_either(course):
    source, ws = course
    sync(ws, source=source)
    _edit(ws / "00_welcome.ipynb")
    (source / "00_welcome.ipynb").write_bytes(_notebook("# 00 v2", "x = 1"))
    sync(ws, source=source)
    _edit(ws / "00_welcome.updated.ipynb", "x = 'merging by hand'")
    side = (ws / "00_welcome.updated.ipynb").read_bytes()
    (source / "00_welcome.ipynb").write_bytes(_notebook("# 00 v3", "x = 1"))
    report = sync(ws, source=source)
    assert report.kept == {"00_welcome.ipynb": None}
    assert (ws / "00_welcome.updated.ipynb").read_bytes() == side
    assert "delete or rename it" in "\n".join(report.lines())


def test_deleting_your_copy_takes_the_new_version_and_tidies_up(course):
    source, ws = course
    sync(ws, source=source)
    _edit(ws / "00_welcome.ipynb")
    new = _notebook("# 00 v2", "x = 1")
    (source / "00_welcome.ipynb").write_bytes(new)
    sync(ws, source=source)
    (ws / "00_welcome.ipynb").unlink()
    report = sync(ws, source=source)
    assert report.added == ["00_welcome.ipynb"]
    assert report.removed == ["00_welcome.updated.ipynb"]
    assert (ws / "00_welcome.ipynb").read_bytes() == new
    assert not (ws / "00_welcome.updated.ipynb").exists()
    assert "00_welcome.updated.ipynb" not in read_manifest(ws)


def test_a_notebook_the_workspace_did_not_write_is_kept(course):
    """No manifest entry (say, a copy made by hand before this tool): never overwritten."""
    source, ws = course
    ws.mkdir()
    (ws / "00_welcome.ipynb").write_bytes(_notebook("# my own", "print('mine')"))
    (ws / "01_attention.ipynb").write_bytes((source / "01_attention.ipynb").read_bytes())
    report = sync(ws, source=source)
    assert report.kept == {"00_welcome.ipynb": "00_welcome.updated.ipynb"}
    assert report.unchanged == ["01_attention.ipynb"]
    assert b"print('mine')" in (ws / "00_welcome.ipynb").read_bytes()


def test_files_the_course_does_not_ship_are_left_alone(course):
    source, ws = course
    sync(ws, source=source)
    (ws / "my_notes.ipynb").write_text("not even json")
    (ws / "scratch.py").write_text("print(1)")
    sync(ws, source=source)
    assert (ws / "my_notes.ipynb").read_text() == "not even json"
    assert (ws / "scratch.py").exists()


def test_dry_run_writes_nothing(course):
    source, ws = course
    report = sync(ws, source=source, dry_run=True)
    assert report.added == ["00_welcome.ipynb", "01_attention.ipynb"]
    assert not ws.exists()
    assert "would be added" in "\n".join(report.lines(dry_run=True))


def test_content_hash_ignores_outputs_and_metadata_but_not_sources():
    a = _notebook("# t", "x = 1")
    nb = nbformat.reads(a.decode(), as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb.cells[1].execution_count = 3
    nb.metadata["widgets"] = {"state": {}}
    assert content_hash(nbformat.writes(nb).encode()) == content_hash(a)
    assert content_hash(_notebook("# t", "x = 2")) != content_hash(a)
    assert content_hash(_notebook("# t", "x = 1", "")) != content_hash(a)
    assert content_hash(b"{ not json").startswith("bytes:")


# ------------------------------------------------------------------ clear errors


def test_a_workspace_that_is_a_file_is_refused(course, tmp_path):
    source, _ = course
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file: pass a folder with --dir"):
        sync(tmp_path / "file", source=source)


@pytest.mark.parametrize("inside", ["notebooks", "solutions", "notebooks/sub"])
def test_a_workspace_inside_the_tracked_notebooks_is_refused(inside):
    with pytest.raises(ValueError, match="which a course update overwrites"):
        sync(REPO_ROOT / inside, dry_run=True)


def test_a_corrupt_manifest_says_how_to_recover(course):
    source, ws = course
    sync(ws, source=source)
    (ws / MANIFEST_NAME).write_text("{ half a file")
    with pytest.raises(ValueError, match=r"unreadable .*Delete it and run again"):
        sync(ws, source=source)
    (ws / MANIFEST_NAME).unlink()
    assert sync(ws, source=source).unchanged == ["00_welcome.ipynb", "01_attention.ipynb"]


def test_an_empty_course_folder_is_an_error(tmp_path):
    (tmp_path / "notebooks").mkdir()
    with pytest.raises(ValueError, match="no lesson notebooks"):
        sync(tmp_path / "ws", source=tmp_path / "notebooks")


def test_the_command_line_reports_and_exits(course, capsys):
    source, ws = course
    assert main(["--dir", str(ws), "--source", str(source)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"added +00_welcome.ipynb", out) and "open it with: jupyter lab" in out
    assert main(["--dir", str(source / "00_welcome.ipynb"), "--source", str(source)]) == 1
    assert "error: " in capsys.readouterr().err


# ------------------------------------------------------------------ the real course


def test_the_default_workspace_is_git_ignored_and_outside_the_tracked_tree():
    assert workspace.DEFAULT_DIR == REPO_ROOT / "workspace"
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert "workspace/" in ignored or "/workspace/" in ignored


@pytest.mark.notebooks
def test_a_lesson_runs_from_the_workspace(tmp_path):
    """The workspace copy finds data and checkpoints through labs.paths, from any folder."""
    from labs.run import run_notebooks

    report = sync(tmp_path / "ws")
    assert "00_welcome.ipynb" in report.added
    assert sorted(p.name for p in (tmp_path / "ws").glob("*.ipynb")) == sorted(
        p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")
    )
    (result,) = run_notebooks(
        [tmp_path / "ws" / "00_welcome.ipynb"], mode="smoke", out=tmp_path / "out", quiet=True
    )
    assert result.status == "ok", result.error
