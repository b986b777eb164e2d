"""Every course notebook, student and solution, runs headless in smoke mode with the network off.

One run of `python -m labs.run --mode smoke --which both --jobs 2` (the instructors'
command) under `offline()`; the tests below read its outcomes.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from offline import offline

from labs.outcomes import TARGETS
from labs.paths import NOTEBOOKS_DIR, REPO_ROOT, SOLUTIONS_DIR

OUT = REPO_ROOT / "build" / "test-smoke"
LESSONS = sorted(p.stem for p in SOLUTIONS_DIR.glob("*.ipynb"))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    # An empty checkpoint cache: every lesson takes its "train it" path, and the student and
    # solution copies of a lesson, running side by side, write the same checkpoint at once.
    env = dict(os.environ, AIGC_LAB_CACHE=str(tmp_path_factory.mktemp("smoke-cache")))
    command, env, how = offline(
        [
            sys.executable,
            "-m",
            "labs.run",
            "--mode",
            "smoke",
            "--which",
            "both",
            "--jobs",
            "2",
            "--out",
            str(OUT),
        ],
        env,
    )
    proc = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1500
    )
    print(f"network disabled by: {how}\n{proc.stdout}\n{proc.stderr}")
    outcomes = json.loads((OUT / "outcomes.json").read_text())
    return proc, outcomes


def test_runner_exits_zero_and_prints_the_table(smoke_run):
    proc, _ = smoke_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "notebook" in proc.stdout and "peak MB" in proc.stdout


def test_every_notebook_ran(smoke_run):
    _, outcomes = smoke_run
    expected = {f"solutions/{s}.ipynb" for s in LESSONS} | {f"notebooks/{s}.ipynb" for s in LESSONS}
    assert set(outcomes) == expected
    assert {p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")} == set(LESSONS)


@pytest.mark.parametrize("lesson", LESSONS)
@pytest.mark.parametrize("folder", ["solutions", "notebooks"])
def test_smoke_bounds_met(smoke_run, folder, lesson):
    entry = smoke_run[1][f"{folder}/{lesson}.ipynb"]
    assert entry["status"] == "ok", entry["error"]
    assert entry["mode"] == "smoke"
    assert set(entry["bounds"]) == set(TARGETS[lesson]["smoke"])
    assert all(b["met"] for b in entry["bounds"].values()), entry["bounds"]
    assert entry["seconds"] > 0 and entry["peak_rss_mb"] > 50


@pytest.mark.parametrize("lesson", LESSONS)
def test_solutions_pass_every_check_and_students_get_stubs(smoke_run, lesson):
    solution = smoke_run[1][f"solutions/{lesson}.ipynb"]["checks"]
    student = smoke_run[1][f"notebooks/{lesson}.ipynb"]["checks"]
    assert solution, "every lesson has at least one exercise check"
    assert set(solution.values()) == {"passed"}
    assert set(student) == set(solution)
    assert set(student.values()) == {"not_done"}, "a student stub should report 'not done yet'"


def test_the_offline_wrapper_really_blocks_the_network():
    """The wrapper used above refuses outside connections but keeps loopback."""
    probe = (
        "import socket\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print('loopback ok')\n"
        "try:\n"
        "    socket.create_connection(('93.184.215.14', 80), timeout=5)\n"
        "    print('CONNECTED')\n"
        "except OSError as exc:\n"
        "    print('blocked:', exc)\n"
    )
    command, env, how = offline([sys.executable, "-c", probe])
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60).stdout
    assert "loopback ok" in out and "blocked:" in out and "CONNECTED" not in out, (how, out)


def test_the_fallback_guard_blocks_lookups_and_connections(monkeypatch):
    """The documented equivalent for machines without `unshare` works too."""
    import offline as offline_module

    monkeypatch.setenv("AIGC_LAB_OFFLINE", "guard")
    offline_module.unshare_works.cache_clear()
    try:
        probe = (
            "import socket\n"
            "for call in (lambda: socket.getaddrinfo('pypi.org', 443), "
            "lambda: socket.create_connection(('93.184.215.14', 80), timeout=5)):\n"
            "    try:\n"
            "        call(); print('REACHED')\n"
            "    except OSError as exc:\n"
            "        print('blocked:', exc)\n"
        )
        command, env, how = offline_module.offline([sys.executable, "-c", probe])
        assert "guard" in how
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60).stdout
        assert out.count("blocked: AIGC Lab offline guard") == 2 and "REACHED" not in out, out
    finally:
        offline_module.unshare_works.cache_clear()
