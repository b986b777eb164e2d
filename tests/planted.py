"""Shared pieces of the planted-bug registry (tests of the tests).

Each lesson's planted bugs live in ``tests/bugs_<topic>.py``, a module that defines

- ``PLANTED_BUGS: dict[str, list[Bug]]`` — per exercise, broken implementations a learner
  might write, each with a substring the check's feedback must contain;
- ``CORRECT_IMPLEMENTATIONS: dict[str, list[tuple[str, Callable]]]`` — other correct ways
  to write it, which the check must accept.

:func:`collect` merges every such module; ``tests/test_check_exercises.py`` runs them.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable
from pathlib import Path

# (description, broken implementation, substring the feedback must contain)
Bug = tuple[str, Callable, str]


def as_typed(fn: Callable) -> Callable:
    """A copy of ``fn`` with the same code: the solution as a learner would have typed it.

    The check treats the reference object itself as "handed back earlier" (not done),
    so a passing run needs a distinct function object.
    """
    copied = types.FunctionType(
        fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )
    copied.__kwdefaults__ = fn.__kwdefaults__
    return copied


def collect() -> tuple[dict[str, list[Bug]], dict[str, list[tuple[str, Callable]]]]:
    """Merge PLANTED_BUGS and CORRECT_IMPLEMENTATIONS from every ``tests/bugs_*.py``."""
    bugs: dict[str, list[Bug]] = {}
    correct: dict[str, list[tuple[str, Callable]]] = {}
    for path in sorted(Path(__file__).parent.glob("bugs_*.py")):
        module = importlib.import_module(path.stem)
        for exercise, entries in module.PLANTED_BUGS.items():
            if exercise in bugs:
                raise ValueError(f"exercise {exercise!r} has planted bugs in two modules")
            bugs[exercise] = list(entries)
        for exercise, entries in getattr(module, "CORRECT_IMPLEMENTATIONS", {}).items():
            correct.setdefault(exercise, []).extend(entries)
    return bugs, correct
