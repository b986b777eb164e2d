"""Environment check: one [OK]/[FAIL] line per requirement.

    python -m labs.env          # exit status 1 if anything fails

Checks Python, every package pinned in ``requirements.txt`` (installed version vs
the tested one), PyTorch's device and threads, free memory and the checkpoint cache.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from labs.paths import REQUIREMENTS_FILE, cache_dir

MIN_PYTHON = (3, 10)
MIN_FREE_MEMORY_GB = 2.0


@dataclass
class EnvItem:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"[{'OK' if self.ok else 'FAIL'}] {self.name}: {self.detail}"


def read_requirements(path: Path | str = REQUIREMENTS_FILE) -> list[Requirement]:
    """Requirement lines of a requirements file (options such as ``-e .`` are skipped)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no requirements file at {path}: run the check from the course folder."
        )
    requirements = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = re.split(r"\s#", raw, maxsplit=1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            requirements.append(Requirement(line))
        except InvalidRequirement as exc:
            raise ValueError(
                f"{path.name} line {number}: {line!r} is not a valid requirement ({exc})"
            ) from None
    return requirements


def check_requirement(requirement: Requirement) -> EnvItem:
    if requirement.marker is not None and not requirement.marker.evaluate():
        return EnvItem(
            requirement.name, True, f"not needed on this platform ({requirement.marker})"
        )
    try:
        installed = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        return EnvItem(
            requirement.name,
            False,
            f"not installed (tested with {requirement.specifier}): pip install -r requirements.txt",
        )
    if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
        return EnvItem(
            requirement.name,
            False,
            f"{installed} installed, but the course is tested with {requirement.specifier}: pip install -r requirements.txt",
        )
    return EnvItem(requirement.name, True, installed)


def check_python() -> EnvItem:
    version = platform.python_version()
    ok = sys.version_info[:2] >= MIN_PYTHON
    need = ".".join(map(str, MIN_PYTHON))
    return EnvItem(
        "Python", ok, f"{version}" + ("" if ok else f" (the course needs {need} or newer)")
    )


def check_torch_device() -> list[EnvItem]:
    try:
        import torch
    except ImportError:
        return [EnvItem("PyTorch device", False, "PyTorch is not importable")]
    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)}); DEVICE='auto' will use it"
    else:
        device = "cpu (no CUDA GPU: fine, every lesson is sized for a laptop CPU)"
    threads = f"{torch.get_num_threads()} torch threads on {os.cpu_count()} logical CPUs"
    return [EnvItem("device", True, device), EnvItem("threads", True, threads)]


def check_memory(min_gb: float = MIN_FREE_MEMORY_GB) -> EnvItem:
    import psutil

    available = psutil.virtual_memory().available / 2**30
    ok = available >= min_gb
    detail = f"{available:.1f} GB available"
    if not ok:
        detail += f" (a lesson may need up to {min_gb:g} GB: close other programs)"
    return EnvItem("free memory", ok, detail)


def check_cache() -> EnvItem:
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return EnvItem(
            "checkpoint cache",
            False,
            f"{directory} is not writable ({exc}); set AIGC_LAB_CACHE to a writable folder",
        )
    return EnvItem("checkpoint cache", True, f"{directory} (writable)")


def check_environment(requirements_file: Path | str = REQUIREMENTS_FILE) -> list[EnvItem]:
    """Every check, in the order printed."""
    items = [check_python()]
    items += [check_requirement(r) for r in read_requirements(requirements_file)]
    items += check_torch_device()
    items += [check_memory(), check_cache()]
    return items


def report(items: list[EnvItem]) -> int:
    """Print the items; return the number of failures."""
    for item in items:
        print(item.line())
    failures = sum(not item.ok for item in items)
    print(f"\n{len(items) - failures} OK, {failures} FAIL" + ("" if failures else ": ready to go."))
    return failures


def main() -> int:
    return 1 if report(check_environment()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
