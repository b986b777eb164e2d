"""Unit tests for the exercise-check machinery in ``labs.checks.core``."""

from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest
import torch

from labs.checks.core import (
    CHECK_MIMETYPE,
    Case,
    CheckResult,
    Comparison,
    FunctionCheck,
    cmp,
    compare,
)

NAN = float("nan")


# --------------------------------------------------------------------------- compare: tensors


def test_equal_tensors_are_ok_and_exact():
    """Identical tensors compare as ok and bit-for-bit exact."""
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    result = compare(x, x.clone())
    assert isinstance(result, Comparison)
    assert result.ok and result.exact
    assert result.max_abs_diff == 0.0
    assert result.message == ""


def test_tensors_within_tolerance_are_ok_but_not_exact():
    """A difference below atol + rtol*|expected| passes, is not exact, and is measured."""
    expected = torch.ones(3)
    got = expected + 5e-6
    result = compare(expected, got)
    assert result.ok
    assert not result.exact
    assert result.max_abs_diff == pytest.approx(5e-6, abs=1e-7)


def test_tensors_outside_tolerance_fail():
    """The same difference fails once the tolerance is tightened."""
    expected = torch.ones(3)
    result = compare(expected, expected + 5e-6, atol=1e-7, rtol=0.0)
    assert not result.ok and not result.exact


def test_shape_mismatch_names_both_shapes():
    """A shape mismatch says which shape was expected and which came."""
    result = compare(torch.zeros(2, 3), torch.zeros(3, 2))
    assert not result.ok
    assert "(2, 3)" in result.message
    assert "(3, 2)" in result.message
    assert "shape" in result.message


def test_dtype_mismatch_names_both_dtypes():
    """A dtype mismatch says which dtype was expected and which came."""
    result = compare(torch.zeros(2), torch.zeros(2, dtype=torch.float64))
    assert not result.ok
    assert "torch.float32" in result.message
    assert "torch.float64" in result.message


def test_value_mismatch_reports_count_index_and_values():
    """A value mismatch counts the differing entries and shows the first one in full."""
    expected = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    got = torch.tensor([[1.0, 2.0], [3.5, 4.5]])
    result = compare(expected, got)
    assert not result.ok
    assert "2 of 4 entries differ" in result.message
    assert "(1, 0)" in result.message
    assert "expected 3" in result.message
    assert "got 3.5" in result.message
    assert result.max_abs_diff == pytest.approx(0.5)


def test_message_starts_with_the_path():
    """The path argument prefixes the message, so nested failures can be located."""
    result = compare(torch.zeros(2), torch.ones(2), path="logits")
    assert result.message.startswith("logits:")


def test_nan_where_finite_expected_is_reported():
    """NaN in the result where a finite value was expected fails and says so."""
    result = compare(torch.tensor([1.0, 2.0]), torch.tensor([1.0, NAN]))
    assert not result.ok
    assert "NaN" in result.message
    assert "index (1,)" in result.message


def test_inf_where_finite_expected_is_reported():
    """An overflow to inf where a finite value was expected fails and says so."""
    result = compare(torch.tensor([0.5, 0.5]), torch.tensor([0.5, float("inf")]))
    assert not result.ok
    assert "inf" in result.message


def test_nan_vs_nan_is_equal():
    """NaN in both places counts as equal (e.g. a fully masked row)."""
    x = torch.tensor([1.0, NAN])
    assert compare(x, x.clone()).ok


def test_identical_tensors_with_nan_are_exact():
    """``exact`` means bit for bit: a tensor compared with its own clone is exact even with NaN.

    Python floats already treat NaN vs NaN as exact; tensors must agree.
    """
    assert compare(NAN, NAN).exact
    x = torch.tensor([1.0, NAN])
    assert compare(x, x.clone()).exact


def test_non_tensor_where_tensor_expected():
    """A list where a tensor was expected fails and names the type that came."""
    result = compare(torch.zeros(2), [0.0, 0.0])
    assert not result.ok
    assert "torch.Tensor" in result.message
    assert "list" in result.message


@pytest.mark.parametrize(
    ("expected", "got"),
    [
        (torch.tensor([1, 2, 3]), torch.tensor([1, 2, 4])),
        (torch.tensor([True, False]), torch.tensor([True, True])),
    ],
    ids=["int64", "bool"],
)
def test_int_and_bool_tensors_compare_exactly(expected, got):
    """Integer and boolean tensors ignore the tolerance: any difference fails."""
    result = compare(expected, got, atol=10.0, rtol=10.0)
    assert not result.ok
    assert "1 of" in result.message
    assert compare(expected, expected.clone(), atol=0.0, rtol=0.0).exact


def test_int_tensor_mismatch_shows_index_and_values():
    """An integer mismatch reports where and what."""
    result = compare(torch.tensor([1, 2, 3]), torch.tensor([1, 5, 3]))
    assert "index (1,)" in result.message
    assert "expected 2" in result.message
    assert "got 5" in result.message


def test_zero_dim_tensor_mismatch():
    """Scalars (0-d tensors) are compared and reported without crashing."""
    result = compare(torch.tensor(1.0), torch.tensor(2.0))
    assert not result.ok
    assert "expected 1" in result.message and "got 2" in result.message


def test_tensor_requiring_grad_is_compared_by_value():
    """A result that requires grad is compared by its values."""
    expected = torch.zeros(2)
    got = torch.zeros(2, requires_grad=True)
    assert compare(expected, got).ok


# --------------------------------------------------------------------------- compare: numpy


def test_numpy_arrays_equal_and_different():
    """NumPy arrays get the same treatment as tensors."""
    a = np.array([1.0, 2.0, 3.0])
    assert compare(a, a.copy()).exact
    result = compare(a, np.array([1.0, 2.0, 4.0]))
    assert not result.ok
    assert "1 of 3 entries differ" in result.message


def test_numpy_array_where_list_came():
    """A list where an ndarray was expected fails and names both types."""
    result = compare(np.zeros(2), [0.0, 0.0])
    assert not result.ok
    assert "numpy.ndarray" in result.message and "list" in result.message


def test_numpy_dtype_mismatch():
    """float32 vs float64 arrays are a dtype mismatch."""
    result = compare(np.zeros(2, dtype=np.float32), np.zeros(2, dtype=np.float64))
    assert not result.ok
    assert "float64" in result.message


def test_numpy_view_with_negative_strides_is_compared():
    """A reversed view (``a[::-1]``, negative strides) is a valid result and compares by value."""
    result = compare(np.array([2, 1, 0]), np.arange(3)[::-1])
    assert result.ok and result.exact


# --------------------------------------------------------------------------- compare: Python


def test_python_floats_within_tolerance():
    """Floats compare within tolerance; the difference is reported."""
    result = compare(1.0, 1.0 + 1e-9)
    assert result.ok and not result.exact
    assert result.max_abs_diff == pytest.approx(1e-9, rel=1e-3)


def test_python_floats_outside_tolerance():
    """A float mismatch shows both values and the difference."""
    result = compare(1.0, 1.5)
    assert not result.ok
    assert "expected 1" in result.message and "got 1.5" in result.message
    assert "difference 0.5" in result.message


def test_python_ints_compare_exactly():
    """Ints must be equal; the message shows both."""
    assert compare(3, 3).exact
    result = compare(3, 4)
    assert not result.ok
    assert "expected 3, got 4" in result.message


def test_python_nan_vs_nan_and_nan_vs_number():
    """NaN equals NaN; NaN where a number was expected fails."""
    assert compare(NAN, NAN).ok
    assert not compare(1.0, NAN).ok


def test_number_accepts_single_element_tensor_and_numpy_scalar():
    """A one-element tensor or a NumPy scalar counts as a number."""
    assert compare(2.0, torch.tensor(2.0)).ok
    assert compare(3, np.int64(3)).ok


@pytest.mark.parametrize("got", ["1.0", True, None], ids=["str", "bool", "None"])
def test_non_number_where_number_expected(got):
    """Strings, booleans and None are not numbers."""
    result = compare(1.0, got)
    assert not result.ok
    assert "expected a number" in result.message


def test_strings_report_the_first_differing_character():
    """A string mismatch gives the position of the first differing character."""
    result = compare("hello world", "hello there")
    assert not result.ok
    assert "character 6" in result.message
    assert "'world'" in result.message and "'there'" in result.message


def test_string_prefix_reports_lengths():
    """When one string is a prefix of the other, the position is the shorter length."""
    result = compare("abc", "abcd")
    assert "character 3" in result.message
    assert "lengths 3 and 4" in result.message


def test_bool_and_none_compare_by_identity():
    """``True``/``None`` expected: equal only to themselves (and NumPy bools)."""
    assert compare(True, True).ok
    assert compare(True, np.True_).ok
    assert not compare(None, 0).ok
    assert not compare(False, 0).ok


# --------------------------------------------------------------------------- compare: containers


def test_list_length_mismatch():
    """Lists of different lengths fail with both lengths."""
    result = compare([1, 2, 3], [1, 2])
    assert not result.ok
    assert "expected 3 items, got 2" in result.message


def test_list_item_mismatch_names_the_path():
    """A wrong item is located by its path, e.g. ``output[1]``."""
    result = compare([1.0, 2.0], [1.0, 3.0])
    assert not result.ok
    assert result.message.startswith("output[1]:")


def test_nested_path():
    """Paths nest: ``output[1][0]``."""
    result = compare([0, [5, 6]], [0, [7, 6]])
    assert result.message.startswith("output[1][0]:")


def test_dict_missing_and_unexpected_keys():
    """Dict key differences list the missing and the unexpected keys."""
    result = compare({"a": 1, "b": 2}, {"a": 1, "c": 2})
    assert not result.ok
    assert "missing ['b']" in result.message
    assert "unexpected ['c']" in result.message


def test_dict_value_mismatch_names_the_key():
    """A wrong value in a dict is located by its key."""
    result = compare({"loss": 1.0}, {"loss": 2.0})
    assert result.message.startswith("output['loss']:")


def test_tuple_of_tensors():
    """A tuple of tensors compares element-wise and reports the failing element."""
    expected = (torch.zeros(2), torch.ones(2))
    assert compare(expected, (torch.zeros(2), torch.ones(2))).exact
    result = compare(expected, (torch.zeros(2), torch.zeros(2)))
    assert not result.ok
    assert result.message.startswith("output[1]:")
    assert "2 of 2 entries differ" in result.message


def test_container_max_abs_diff_is_the_largest_item_difference():
    """Within tolerance, a container reports the largest difference of its items."""
    result = compare([1.0, 2.0], [1.0 + 1e-7, 2.0 + 3e-6])
    assert result.ok and not result.exact
    assert result.max_abs_diff == pytest.approx(3e-6, rel=1e-3)


# --------------------------------------------------------------------------- cmp


def test_cmp_prints_one_line_and_returns_true_when_equal(capsys):
    """cmp prints exact / approximate / maxdiff on one line and returns True."""
    assert cmp("dlogits", torch.ones(3), torch.ones(3)) is True
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith("dlogits")
    assert "exact: True" in line
    assert "approximate: True" in line
    assert "maxdiff" in line


def test_cmp_approximate_only(capsys):
    """A tiny difference prints exact False, approximate True."""
    assert cmp("x", torch.ones(3) + 5e-6, torch.ones(3)) is True
    line = capsys.readouterr().out.strip()
    assert "exact: False" in line
    assert "approximate: True" in line


def test_cmp_returns_false_and_explains(capsys):
    """A mismatch returns False and prints the reason under the summary line."""
    assert cmp("probs", torch.zeros(2), torch.ones(2)) is False
    out = capsys.readouterr().out
    assert "exact: False" in out
    assert "approximate: False" in out
    assert "maxdiff: 1" in out
    assert "2 of 2 entries differ" in out


def test_cmp_shape_mismatch_has_no_maxdiff(capsys):
    """Without comparable values the max difference is n/a."""
    assert cmp("x", torch.zeros(2), torch.zeros(3)) is False
    assert "maxdiff: n/a" in capsys.readouterr().out


# --------------------------------------------------------------------------- FunctionCheck


def _double(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def _as_typed(fn):
    """A copy of ``fn`` with the same code: what a learner who typed the solution would pass.

    Passing the reference object itself means "the check handed this back earlier"
    and is reported as not done, so tests of passing behaviour use a copy.
    """
    copied = types.FunctionType(
        fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )
    copied.__kwdefaults__ = fn.__kwdefaults__
    assert copied is not fn
    return copied


def _double_cases() -> list[Case]:
    return [
        Case("a vector", (torch.tensor([1.0, 2.0, 3.0]),)),
        Case(
            "a matrix",
            (torch.arange(6.0).reshape(2, 3),),
            hint="every entry doubles, whatever the shape.",
        ),
    ]


@pytest.fixture
def double_check() -> FunctionCheck:
    return FunctionCheck("double", _double, _double_cases, hint="multiply by two.")


def test_reference_passes(double_check):
    """The reference passes its own check, all cases counted."""
    result = double_check.run(_as_typed(_double))
    assert result.status == "passed"
    assert result.passed
    assert result.cases_passed == result.cases_total == 2
    assert "all 2 cases" in result.text()


def test_the_reference_object_itself_is_not_done(double_check, capsys):
    """Re-checking the reference the check handed back earlier says so, and keeps it."""
    result = double_check.run(_double)
    assert result.status == "not_done"
    assert "handed back" in result.message
    assert double_check(_double) is _double
    assert "NOT DONE" in capsys.readouterr().out


def test_equivalent_implementation_passes_and_reports_difference(double_check):
    """A different but close implementation passes with its max difference reported."""
    result = double_check.run(lambda x: x + x + 1e-6)
    assert result.status == "passed"
    assert result.max_abs_diff is not None and result.max_abs_diff > 0
    assert "max abs difference" in result.message


def test_cases_may_be_a_plain_list():
    """Cases can be given as a list instead of a callable."""
    check = FunctionCheck("double", _double, _double_cases())
    assert check.run(_as_typed(_double)).cases_total == 2


def test_stub_is_not_done_and_the_reference_is_returned(double_check, capsys):
    """A stub raising NotImplementedError is 'not done'; the notebook gets the reference."""

    def stub(x):
        raise NotImplementedError()

    result = double_check.run(stub)
    assert result.status == "not_done"
    assert result.cases_passed == 0
    assert "NotImplementedError" in result.message
    assert "hint:" not in result.text()
    assert double_check(stub) is double_check.reference
    assert "NOT DONE" in capsys.readouterr().out


def test_other_exception_is_an_error_naming_type_case_and_name(double_check):
    """An exception is reported as an error with its type, the case number and name."""

    def vectors_only(x):
        if x.dim() > 1:
            raise ValueError("only vectors please")
        return x * 2

    result = double_check.run(vectors_only)
    assert result.status == "error"
    assert "ValueError" in result.message
    assert "only vectors please" in result.message
    assert "case 2 of 2" in result.message
    assert "a matrix" in result.message
    assert result.cases_passed == 1
    assert "hint: every entry doubles" in result.text()


def test_wrong_result_fails_with_the_case_hint(double_check):
    """A wrong result on a case fails, showing that case's hint."""
    result = double_check.run(lambda x: x * 2 if x.dim() == 1 else x)
    assert result.status == "failed"
    assert "case 2 of 2 (a matrix)" in result.message
    assert result.cases_passed == 1
    assert result.max_abs_diff == pytest.approx(5.0)
    text = result.text()
    assert "hint: every entry doubles, whatever the shape." in text
    assert "reference implementation" in text


def test_case_without_hint_falls_back_to_the_check_hint(double_check):
    """A failing case with no hint of its own shows the check's general hint."""
    result = double_check.run(lambda x: x * 3)
    assert result.status == "failed"
    assert "case 1 of 2 (a vector)" in result.message
    assert "hint: multiply by two." in result.text()


def test_in_place_modification_fails(double_check):
    """An implementation that changes its input tensor fails even if its result is right."""

    def in_place(x):
        x.mul_(2)
        return x

    result = double_check.run(in_place)
    assert result.status == "failed"
    assert "in place" in result.message
    assert "in-place" in result.text()


def test_in_place_modification_does_not_leak_into_the_cases(double_check):
    """Each implementation gets fresh copies: the case's own inputs stay unchanged."""
    case = double_check.cases()[0]
    args, _ = case.inputs()
    args[0].mul_(100)
    assert torch.equal(case.args[0], torch.tensor([1.0, 2.0, 3.0]))


def test_call_returns_impl_when_passed_and_reference_otherwise(double_check, capsys):
    """``check(impl)`` hands back impl itself on success, the reference on failure."""

    def good(x):
        return x + x

    def bad(x):
        return x

    assert double_check(good) is good
    assert double_check(bad) is double_check.reference
    out = capsys.readouterr().out
    assert "PASSED" in out
    assert "FAILED" in out


def test_a_broken_check_does_not_raise(capsys):
    """A check whose cases cannot even be built reports an error instead of raising."""

    def broken_cases():
        raise ZeroDivisionError("bad case table")

    check = FunctionCheck("broken", _double, broken_cases)

    def mine(x):
        return x * 2

    assert check(mine) is _double
    captured = capsys.readouterr()
    assert "ERROR" in captured.out
    assert "the check itself failed" in captured.out
    assert "ZeroDivisionError" in captured.out


def test_a_broken_reference_returns_the_reference_not_the_impl(capsys):
    """When the reference itself crashes, the learner's unchecked function is not trusted."""

    def broken_reference(x):
        raise RuntimeError("reference bug")

    check = FunctionCheck("broken", broken_reference, [Case("x", (torch.ones(1),))])

    def mine(x):
        return x * 2

    assert check(mine) is broken_reference
    out = capsys.readouterr().out
    assert "the check itself failed" in out
    assert "RuntimeError" in out


def test_case_with_custom_call():
    """A Case's ``call`` decides how the implementation is invoked."""
    seen = []

    def twice(impl, x):
        seen.append(impl)
        return impl(impl(x))

    cases = [Case("applied twice", (torch.tensor([1.0, -2.0]),), call=twice)]
    check = FunctionCheck("double", _double, cases)
    mine = _as_typed(_double)
    assert check.run(mine).passed
    assert mine in seen
    result = check.run(lambda x: x + 1)
    assert result.status == "failed"
    # applied twice: x + 2 instead of 4x
    assert "expected 4, got 3" in result.message


def test_case_kwargs_are_passed():
    """Keyword arguments of a Case reach the implementation."""
    cases = [Case("dim=0", (torch.ones(2, 3),), {"dim": 0})]
    check = FunctionCheck("sum", lambda x, dim=-1: x.sum(dim=dim), cases)
    assert check.run(lambda x, dim=-1: x.sum(dim=dim)).passed
    result = check.run(lambda x, dim=-1: x.sum(dim=-1))
    assert result.status == "failed"
    assert "expected shape (3,), got (2,)" in result.message


# --------------------------------------------------------------------------- CheckResult


def test_check_result_mimebundle(double_check):
    """The display bundle has plain text, HTML and a JSON-serialisable record."""
    result = double_check.run(lambda x: x * 3)
    bundle = result._repr_mimebundle_()
    assert set(bundle) >= {"text/plain", "text/html", CHECK_MIMETYPE}
    assert bundle["text/plain"] == result.text()
    record = json.loads(json.dumps(bundle[CHECK_MIMETYPE]))
    assert record["exercise"] == "double"
    assert record["status"] == "failed"
    assert record["cases_total"] == 2
    assert record["cases_passed"] == 0
    assert math.isclose(record["max_abs_diff"], 3.0)


def test_check_result_html_escapes_the_message():
    """Angle brackets in a message are escaped in HTML."""
    result = CheckResult("x", "error", "case 1 raised TypeError: <lambda>() takes 0 arguments")
    html = result._repr_mimebundle_()["text/html"]
    assert "&lt;lambda&gt;" in html
    assert "<lambda>" not in html


@pytest.mark.parametrize(
    ("status", "badge"),
    [("passed", "PASSED"), ("failed", "FAILED"), ("error", "ERROR"), ("not_done", "NOT DONE")],
)
def test_check_result_text_badges(status, badge):
    """Each status has its badge; only non-passing results mention the fallback."""
    result = CheckResult("softmax", status, "msg", hint="try harder")
    text = result.text()
    assert badge in text
    assert "softmax: msg" in text
    assert ("reference implementation" in text) == (status != "passed")
    assert ("hint: try harder" in text) == (status in ("failed", "error"))
