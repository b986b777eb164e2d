"""Execute one notebook with papermill in this process; print a JSON line with the result.

Internal to ``python -m labs.run``, which starts one of these per notebook so that
each notebook's kernel is this process's only child: its peak memory is then
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` once the kernel has exited.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def peak_child_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (
        peak / 2**20 if sys.platform == "darwin" else peak / 2**10
    )  # bytes on macOS, KiB on Linux


def short_error(exc: BaseException) -> str:
    ename = getattr(exc, "ename", None)
    if ename:  # papermill.PapermillExecutionError
        count = getattr(exc, "exec_count", None)
        text = (
            f"cell [{count}]: {ename}: {exc.evalue}"
            if count is not None
            else f"{ename}: {exc.evalue}"
        )
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= 500 else text[:497] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--parameters", default="{}")
    parser.add_argument("--cell-timeout", type=int, default=None)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # papermill's own chatter; errors come back below

    import papermill

    error = None
    try:
        papermill.execute_notebook(
            args.input,
            args.output,
            parameters=json.loads(args.parameters),
            cwd=args.cwd,
            kernel_name="python3",
            execution_timeout=args.cell_timeout,
            progress_bar=False,
            log_output=False,
        )
    except Exception as exc:
        error = short_error(exc)
    print(json.dumps({"error": error, "peak_rss_mb": peak_child_rss_mb()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
