"""The machinery behind every exercise check.

A check runs the learner's function on a few named cases, compares each result with
the reference implementation, and reports at once: passed, failed (what was expected,
what came, the largest difference, the first mismatch, a hint), raised an error, or
"not done yet" when the stub still raises ``NotImplementedError``. Whatever happens,
it hands back a function the rest of the notebook can use: the learner's when it
passed, otherwise the reference. A check never raises into the notebook, because
papermill fails a notebook on any error output.

>>> softmax = check_softmax(softmax)   # in a notebook, right after the exercise
"""

from __future__ import annotations

import copy
import math
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from labs.display import show

CHECK_MIMETYPE = "application/vnd.aigc-lab.check+json"
Status = Literal["passed", "failed", "not_done", "error"]
_BADGES = {
    "passed": "✅ PASSED",
    "failed": "❌ FAILED",
    "error": "❌ ERROR",
    "not_done": "⏳ NOT DONE YET",
}


# --------------------------------------------------------------------------- compare


@dataclass
class Comparison:
    """How two values differ: ``ok`` within tolerance, ``exact`` bit for bit."""

    ok: bool
    exact: bool
    max_abs_diff: float | None = None
    message: str = ""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _index(flat_index: int, shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat_index, tuple(shape))) if shape else ()


def _compare_arrays(
    expected: torch.Tensor, got: torch.Tensor, atol: float, rtol: float, path: str
) -> Comparison:
    if tuple(got.shape) != tuple(expected.shape):
        return Comparison(
            False,
            False,
            message=f"{path}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}",
        )
    if got.dtype != expected.dtype:
        return Comparison(
            False, False, message=f"{path}: expected dtype {expected.dtype}, got {got.dtype}"
        )
    expected = expected.detach().cpu()
    got = got.detach().cpu()
    if expected.dtype == torch.bool or not (expected.is_floating_point() or expected.is_complex()):
        equal = got == expected
        if bool(equal.all()):
            return Comparison(True, True, 0.0)
        first = int((~equal).flatten().nonzero()[0])
        idx = _index(first, expected.shape)
        wrong = int((~equal).sum())
        return Comparison(
            False,
            False,
            message=(
                f"{path}: {wrong} of {expected.numel()} entries differ; first at index {idx}: "
                f"expected {_fmt(expected.flatten()[first].item())}, got {_fmt(got.flatten()[first].item())}"
            ),
        )
    same_nan = torch.isnan(got) & torch.isnan(expected)
    exact = bool(((got == expected) | same_nan).all())
    close = torch.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    both_finite = torch.isfinite(got) & torch.isfinite(expected)
    diffs = (got - expected).abs()[both_finite]
    max_abs = float(diffs.max()) if diffs.numel() else None
    if bool(close.all()):
        return Comparison(True, exact, max_abs or 0.0)
    first = int((~close).flatten().nonzero()[0])
    idx = _index(first, expected.shape)
    exp_v, got_v = expected.flatten()[first].item(), got.flatten()[first].item()
    bad = int((~close).sum())
    finite_mismatch = bool(((~close) & both_finite).any())
    spread = f"; max abs difference {max_abs:.3g}" if finite_mismatch else ""
    message = (
        f"{path}: {bad} of {expected.numel()} entries differ{spread} "
        f"(tolerance atol={atol:g}, rtol={rtol:g}); first mismatch at index {idx}: "
        f"expected {_fmt(exp_v)}, got {_fmt(got_v)}"
    )
    nonfinite = ~torch.isfinite(got) & torch.isfinite(expected)
    if bool(nonfinite.any()):
        message += (
            f"; {int(nonfinite.sum())} entries are NaN or inf where finite values were expected"
        )
    return Comparison(False, False, max_abs, message)


def compare(
    expected: Any, got: Any, *, atol: float = 1e-6, rtol: float = 1e-5, path: str = "output"
) -> Comparison:
    """Compare a result with the expected one, recursively; say exactly where they differ.

    Tensors and arrays: type, shape, dtype, then values within ``atol + rtol·|expected|``
    (NaN equals NaN). Floats: within the same tolerance. Everything else (ints,
    strings, ``None``): equality. Lists, tuples and dicts: length/keys, then each item.
    """
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return Comparison(
                False, False, message=f"{path}: expected a torch.Tensor, got {type(got).__name__}"
            )
        return _compare_arrays(expected, got, atol, rtol, path)
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            return Comparison(
                False, False, message=f"{path}: expected a numpy.ndarray, got {type(got).__name__}"
            )
        if expected.dtype.kind not in "biufc" or np.asarray(got).dtype.kind not in "biufc":
            ok = expected.shape == got.shape and bool(np.array_equal(expected, got))
            message = (
                "" if ok else f"{path}: arrays differ: expected {_fmt(expected)}, got {_fmt(got)}"
            )
            return Comparison(ok, ok, message=message)
        return _compare_arrays(
            torch.from_numpy(np.ascontiguousarray(expected)),
            torch.from_numpy(np.ascontiguousarray(got)),
            atol,
            rtol,
            path,
        )
    if isinstance(expected, bool) or expected is None:
        ok = got is expected or (isinstance(got, (bool, np.bool_)) and bool(got) == expected)
        return Comparison(
            ok, ok, message="" if ok else f"{path}: expected {_fmt(expected)}, got {_fmt(got)}"
        )
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, np.generic):
            got = got.item()
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return Comparison(
                False,
                False,
                message=f"{path}: expected a number, got {type(got).__name__} {_fmt(got)}",
            )
        if isinstance(expected, int) and isinstance(got, int):
            ok = expected == got
            return Comparison(
                ok,
                ok,
                float(abs(expected - got)),
                "" if ok else f"{path}: expected {expected}, got {got}",
            )
        both_nan = math.isnan(expected) and math.isnan(got)
        diff = abs(float(expected) - float(got)) if not both_nan else 0.0
        ok = both_nan or math.isclose(got, expected, rel_tol=rtol, abs_tol=atol)
        message = (
            ""
            if ok
            else f"{path}: expected {_fmt(float(expected))}, got {_fmt(float(got))} (difference {diff:.3g})"
        )
        return Comparison(ok, both_nan or expected == got, diff, message)
    if isinstance(expected, str):
        if not isinstance(got, str):
            return Comparison(
                False, False, message=f"{path}: expected a str, got {type(got).__name__}"
            )
        if got == expected:
            return Comparison(True, True)
        pos = next(
            (i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b),
            min(len(expected), len(got)),
        )
        return Comparison(
            False,
            False,
            message=(
                f"{path}: strings differ at character {pos}: expected {_fmt(expected[pos : pos + 20])}, "
                f"got {_fmt(got[pos : pos + 20])} (lengths {len(expected)} and {len(got)})"
            ),
        )
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return Comparison(
                False, False, message=f"{path}: expected a dict, got {type(got).__name__}"
            )
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        if missing or extra:
            return Comparison(
                False, False, message=f"{path}: keys differ; missing {missing}, unexpected {extra}"
            )
        items = [(expected[k], got[k], f"{path}[{k!r}]") for k in expected]
        return _compare_items(items, atol, rtol)
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return Comparison(
                False,
                False,
                message=f"{path}: expected a {type(expected).__name__}, got {type(got).__name__}",
            )
        if len(got) != len(expected):
            return Comparison(
                False, False, message=f"{path}: expected {len(expected)} items, got {len(got)}"
            )
        return _compare_items(
            [(e, g, f"{path}[{i}]") for i, (e, g) in enumerate(zip(expected, got, strict=True))],
            atol,
            rtol,
        )
    ok = bool(got == expected)
    return Comparison(
        ok, ok, message="" if ok else f"{path}: expected {_fmt(expected)}, got {_fmt(got)}"
    )


def _compare_items(items: list[tuple[Any, Any, str]], atol: float, rtol: float) -> Comparison:
    exact, max_abs = True, None
    for expected, got, path in items:
        result = compare(expected, got, atol=atol, rtol=rtol, path=path)
        if not result.ok:
            return result
        exact = exact and result.exact
        if result.max_abs_diff is not None:
            max_abs = max(max_abs or 0.0, result.max_abs_diff)
    return Comparison(True, exact, max_abs)


def cmp(name: str, got: Any, expected: Any, *, atol: float = 1e-6, rtol: float = 1e-5) -> bool:
    """Print one line: exact / approximate / max difference (as in nn-zero-to-hero)."""
    result = compare(expected, got, atol=atol, rtol=rtol, path=name)
    maxdiff = "n/a" if result.max_abs_diff is None else f"{result.max_abs_diff:.3g}"
    line = f"{name:<20} | exact: {result.exact!s:<5} | approximate: {result.ok!s:<5} | maxdiff: {maxdiff}"
    print(line if result.ok else f"{line}\n    {result.message}")
    return result.ok


# --------------------------------------------------------------------------- checks


@dataclass
class Case:
    """One input the check tries, with a name the learner will recognise.

    ``call(impl, *args, **kwargs)`` says how to run an implementation on the case;
    by default it is ``impl(*args, **kwargs)``. ``hint`` is shown when this case fails.
    """

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    hint: str = ""
    call: Callable[..., Any] | None = None

    def inputs(self) -> tuple[tuple, dict]:
        """Fresh copies of the inputs, so no implementation sees another's changes."""
        return copy.deepcopy(self.args), copy.deepcopy(self.kwargs)

    def run(self, impl: Callable, args: tuple | None = None, kwargs: dict | None = None) -> Any:
        if args is None or kwargs is None:
            args, kwargs = self.inputs()
        if self.call is not None:
            return self.call(impl, *args, **kwargs)
        return impl(*args, **kwargs)


def _tensors(obj: Any) -> list[torch.Tensor]:
    """The tensors inside nested tuples, lists and dicts, in a fixed order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, Mapping):
        return [t for key in obj for t in _tensors(obj[key])]
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in _tensors(item)]
    return []


@dataclass
class CheckResult:
    """What a check found; displays itself in a notebook and is recorded by the runner."""

    exercise: str
    status: Status
    message: str
    cases_passed: int = 0
    cases_total: int = 0
    max_abs_diff: float | None = None
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def text(self) -> str:
        lines = [f"{_BADGES[self.status]} — {self.exercise}: {self.message}"]
        if self.hint and self.status in ("failed", "error"):
            lines.append(f"   hint: {self.hint}")
        if self.status != "passed":
            lines.append(
                "   The rest of this notebook uses the reference implementation until yours passes."
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "exercise": self.exercise,
            "status": self.status,
            "message": self.message,
            "cases_passed": self.cases_passed,
            "cases_total": self.cases_total,
            "max_abs_diff": self.max_abs_diff,
        }

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        colour = {"passed": "#1a7f37", "not_done": "#9a6700"}.get(self.status, "#cf222e")
        body = self.text().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        html = (
            f'<pre style="border-left: 4px solid {colour}; padding: 0.4em 0.8em; '
            f'white-space: pre-wrap; margin: 0.2em 0">{body}</pre>'
        )
        return {"text/plain": self.text(), "text/html": html, CHECK_MIMETYPE: self.to_json()}


def _short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return first_line if len(first_line) <= 300 else first_line[:297] + "..."


class FunctionCheck:
    """Check a learner's implementation against the reference on named cases.

    ``check.run(impl)`` returns a :class:`CheckResult` (used by tests);
    ``check(impl)`` displays it and returns the function to use from here on.
    """

    def __init__(
        self,
        exercise: str,
        reference: Callable,
        cases: Callable[[], list[Case]] | list[Case],
        *,
        hint: str = "",
        atol: float = 1e-6,
        rtol: float = 1e-5,
    ) -> None:
        self.exercise = exercise
        self.reference = reference
        self._cases = cases
        self.hint = hint
        self.atol = atol
        self.rtol = rtol

    def cases(self) -> list[Case]:
        return list(self._cases() if callable(self._cases) else self._cases)

    def run(self, impl: Callable) -> CheckResult:
        cases = self.cases()
        total = len(cases)
        if impl is self.reference:
            # The name was rebound to the reference by an earlier run of this check.
            return CheckResult(
                self.exercise,
                "not_done",
                "this is the reference implementation the check handed back earlier. "
                "Re-run the cell with your code first, then this cell.",
                0,
                total,
            )
        max_abs: float | None = None
        for number, case in enumerate(cases, start=1):
            where = f"case {number} of {total} ({case.name})"
            args, kwargs = case.inputs()
            try:
                got = case.run(impl, args, kwargs)
            except NotImplementedError:
                return CheckResult(
                    self.exercise,
                    "not_done",
                    "the stub still raises NotImplementedError. Replace `raise NotImplementedError()` in the "
                    "exercise cell with your code, run that cell, then run this one again.",
                    number - 1,
                    total,
                )
            except Exception as exc:
                return CheckResult(
                    self.exercise,
                    "error",
                    f"{where} raised {_short_error(exc)}",
                    number - 1,
                    total,
                    hint=case.hint or self.hint,
                )
            changed = compare(
                _tensors((case.args, case.kwargs)),
                _tensors((args, kwargs)),
                atol=0.0,
                rtol=0.0,
                path="input",
            )
            if not changed.ok:
                return CheckResult(
                    self.exercise,
                    "failed",
                    f"{where}: your function changed its input in place ({changed.message}); compute on a copy instead.",
                    number - 1,
                    total,
                    hint="in-place operations such as `x -= ...` or `x.sub_(...)` modify the caller's tensor.",
                )
            expected = case.run(self.reference)
            result = compare(expected, got, atol=self.atol, rtol=self.rtol)
            if result.max_abs_diff is not None:
                max_abs = max(max_abs or 0.0, result.max_abs_diff)
            if not result.ok:
                return CheckResult(
                    self.exercise,
                    "failed",
                    f"{where}: {result.message}",
                    number - 1,
                    total,
                    result.max_abs_diff,
                    hint=case.hint or self.hint,
                )
        diff = "" if max_abs is None else f" (max abs difference {max_abs:.2g})"
        return CheckResult(
            self.exercise,
            "passed",
            f"all {total} cases match the reference{diff}.",
            total,
            total,
            max_abs,
        )

    def __call__(self, impl: Callable) -> Callable:
        try:
            result = self.run(impl)
        except Exception as exc:  # a bug in the check itself must not stop the notebook
            traceback.print_exc(limit=2)
            result = CheckResult(
                self.exercise,
                "error",
                f"the check itself failed ({_short_error(exc)}); please report this.",
            )
        show(result)
        return impl if result.passed else self.reference
