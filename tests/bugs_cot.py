"""Planted bugs for lesson 05's checks (chain-of-thought): see tests/test_check_exercises.py."""

from __future__ import annotations

import re
import statistics
from collections import Counter

from planted import Bug, as_typed

from labs import cot

# --------------------------------------------------------------------------- format_scratchpad


def _steps(a, b, op, *, carry_rule=lambda v: v // 10, value_text="{:02d}".format, zip_digits=False):
    da = [int(d) for d in reversed(str(a))]
    db = [int(d) for d in reversed(str(b))]
    if zip_digits:
        da = da[: len(db)]
    out, carry = [], 0
    for i, x in enumerate(da):
        y = (db[i] if i < len(db) else 0) if op == "+" else b
        v = x + y + carry if op == "+" else x * y + carry
        out.append(f"{x}{op}{y}+{carry}={value_text(v)}")
        carry = carry_rule(v)
    return out


def _answer(a, b, op):
    return a + b if op == "+" else a * b


def _fs_most_significant_first(a, b, op):
    return ",".join(reversed(_steps(a, b, op))) + "#" + str(_answer(a, b, op))


def _fs_no_carry(a, b, op):
    return ",".join(_steps(a, b, op, carry_rule=lambda v: 0)) + "#" + str(_answer(a, b, op))


def _fs_carry_over_10(a, b, op):
    return (
        ",".join(_steps(a, b, op, carry_rule=lambda v: int(v > 10))) + "#" + str(_answer(a, b, op))
    )


def _fs_unit_digit_only(a, b, op):
    steps = _steps(a, b, op, value_text=lambda v: f"{v % 10:02d}")
    return ",".join(steps) + "#" + str(_answer(a, b, op))


def _fs_answer_reversed(a, b, op):
    return ",".join(_steps(a, b, op)) + "#" + str(_answer(a, b, op))[::-1]


def _fs_trailing_separator(a, b, op):
    return "".join(s + "," for s in _steps(a, b, op)) + "#" + str(_answer(a, b, op))


def _fs_value_not_padded(a, b, op):
    return ",".join(_steps(a, b, op, value_text=str)) + "#" + str(_answer(a, b, op))


def _fs_with_end(a, b, op):
    return cot.format_scratchpad(a, b, op) + "\n"


def _fs_zip_truncates(a, b, op):
    return ",".join(_steps(a, b, op, zip_digits=True)) + "#" + str(_answer(a, b, op))


def _fs_always_plus(a, b, op):
    return cot.format_scratchpad(a, b, "+")


# --------------------------------------------------------------------------- extract_answer


def _ea_first_mark(text):
    text = text.split("\n", 1)[0]
    if "#" not in text:
        return None
    tail = text.split("#")[1]
    return int(tail) if tail.isdigit() else None


def _ea_returns_str(text):
    answer = cot.extract_answer(text)
    return None if answer is None else str(answer)


def _ea_raises_without_mark(text):
    tail = text.split("\n", 1)[0].rsplit("#", 1)[1]
    return int(tail) if tail.isdigit() else None


def _ea_last_number_anywhere(text):
    numbers = re.findall(r"\d+", text)
    return int(numbers[-1]) if numbers else None


def _ea_ignores_end(text):
    if "#" not in text:
        return None
    tail = text.rsplit("#", 1)[1]
    return int(tail) if tail.isdigit() else None


def _ea_int_of_junk(text):
    text = text.split("\n", 1)[0]
    if "#" not in text:
        return None
    return int(text.rsplit("#", 1)[1])


def _ea_zero_when_missing(text):
    answer = cot.extract_answer(text)
    return 0 if answer is None else answer


def _ea_leading_digits(text):
    text = text.split("\n", 1)[0]
    if "#" not in text:
        return None
    match = re.match(r"\d+", text.rsplit("#", 1)[1])
    return int(match.group()) if match else None


# --------------------------------------------------------------------------- majority_vote


def _mv_counts_none(answers):
    answers = list(answers)
    return Counter(answers).most_common(1)[0][0] if answers else None


def _mv_tie_largest(answers):
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return max(a for a, c in counts.items() if c == best)


def _mv_tie_last_seen(answers):
    counts = Counter(a for a in answers if a is not None)
    best, best_count = None, 0
    for a, c in counts.items():
        if c >= best_count:
            best, best_count = a, c
    return best


def _mv_crashes_on_empty(answers):
    return Counter(a for a in answers if a is not None).most_common(1)[0][0]


def _mv_returns_count(answers):
    counts = Counter(a for a in answers if a is not None)
    return counts.most_common(1)[0][1] if counts else None


def _mv_statistics_mode(answers):
    return statistics.mode(answers) if answers else None


def _mv_first_answer(answers):
    readable = [a for a in answers if a is not None]
    return readable[0] if readable else None


PLANTED_BUGS: dict[str, list[Bug]] = {
    "format_scratchpad": [
        (
            "steps written most significant digit first",
            _fs_most_significant_first,
            "case 1 of 6 (no carries: 123 + 456): output: strings differ at character 0",
        ),
        (
            "the carry is never passed on",
            _fs_no_carry,
            "case 2 of 6 (carries: 345 + 978)",
        ),
        (
            "carries only when the value is above 10",
            _fs_carry_over_10,
            "case 3 of 6 (a digit sum of exactly 10: 46 + 64)",
        ),
        (
            "each step writes only its unit digit",
            _fs_unit_digit_only,
            "case 2 of 6 (carries: 345 + 978)",
        ),
        (
            "the answer written backwards",
            _fs_answer_reversed,
            "case 1 of 6 (no carries: 123 + 456)",
        ),
        (
            "a separator before the answer mark",
            _fs_trailing_separator,
            "expected '#579', got ',#579'",
        ),
        (
            "values below 10 written with one digit",
            _fs_value_not_padded,
            "(no carries: 123 + 456): output: strings differ at character 6: expected '0",
        ),
        ("END appended to the string", _fs_with_end, "(lengths 30 and 31)"),
        (
            "zip() stops at the shorter number",
            _fs_zip_truncates,
            "case 4 of 6 (a shorter second number: 9999 + 1)",
        ),
        (
            "treats '*' like '+'",
            _fs_always_plus,
            "case 5 of 6 (multiplication: 3456 * 7)",
        ),
    ],
    "extract_answer": [
        ("takes the first mark", _ea_first_mark, "(two marks: the last one counts)"),
        ("returns the answer as a str", _ea_returns_str, "expected a number, got str"),
        (
            "raises when there is no mark",
            _ea_raises_without_mark,
            "(no answer mark) raised IndexError",
        ),
        ("last number anywhere in the text", _ea_last_number_anywhere, "(no answer mark)"),
        ("keeps reading after END", _ea_ignores_end, "(the model kept going after END)"),
        ("int() of whatever follows", _ea_int_of_junk, "raised ValueError"),
        ("0 instead of None", _ea_zero_when_missing, "expected None, got 0"),
        ("reads only the leading digits", _ea_leading_digits, "(junk after the mark)"),
    ],
    "majority_vote": [
        ("None counts as a vote", _mv_counts_none, "(unreadable chains (None) are not votes)"),
        ("a tie goes to the largest answer", _mv_tie_largest, "expected 4, got 9"),
        (
            "a tie goes to the answer seen last",
            _mv_tie_last_seen,
            "(a tie goes to the answer seen first)",
        ),
        ("crashes on no readable answers", _mv_crashes_on_empty, "raised IndexError"),
        ("returns the count, not the answer", _mv_returns_count, "case 1 of 6 (a clear majority)"),
        ("statistics.mode counts None", _mv_statistics_mode, "expected a number, got NoneType"),
        ("returns the first answer", _mv_first_answer, "case 1 of 6 (a clear majority)"),
    ],
}


def _fs_explicit(a, b, op):
    digits_a = str(a)[::-1]
    digits_b = str(b)[::-1].ljust(len(digits_a), "0") if op == "+" else None
    steps, carry = [], 0
    for i, ch in enumerate(digits_a):
        x = int(ch)
        y = int(digits_b[i]) if op == "+" else b
        value = x + y + carry if op == "+" else x * y + carry
        steps.append(f"{x}{op}{y}+{carry}={str(value).zfill(2)}")
        carry = value // 10
    return ",".join(steps) + "#" + str(a + b if op == "+" else a * b)


def _ea_regex(text):
    match = re.search(r"#([0-9]+)\s*$", text.split("\n", 1)[0])
    return int(match.group(1)) if match else None


def _mv_loop(answers):
    counts: dict[int, int] = {}
    for a in answers:
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    best = None
    for a, c in counts.items():
        if best is None or c > counts[best]:
            best = a
    return best


CORRECT_IMPLEMENTATIONS: dict[str, list[tuple[str, object]]] = {
    "format_scratchpad": [
        ("labs.cot.format_scratchpad as typed", as_typed(cot.format_scratchpad)),
        ("string slicing and ljust", _fs_explicit),
    ],
    "extract_answer": [
        ("labs.cot.extract_answer as typed", as_typed(cot.extract_answer)),
        ("a regular expression", _ea_regex),
    ],
    "majority_vote": [
        ("labs.cot.majority_vote as typed", as_typed(cot.majority_vote)),
        ("a dict and a loop", _mv_loop),
    ],
}
