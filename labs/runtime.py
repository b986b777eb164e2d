"""Modes, seeding and devices: the first lines of every lesson.

>>> SMOKE = smoke_default()          # in the parameters cell
>>> device = setup(SEED, DEVICE)     # right after it
"""

from __future__ import annotations

import contextlib
import numbers
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

SMOKE_ENV = "AIGC_LAB_SMOKE"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def smoke_default() -> bool:
    """Whether to run small by default: ``AIGC_LAB_SMOKE=1`` says yes.

    Tools that cannot inject parameters (nbval, a plain "Run all") set the variable;
    papermill and ``python -m labs.run`` inject ``SMOKE`` directly.
    """
    value = os.environ.get(SMOKE_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{SMOKE_ENV}={os.environ[SMOKE_ENV]!r} is not understood: "
        "use 1 for the quick smoke run or 0 (or unset it) for the full lesson."
    )


def get_device(name: str = "auto") -> torch.device:
    """Resolve a device name: ``"auto"`` picks CUDA when present, else the CPU.

    Apple's MPS is used only when asked for by name (``"mps"``): some operations the
    course uses are missing or slower there.
    """
    key = str(name).strip().lower()
    if key not in DEVICE_CHOICES and not key.startswith("cuda:"):
        raise ValueError(
            f"unknown device {name!r}: expected one of {', '.join(DEVICE_CHOICES)} (or 'cuda:N')."
        )
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"DEVICE={name!r} but PyTorch sees no CUDA GPU on this machine: "
            "use DEVICE='auto' (falls back to the CPU) or 'cpu'."
        )
    if key == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ValueError("DEVICE='mps' but MPS is not available here: use 'auto' or 'cpu'.")
    return torch.device(key)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a CPU ``torch.Generator`` seeded the same.

    Re-running a cell after this gives the same numbers on the CPU.
    """
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise TypeError(f"SEED must be an int, got {seed!r} ({type(seed).__name__}).")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def setup(seed: int = 0, device: str = "auto", *, smoke: bool | None = None) -> torch.device:
    """Seed everything and pick the device; print one line saying what was chosen."""
    seed_everything(seed)
    resolved = get_device(device)
    mode = "" if smoke is None else f" | {'smoke mode (small and quick)' if smoke else 'full mode'}"
    print(
        f"seed {seed} | device {resolved} | torch {torch.__version__} | {torch.get_num_threads()} CPU threads{mode}"
    )
    return resolved


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run the ``with`` block on ``n`` CPU threads, then restore the previous count.

    Tiny tensors (a (V, V) table, a timing experiment) can be faster on one thread:
    splitting them across cores costs more than it saves, and much more on a busy machine.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"cpu_threads needs a positive int, got {n!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
