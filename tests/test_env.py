"""Unit tests for the environment check (``labs.env``)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from labs import env
from labs.paths import REPO_ROOT

# --------------------------------------------------------------------------- read_requirements


def test_read_requirements_skips_comments_blanks_and_options(tmp_path):
    """Comments, blank lines and pip options are skipped; pins are parsed."""
    path = tmp_path / "requirements.txt"
    path.write_text(
        "# a comment\n"
        "\n"
        "torch==2.13.0\n"
        "   \n"
        "numpy>=1.24,<3  # inline comment\n"
        "-e .\n"
        "--extra-index-url https://download.pytorch.org/whl/cpu\n"
        "-r other.txt\n"
        'colorama==0.4.6; sys_platform == "win32"\n',
        encoding="utf-8",
    )
    reqs = env.read_requirements(path)
    assert [r.name for r in reqs] == ["torch", "numpy", "colorama"]
    assert str(reqs[0].specifier) == "==2.13.0"
    assert reqs[1].specifier.contains("2.0") and not reqs[1].specifier.contains("3.0")
    assert reqs[2].marker is not None


def test_read_requirements_invalid_line_names_line_number(tmp_path):
    """An unparsable line is a ValueError naming the file's line number."""
    path = tmp_path / "requirements.txt"
    path.write_text("torch==2.13.0\n\nthis is not a requirement!\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3") as excinfo:
        env.read_requirements(path)
    assert "this is not a requirement!" in str(excinfo.value)


def test_read_requirements_missing_file(tmp_path):
    """A missing file is a FileNotFoundError that says where to run the check from."""
    with pytest.raises(FileNotFoundError, match="course folder"):
        env.read_requirements(tmp_path / "nope.txt")


def test_real_requirements_pin_every_package():
    """The course's requirements.txt parses and pins each package to one version."""
    reqs = env.read_requirements()
    names = [r.name for r in reqs]
    assert "torch" in names and "safetensors" in names
    for r in reqs:
        assert str(r.specifier).startswith("=="), f"{r.name} is not pinned: {r}"


# --------------------------------------------------------------------------- check_requirement


def test_matching_pin_is_ok():
    """An installed package at the pinned version is OK and shows its version."""
    installed = metadata.version("packaging")
    item = env.check_requirement(Requirement(f"packaging=={installed}"))
    assert item.ok
    assert item.name == "packaging"
    assert item.detail == installed
    assert item.line() == f"[OK] packaging: {installed}"


def test_mismatching_pin_fails_with_advice():
    """A different installed version fails, says which is installed and how to fix it."""
    installed = metadata.version("packaging")
    item = env.check_requirement(Requirement("packaging==0.0.1"))
    assert not item.ok
    assert installed in item.detail
    assert "==0.0.1" in item.detail
    assert "pip install -r requirements.txt" in item.detail
    assert item.line().startswith("[FAIL] packaging:")


def test_missing_package_fails():
    """A package that is not installed fails as 'not installed'."""
    item = env.check_requirement(Requirement("surely-not-installed-aigc-pkg==1.0"))
    assert not item.ok
    assert "not installed" in item.detail


def test_requirement_with_false_marker_is_ok():
    """A requirement for another platform is not needed here, even if it is not installed."""
    item = env.check_requirement(
        Requirement('surely-not-installed-aigc-pkg==1.0; sys_platform == "nonexistent"')
    )
    assert item.ok
    assert "not needed" in item.detail


def test_requirement_without_version_is_ok_when_installed():
    """An unpinned requirement only needs the package to be installed."""
    assert env.check_requirement(Requirement("packaging")).ok


# --------------------------------------------------------------------------- report


def test_report_prints_lines_and_counts_failures(capsys):
    """report prints one [OK]/[FAIL] line per item and returns the number of failures."""
    items = [
        env.EnvItem("alpha", True, "1.0"),
        env.EnvItem("beta", False, "missing"),
        env.EnvItem("gamma", False, "too old"),
    ]
    assert env.report(items) == 2
    out = capsys.readouterr().out
    assert "[OK] alpha: 1.0" in out
    assert "[FAIL] beta: missing" in out
    assert "[FAIL] gamma: too old" in out
    assert "1 OK, 2 FAIL" in out


def test_report_all_ok(capsys):
    """No failures: 0 returned and 'ready to go'."""
    assert env.report([env.EnvItem("alpha", True, "1.0")]) == 0
    assert "ready to go" in capsys.readouterr().out


# --------------------------------------------------------------------------- the real environment


def test_environment_matches_the_pins(tmp_path, monkeypatch):
    """The environment running these tests matches requirements.txt exactly."""
    monkeypatch.setenv("AIGC_LAB_CACHE", str(tmp_path / "cache"))
    items = env.check_environment()
    failures = [item.line() for item in items if not item.ok]
    assert failures == []
    names = {item.name for item in items}
    assert {"Python", "torch", "device", "free memory", "checkpoint cache"} <= names


def test_python_m_labs_env(tmp_path):
    """``python -m labs.env`` exits 0 and reports torch as OK."""
    environ = dict(os.environ, AIGC_LAB_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-m", "labs.env"],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[OK] torch" in proc.stdout
    assert "0 FAIL" in proc.stdout


# --------------------------------------------------------------------------- check_cache


def test_check_cache_unwritable(tmp_path, monkeypatch):
    """A cache path that cannot be created fails and suggests AIGC_LAB_CACHE."""
    blocker = tmp_path / "afile"
    blocker.write_text("I am a file, not a folder")
    monkeypatch.setenv("AIGC_LAB_CACHE", str(blocker / "cache"))
    item = env.check_cache()
    assert not item.ok
    assert "not writable" in item.detail
    assert "AIGC_LAB_CACHE" in item.detail


def test_check_cache_writable(tmp_path, monkeypatch):
    """A writable cache folder is created if needed and reported OK, left empty."""
    cache = tmp_path / "new" / "cache"
    monkeypatch.setenv("AIGC_LAB_CACHE", str(cache))
    item = env.check_cache()
    assert item.ok
    assert str(cache) in item.detail
    assert cache.is_dir()
    assert list(cache.iterdir()) == []


def test_check_python_ok():
    """The interpreter running the tests is new enough."""
    item = env.check_python()
    assert item.ok
    assert item.detail.startswith(f"{sys.version_info.major}.{sys.version_info.minor}")


def test_check_memory_threshold():
    """Free memory passes a tiny threshold and fails an absurd one, with advice."""
    assert env.check_memory(min_gb=0.0).ok
    item = env.check_memory(min_gb=1e9)
    assert not item.ok
    assert "close other programs" in item.detail
