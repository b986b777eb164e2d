"""Run a command with the network disabled, as the offline tests require.

Preferred: ``unshare -n`` (a new network namespace with only loopback, brought up so
Jupyter kernels can still talk to papermill). Where that is impossible (not root),
the documented equivalent: ``offline_guard/sitecustomize.py`` on PYTHONPATH, an audit
hook in every Python process that refuses non-loopback lookups and connections.
``AIGC_LAB_OFFLINE=guard`` forces the fallback (to test it).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

GUARD_DIR = Path(__file__).resolve().parent / "offline_guard"


@functools.cache
def unshare_works() -> bool:
    if os.environ.get("AIGC_LAB_OFFLINE") == "guard" or not (
        shutil.which("unshare") and shutil.which("ip")
    ):
        return False
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True)
    return probe.returncode == 0


def offline(
    command: list[str], env: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str], str]:
    """``(command, env, how)`` that runs ``command`` with no network."""
    env = dict(os.environ if env is None else env)
    if unshare_works():
        wrapped = [
            "unshare",
            "-n",
            "sh",
            "-c",
            'ip link set lo up && exec "$@"',
            "offline",
            *command,
        ]
        return wrapped, env, "unshare -n (network namespace with loopback only)"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(GUARD_DIR), env.get("PYTHONPATH", "")) if p)
    return command, env, "audit-hook guard (offline_guard/sitecustomize.py)"
