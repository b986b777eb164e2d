"""Your own copy of the course notebooks, kept outside the tracked tree.

    python -m labs.workspace [--dir DIR] [--dry-run]

Copies the student notebooks (``notebooks/``) into a workspace folder (default
``workspace/`` in the course folder, which git ignores), where you work on them.
Run it again after updating the course (``git pull``): it adds new lessons, updates
the notebooks you have not edited, and never overwrites one you edited: the new
version is written beside yours as ``NN_name.updated.ipynb`` instead.

An *edit* is a change to what the notebook says: a cell's type or text, a cell added
or removed. Running cells (outputs, execution counts) or saving in JupyterLab
(metadata) is not an edit; an update of an unedited notebook clears its outputs.

The workspace remembers what it was given in ``.aigc-lab-workspace.json`` (a manifest
of hashes, written atomically). The notebooks find the course's data and checkpoint
cache through :mod:`labs.paths`, so they run from any folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from labs.paths import NOTEBOOKS_DIR, REPO_ROOT, SOLUTIONS_DIR

DEFAULT_DIR = REPO_ROOT / "workspace"
MANIFEST_NAME = ".aigc-lab-workspace.json"
MANIFEST_FORMAT = 1
UPDATED_SUFFIX = ".updated.ipynb"
LESSON_NAME = re.compile(r"^\d\d_[\w-]+\.ipynb$")


def content_hash(data: bytes) -> str:
    """A hash of what a notebook says: each cell's type and source, in order.

    Outputs, execution counts, cell ids and metadata do not count, so running or
    saving a notebook in JupyterLab leaves the hash unchanged. Bytes that are not
    a notebook hash as bytes (and so never match a notebook's hash).
    """
    try:
        nb = json.loads(data.decode("utf-8"))
        cells = [
            [
                cell["cell_type"],
                "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"],
            ]
            for cell in nb["cells"]
        ]
    except (UnicodeDecodeError, ValueError, TypeError, KeyError):
        return "bytes:" + hashlib.sha256(data).hexdigest()
    text = json.dumps(cells, ensure_ascii=False, separators=(",", ":"))
    return "cells:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Report:
    """What a sync did, one list of file names per kind of action."""

    directory: Path
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: dict[str, str | None] = field(default_factory=dict)  # edited -> its .updated copy
    removed: list[str] = field(default_factory=list)  # stale .updated copies

    def lines(self, dry_run: bool = False) -> list[str]:
        would = "would be " if dry_run else ""
        rows: list[tuple[str, str, str]] = []
        rows += [(would + "added", name, "") for name in self.added]
        rows += [
            (would + "updated", name, "(you had not edited it; its outputs are cleared)")
            for name in self.updated
        ]
        for name, updated in self.kept.items():
            if updated is None:
                note = (
                    f"(you edited it; a newer version exists, but {_updated_name(name)} "
                    "is edited too: delete or rename it to get the new one)"
                )
            else:
                note = f"(you edited it; the new version is {would}in {updated})"
            rows.append(("kept", name, note))
        rows += [(would + "removed", name, "(no longer needed)") for name in self.removed]
        width = max((len(action) for action, _, _ in rows), default=0)
        out = [f"workspace: {self.directory}"]
        out += [f"  {action:<{width}}  {name}  {note}".rstrip() for action, name, note in rows]
        if self.unchanged:
            out.append(f"  {len(self.unchanged)} notebook(s) already up to date")
        first = self.directory / "00_welcome.ipynb"
        if first.exists():
            out.append(f"open it with: jupyter lab {_shown(first)}")
        return out


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _updated_name(name: str) -> str:
    return name[: -len(".ipynb")] + UPDATED_SUFFIX


def _check_directory(directory: Path, source: Path) -> Path:
    directory = Path(directory).expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"the workspace {directory} is a file: pass a folder with --dir")
    for tracked in (source.resolve(), NOTEBOOKS_DIR.resolve(), SOLUTIONS_DIR.resolve()):
        if directory == tracked or tracked in directory.parents:
            raise ValueError(
                f"the workspace {directory} is inside the course's own {tracked.name}/ folder, "
                "which a course update overwrites: pick a folder outside it "
                "(the default is workspace/ in the course folder)"
            )
    return directory


def _shipped(source: Path) -> dict[str, bytes]:
    notebooks = {p.name: p.read_bytes() for p in sorted(source.glob("*.ipynb"))}
    notebooks = {name: data for name, data in notebooks.items() if LESSON_NAME.match(name)}
    if not notebooks:
        raise ValueError(
            f"no lesson notebooks (NN_name.ipynb) in {source}: "
            "run this from a complete copy of the course"
        )
    return notebooks


def read_manifest(directory: Path) -> dict[str, str]:
    """``{file name: content hash of the copy as written}``; empty for a new workspace."""
    path = Path(directory) / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("format") != MANIFEST_FORMAT or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()
        ):
            raise ValueError("unknown format")
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise ValueError(
            f"the workspace manifest {path} is unreadable ({e}). Delete it and run again: "
            "your notebooks stay; any that differ from the course's are then kept as edited."
        ) from None
    return dict(files)


def _write_manifest(directory: Path, files: dict[str, str]) -> None:
    text = json.dumps({"format": MANIFEST_FORMAT, "files": dict(sorted(files.items()))}, indent=2)
    atomic_write(directory / MANIFEST_NAME, lambda tmp: tmp.write_text(text + "\n", "utf-8"))


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """:func:`labs.checkpoints.atomic_write`, imported when first needed (it imports torch,
    which a run with nothing to write can do without)."""
    from labs.checkpoints import atomic_write as write_atomically

    write_atomically(path, write)


def _write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def _status(path: Path, recorded: str | None, new_hash: str) -> str:
    """'absent', 'same' (already says what ``new`` says), 'ours' (unedited) or 'edited'."""
    if not path.exists():
        return "absent"
    current = content_hash(path.read_bytes())
    if current == new_hash:
        return "same"
    return "ours" if current == recorded else "edited"


def sync(
    directory: Path | str = DEFAULT_DIR,
    *,
    source: Path | str = NOTEBOOKS_DIR,
    dry_run: bool = False,
) -> Report:
    """Bring the workspace up to date with ``source``; never overwrite an edited notebook.

    For each lesson notebook in ``source``: a missing copy is added; a copy that you
    have not edited since it was written is replaced by the new version; an edited
    copy stays as it is and the new version goes to ``NN_name.updated.ipynb`` beside
    it (itself replaced only while unedited). Files the course does not ship are
    never touched.
    """
    source = Path(source)
    directory = _check_directory(Path(directory), source)
    shipped = _shipped(source)
    manifest = read_manifest(directory)
    report = Report(directory)
    files = dict(manifest)

    for name, data in shipped.items():
        new_hash = content_hash(data)
        target = directory / name
        status = _status(target, manifest.get(name), new_hash)
        if status == "same":
            report.unchanged.append(name)
            files[name] = new_hash
        elif status in ("absent", "ours"):
            (report.added if status == "absent" else report.updated).append(name)
            if not dry_run:
                _write(target, data)
            files[name] = new_hash
        elif manifest.get(name) == new_hash:
            # edited, and the course has nothing newer than what you started from
            report.unchanged.append(name)
        else:
            updated = _updated_name(name)
            side = _status(directory / updated, manifest.get(updated), new_hash)
            if side == "edited":
                report.kept[name] = None
                continue
            report.kept[name] = updated
            if side != "same" and not dry_run:
                _write(directory / updated, data)
            files[updated] = new_hash

    # an .updated copy is stale once its notebook says the same and the copy is unedited
    for updated in [n for n in files if n.endswith(UPDATED_SUFFIX)]:
        name = updated[: -len(UPDATED_SUFFIX)] + ".ipynb"
        path = directory / updated
        if name in report.kept:
            continue
        if not path.exists():
            del files[updated]
        elif (
            content_hash(path.read_bytes()) == files[updated] == files.get(name)
            and (directory / name).exists()
            and content_hash((directory / name).read_bytes()) == files[name]
        ):
            report.removed.append(updated)
            if not dry_run:
                path.unlink()
            del files[updated]

    if not dry_run and files != manifest:
        directory.mkdir(parents=True, exist_ok=True)
        _write_manifest(directory, files)
    return report


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m labs.workspace",
        description=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help=f"the workspace folder (default: {_shown(DEFAULT_DIR)})",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would change; write nothing"
    )
    parser.add_argument("--source", type=Path, default=NOTEBOOKS_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        report = sync(args.dir, source=args.source, dry_run=args.dry_run)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("\n".join(report.lines(dry_run=args.dry_run)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
