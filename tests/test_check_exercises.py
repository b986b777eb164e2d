"""Tests of the tests: every exercise check must catch the mistakes learners make.

``PLANTED_BUGS`` lists, per exercise, broken implementations a learner might write and
a substring the check's feedback must contain for each. The discovery test at the end
fails when a module in ``labs.checks`` defines a check without at least three planted
bugs here, so a new lesson cannot ship a check that nobody tried to fool.
"""

from __future__ import annotations

import importlib
import pkgutil
import types
from collections.abc import Callable

import pytest
import torch

import labs.checks
from labs import welcome
from labs.checks.core import FunctionCheck

MIN_PLANTED_BUGS = 3


# --------------------------------------------------------------------------- softmax bugs


def _softmax_no_max_subtraction(x, dim=-1):
    e = x.exp()
    return e / e.sum(dim=dim, keepdim=True)


def _softmax_global_max(x, dim=-1):
    e = (x - x.max()).exp()
    return e / e.sum(dim=dim, keepdim=True)


def _softmax_sum_over_dim0(x, dim=-1):
    e = (x - x.amax(dim=dim, keepdim=True)).exp()
    return e / e.sum(dim=0, keepdim=True)


def _softmax_no_keepdim(x, dim=-1):
    e = (x - x.amax(dim=dim, keepdim=True)).exp()
    return e / e.sum(dim=dim)


def _softmax_float64(x, dim=-1):
    return welcome.softmax(x.double(), dim=dim)


def _softmax_unnormalised(x, dim=-1):
    return (x - x.amax(dim=dim, keepdim=True)).exp()


def _softmax_in_place(x, dim=-1):
    x -= x.amax(dim=dim, keepdim=True)
    e = x.exp()
    return e / e.sum(dim=dim, keepdim=True)


def _softmax_transposed(x, dim=-1):
    return welcome.softmax(x, dim=dim).transpose(0, -1)


def _softmax_off_by_one(x, dim=-1):
    e = (x - x.amax(dim=dim, keepdim=True)).exp()
    return e / (e.sum(dim=dim, keepdim=True) + 1)


def _softmax_ignores_dim(x, dim=-1):
    return welcome.softmax(x, dim=-1)


def _softmax_mean_shift(x, dim=-1):
    e = (x - x.mean(dim=dim, keepdim=True)).exp()
    return e / e.sum(dim=dim, keepdim=True)


def _softmax_log_probs(x, dim=-1):
    return torch.log_softmax(x, dim=dim)


# (description, broken implementation, substring the feedback must contain)
Bug = tuple[str, Callable, str]

PLANTED_BUGS: dict[str, list[Bug]] = {
    "softmax": [
        (
            "no max subtraction: exp overflows to inf, inf/inf = NaN",
            _softmax_no_max_subtraction,
            "NaN or inf",
        ),
        (
            "no max subtraction fails on the large-logits case",
            _softmax_no_max_subtraction,
            "(large logits around ±1000)",
        ),
        (
            "global max instead of the max along dim",
            _softmax_global_max,
            "(large logits around ±1000)",
        ),
        (
            "normalising over dim 0 instead of dim",
            _softmax_sum_over_dim0,
            "(a batch of rows, shape (4, 5)): output",
        ),
        (
            "sum without keepdim does not broadcast on a batch",
            _softmax_no_keepdim,
            "(a batch of rows, shape (4, 5)) raised RuntimeError",
        ),
        (
            "returns float64 instead of the input's dtype",
            _softmax_float64,
            "expected dtype torch.float32, got torch.float64",
        ),
        (
            "forgets to normalise (just exp of shifted)",
            _softmax_unnormalised,
            "[1, 2, 3]): output: 3 of 3 entries differ",
        ),
        ("modifies x in place", _softmax_in_place, "changed its input in place"),
        ("returns the transposed result", _softmax_transposed, "expected shape (4, 5), got (5, 4)"),
        (
            "off-by-one in the denominator",
            _softmax_off_by_one,
            "[1, 2, 3]): output: 3 of 3 entries differ",
        ),
        (
            "ignores the dim argument (always -1)",
            _softmax_ignores_dim,
            "(dim=0 on a (3, 2) tensor): output",
        ),
        (
            "subtracts the mean instead of the max (-inf entries)",
            _softmax_mean_shift,
            "(masked entries (-inf) in a row)",
        ),
        ("returns log-probabilities", _softmax_log_probs, "got -2.40761"),
    ],
}


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


CORRECT_IMPLEMENTATIONS: dict[str, list[tuple[str, Callable]]] = {
    "softmax": [
        ("labs.welcome.softmax as typed", as_typed(welcome.softmax)),
        ("torch.softmax", lambda x, dim=-1: torch.softmax(x, dim=dim)),
        ("exp of log_softmax", lambda x, dim=-1: torch.log_softmax(x, dim=dim).exp()),
    ],
}


# --------------------------------------------------------------------------- discovery


def discover_checks() -> dict[str, FunctionCheck]:
    """Every FunctionCheck defined at module level anywhere in ``labs.checks``."""
    found: dict[str, FunctionCheck] = {}
    for info in pkgutil.iter_modules(labs.checks.__path__, prefix="labs.checks."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, FunctionCheck):
                found[value.exercise] = value
    return found


CHECKS = discover_checks()


def _bug_params():
    return [
        pytest.param(exercise, impl, expected, id=f"{exercise}: {description}")
        for exercise, bugs in PLANTED_BUGS.items()
        for description, impl, expected in bugs
    ]


def _correct_params():
    return [
        pytest.param(exercise, impl, id=f"{exercise}: {name}")
        for exercise, impls in CORRECT_IMPLEMENTATIONS.items()
        for name, impl in impls
    ]


# --------------------------------------------------------------------------- tests


def test_discovery_finds_the_softmax_check():
    """Discovery sees the checks that exist today (guards the discovery itself)."""
    assert "softmax" in CHECKS
    assert CHECKS["softmax"] is importlib.import_module("labs.checks.welcome").check_softmax


@pytest.mark.parametrize("exercise", sorted(CHECKS))
def test_every_check_has_planted_bugs(exercise):
    """Each check in labs.checks has at least three planted bugs in PLANTED_BUGS."""
    assert len(PLANTED_BUGS.get(exercise, [])) >= MIN_PLANTED_BUGS, (
        f"add at least {MIN_PLANTED_BUGS} planted bugs for {exercise!r} to PLANTED_BUGS "
        "in tests/test_check_exercises.py"
    )


def test_planted_bugs_name_existing_checks():
    """Every exercise in PLANTED_BUGS has a check (no stale entries)."""
    assert set(PLANTED_BUGS) <= set(CHECKS)
    assert set(CORRECT_IMPLEMENTATIONS) <= set(CHECKS)


@pytest.mark.parametrize("exercise", sorted(CHECKS))
def test_reference_passes_its_own_check(exercise):
    """Each check's reference implementation passes every case."""
    check = CHECKS[exercise]
    result = check.run(as_typed(check.reference))
    assert result.status == "passed", result.text()
    assert result.cases_passed == result.cases_total > 0


@pytest.mark.parametrize("exercise", sorted(CHECKS))
def test_rechecking_the_handed_back_reference_is_not_done(exercise):
    """Running a check on the reference object it handed back is reported as not done."""
    check = CHECKS[exercise]
    assert check.run(check.reference).status == "not_done"


@pytest.mark.parametrize(("exercise", "impl"), _correct_params())
def test_correct_implementations_pass(exercise, impl):
    """Other correct implementations pass too (the check is not too strict)."""
    result = CHECKS[exercise].run(impl)
    assert result.status == "passed", result.text()


@pytest.mark.parametrize("exercise", sorted(CHECKS))
def test_stub_is_not_done(exercise):
    """The untouched stub (raising NotImplementedError) is reported as not done yet."""

    def stub(*args, **kwargs):
        raise NotImplementedError()

    result = CHECKS[exercise].run(stub)
    assert result.status == "not_done"
    assert "NOT DONE" in result.text()


@pytest.mark.parametrize(("exercise", "impl", "expected"), _bug_params())
def test_planted_bug_is_caught(exercise, impl, expected):
    """The planted bug fails the check with specific feedback and a hint."""
    result = CHECKS[exercise].run(impl)
    text = result.text()
    assert result.status in ("failed", "error"), text
    assert result.cases_passed < result.cases_total
    assert expected in text
    assert "hint:" in text


@pytest.mark.parametrize(("exercise", "impl", "expected"), _bug_params())
def test_planted_bug_gets_the_reference(exercise, impl, expected, capsys):
    """Calling the check on a planted bug hands back the reference, never the bug."""
    check = CHECKS[exercise]
    assert check(impl) is check.reference
    assert exercise in capsys.readouterr().out
