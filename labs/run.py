"""Run lessons headless and collect their measured outcomes.

    python -m labs.run [PATTERN ...] [--mode smoke|full] [--which student|solutions|both]
                       [--jobs N] [--out DIR] [--device auto|cpu|cuda] [--timeout S]

Each matching notebook is executed by papermill (``SMOKE``/``DEVICE`` injected into
its ``parameters`` cell) in a fresh working directory, at most N at a time. The
executed notebooks go to ``DIR/<solutions|notebooks>/``; ``DIR/outcomes.json`` gets
one entry per notebook: status, seconds, peak RSS, the metrics the lesson reported,
its bounds met or missed, and its exercise checks. A notebook fails when a cell
raises, when it reports no outcome, when a bound of this mode is missed, or (for a
solution notebook) when one of its own exercise checks does not pass. The exit status
is 1 if any notebook failed.

PATTERN picks lessons by number or name: ``00``, ``welcome``, ``'0[1-3]*'``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from labs.checks.core import CHECK_MIMETYPE
from labs.outcomes import OUTCOME_MIMETYPE, TARGETS, evaluate
from labs.paths import NOTEBOOKS_DIR, REPO_ROOT, SOLUTIONS_DIR

BUDGET_SECONDS = {"smoke": 60, "full": 600}
BUDGET_RSS_MB = 2048
DEFAULT_TIMEOUT = {"smoke": 300, "full": 1800}
WHICH_DIRS = {
    "solutions": (SOLUTIONS_DIR,),
    "student": (NOTEBOOKS_DIR,),
    "both": (SOLUTIONS_DIR, NOTEBOOKS_DIR),
}


@dataclass
class Job:
    source: Path  # the notebook to run
    key: str  # "solutions/00_welcome.ipynb"
    output: Path  # executed copy
    cwd: Path  # fresh working directory

    @property
    def lesson(self) -> str:
        return self.source.stem

    @property
    def is_solution(self) -> bool:
        return self.source.parent.name == SOLUTIONS_DIR.name


@dataclass
class Result:
    key: str
    mode: str
    status: str = "failed"
    seconds: float = 0.0
    peak_rss_mb: float | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    bounds: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    output: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "mode": self.mode,
            "seconds": round(self.seconds, 2),
            "peak_rss_mb": None if self.peak_rss_mb is None else round(self.peak_rss_mb, 1),
            "budget_seconds": BUDGET_SECONDS[self.mode],
            "metrics": self.metrics,
            "bounds": self.bounds,
            "checks": self.checks,
            "error": self.error,
            "output": self.output,
        }


def discover(patterns: list[str], which: str) -> list[Path]:
    """Notebooks matching any pattern (all when none), lesson order, solutions first."""
    found = []
    for directory in WHICH_DIRS[which]:
        notebooks = sorted(directory.glob("*.ipynb"))
        if not notebooks:
            raise SystemExit(f"error: no notebooks in {directory}")
        found.extend(notebooks)
    if not patterns:
        return found
    selected = []
    for pattern in patterns:
        glob = any(ch in pattern for ch in "*?[")
        matches = [
            p for p in found if (fnmatch.fnmatch(p.stem, pattern) if glob else pattern in p.stem)
        ]
        if not matches:
            names = ", ".join(sorted({p.stem for p in found}))
            raise SystemExit(f"error: no notebook matches {pattern!r}; the lessons are: {names}")
        selected.extend(p for p in matches if p not in selected)
    return sorted(selected, key=lambda p: (WHICH_DIRS["both"].index(p.parent), p.name))


def collect(nb: nbformat.NotebookNode) -> tuple[list[dict], list[dict]]:
    """The outcome and check records a notebook displayed, in order."""
    outcomes, checks = [], []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if OUTCOME_MIMETYPE in data:
                outcomes.append(data[OUTCOME_MIMETYPE])
            if CHECK_MIMETYPE in data:
                checks.append(data[CHECK_MIMETYPE])
    return outcomes, checks


def judge(result: Result, job: Job, nb: nbformat.NotebookNode | None) -> None:
    """Fill metrics, checks and bounds from the executed notebook; decide the status."""
    problems = [result.error] if result.error else []
    if nb is not None:
        outcomes, checks = collect(nb)
        for outcome in outcomes:
            if outcome.get("lesson") != job.lesson:
                problems.append(
                    f"reported an outcome for lesson {outcome.get('lesson')!r}, expected {job.lesson!r}"
                )
            result.metrics.update(outcome.get("metrics", {}))
        result.checks = {c["exercise"]: c["status"] for c in checks}
        if job.is_solution:
            problems += [
                f"exercise check {c['exercise']!r} did not pass in the solution: {c['message']}"
                for c in checks
                if c["status"] != "passed"
            ]
        if not result.error:
            if not outcomes:
                problems.append(
                    "reported no measured outcome (call labs.outcomes.report_outcome at the end)"
                )
            elif job.lesson not in TARGETS:
                problems.append(f"lesson {job.lesson!r} has no bounds in labs.outcomes.TARGETS")
            else:
                for r in evaluate(job.lesson, result.mode, result.metrics):
                    result.bounds[r.metric] = r.to_json()
                    if not r.met:
                        problems.append(
                            f"{r.metric}={r.value} misses the {result.mode} bound ({r.bound})"
                        )
    result.status = "failed" if problems else "ok"
    result.error = "; ".join(problems) or None


def execute(
    job: Job, mode: str, parameters: dict[str, Any], timeout: int, threads: int | None
) -> Result:
    result = Result(job.key, mode, output=str(job.output))
    shutil.rmtree(job.cwd, ignore_errors=True)
    job.cwd.mkdir(parents=True)
    job.output.parent.mkdir(parents=True, exist_ok=True)
    job.output.unlink(missing_ok=True)
    env = dict(
        os.environ,
        AIGC_LAB_SMOKE="1" if mode == "smoke" else "0",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env.pop("MPLBACKEND", None)  # figures render inline, as in JupyterLab
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, str(threads))
    command = [
        sys.executable,
        "-m",
        "labs._execute",
        str(job.source),
        str(job.output),
        "--cwd",
        str(job.cwd),
        "--parameters",
        json.dumps(parameters),
        "--cell-timeout",
        str(timeout),
    ]
    start = time.monotonic()
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the kernel too
        proc.communicate()
        result.seconds = time.monotonic() - start
        result.error = f"timed out after {timeout} s (raise --timeout, or look for a stuck cell)"
        judge(result, job, _read(job.output))
        return result
    result.seconds = time.monotonic() - start
    try:
        report = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = " ".join(stderr.strip().splitlines()[-3:])
        report = {
            "error": f"the papermill worker crashed (exit {proc.returncode}): {tail}",
            "peak_rss_mb": None,
        }
    result.error = report["error"]
    result.peak_rss_mb = report["peak_rss_mb"]
    judge(result, job, _read(job.output))
    return result


def _read(path: Path) -> nbformat.NotebookNode | None:
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None


def format_table(results: list[Result]) -> str:
    rows = [("notebook", "mode", "status", "seconds", "peak MB", "checks", "outcome")]
    for r in results:
        over_time = r.seconds > BUDGET_SECONDS[r.mode]
        over_rss = r.peak_rss_mb is not None and r.peak_rss_mb > BUDGET_RSS_MB
        passed = sum(s == "passed" for s in r.checks.values())
        outcome = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.metrics.items()
        )
        rows.append(
            (
                r.key,
                r.mode,
                r.status,
                f"{r.seconds:.1f}" + ("!" if over_time else ""),
                ("n/a" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.0f}")
                + ("!" if over_rss else ""),
                f"{passed}/{len(r.checks)}",
                outcome,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]
    lines.insert(1, "-" * min(120, max(len(line) for line in lines)))
    return "\n".join(line.rstrip() for line in lines)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".outcomes.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def run(patterns: list[str], *, which: str = "both", **options: Any) -> list[Result]:
    """Execute the notebooks matching ``patterns``; see :func:`run_notebooks` for options."""
    return run_notebooks(discover(patterns, which), **options)


def run_notebooks(
    sources: list[Path],
    *,
    mode: str = "smoke",
    jobs: int = 1,
    out: Path = REPO_ROOT / "build" / "run",
    device: str = "auto",
    timeout: int | None = None,
    quiet: bool = False,
) -> list[Result]:
    """Execute ``sources`` (paths to notebooks); write ``out/outcomes.json``; return the results.

    Notebooks in a folder named ``solutions`` must also pass their own exercise checks.
    """
    if mode not in BUDGET_SECONDS:
        raise ValueError(f"mode must be 'smoke' or 'full', got {mode!r}")
    out = Path(out).resolve()
    jobs_list = []
    for source in sources:
        folder = source.parent.name
        jobs_list.append(
            Job(
                source,
                f"{folder}/{source.name}",
                out / folder / source.name,
                out / "work" / folder / source.stem,
            )
        )
    parameters = {"SMOKE": mode == "smoke", "DEVICE": device}
    timeout = timeout or DEFAULT_TIMEOUT[mode]
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    say(f"running {len(jobs_list)} notebook(s) in {mode} mode, {jobs} at a time -> {out}")
    results: dict[str, Result] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            pool.submit(execute, job, mode, parameters, timeout, threads): job for job in jobs_list
        }
        for done, future in enumerate(as_completed(futures), start=1):
            r = future.result()
            results[r.key] = r
            say(
                f"[{done}/{len(jobs_list)}] {r.status:<6} {r.key}  {r.seconds:.1f} s"
                + (f"  -- {r.error}" if r.error else "")
            )
    ordered = [results[job.key] for job in jobs_list]
    write_json(out / "outcomes.json", {r.key: r.to_json() for r in ordered})
    say("")
    say(format_table(ordered))
    failed = [r for r in ordered if r.status != "ok"]
    if any(r.seconds > BUDGET_SECONDS[r.mode] for r in ordered):
        say(
            f"! over the {mode} budget of {BUDGET_SECONDS[mode]} s per notebook (a warning, not a failure)"
        )
    if any(r.peak_rss_mb and r.peak_rss_mb > BUDGET_RSS_MB for r in ordered):
        say(f"! over the memory budget of {BUDGET_RSS_MB} MB (a warning, not a failure)")
    say(
        f"\n{len(ordered) - len(failed)} ok, {len(failed)} failed; outcomes in {out / 'outcomes.json'}"
    )
    return ordered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m labs.run",
        description="\n\n".join(__doc__.split("\n\n")[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "patterns", nargs="*", metavar="PATTERN", help="lesson number or name (default: all)"
    )
    parser.add_argument("--mode", choices=("smoke", "full"), default="smoke")
    parser.add_argument("--which", choices=("student", "solutions", "both"), default="both")
    parser.add_argument(
        "--jobs", type=int, default=1, help="notebooks at a time (2 suits a 2-core machine)"
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "run")
    parser.add_argument("--device", default="auto", help="DEVICE injected into every notebook")
    parser.add_argument(
        "--timeout",
        type=int,
        default=None,
        help="seconds per notebook (default: smoke 300, full 1800)",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    results = run(
        args.patterns,
        mode=args.mode,
        which=args.which,
        jobs=args.jobs,
        out=args.out,
        device=args.device,
        timeout=args.timeout,
    )
    return 1 if any(r.status != "ok" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
