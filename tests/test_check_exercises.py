"""Tests of the tests: every exercise check must catch the mistakes learners make.

Each lesson's ``tests/bugs_<topic>.py`` lists, per exercise, broken implementations a
learner might write and a substring the check's feedback must contain for each (see
``tests/planted.py``). A test below fails when a module in ``labs.checks`` defines a
check without at least three planted bugs, so a new lesson cannot ship a check that
nobody tried to fool.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from planted import as_typed, collect

import labs.checks
from labs.checks.core import FunctionCheck

MIN_PLANTED_BUGS = 3


PLANTED_BUGS, CORRECT_IMPLEMENTATIONS = collect()


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
        "in a tests/bugs_<topic>.py module"
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
