"""Checks for lesson 05 (chain-of-thought): scratchpad formatting, answer extraction, voting."""

from __future__ import annotations

from labs import cot
from labs.checks.core import Case, FunctionCheck


def _format_scratchpad_cases() -> list[Case]:
    return [
        Case(
            "no carries: 123 + 456",
            (123, 456, "+"),
            hint="one step per digit, least significant first: '3+6+0=09,2+5+0=07,1+4+0=05#579'.",
        ),
        Case(
            "carries: 345 + 978",
            (345, 978, "+"),
            hint="the carry into a step is value // 10 of the step before; the first carry is 0.",
        ),
        Case(
            "a digit sum of exactly 10: 46 + 64",
            (46, 64, "+"),
            hint="a value of 10 carries 1 (value // 10), and the step writes the full value '10'.",
        ),
        Case(
            "a shorter second number: 9999 + 1",
            (9999, 1, "+"),
            hint="pad the shorter number with zeros: one step for every digit of `a`.",
        ),
        Case(
            "multiplication: 3456 * 7",
            (3456, 7, "*"),
            hint="for '*' each step is 'digit*b+carry=value', e.g. '6*7+0=42,5*7+4=39,...'.",
        ),
        Case(
            "a one-digit problem: 8 * 9",
            (8, 9, "*"),
            hint="a single step has no separator: '8*9+0=72#72'.",
        ),
    ]


check_format_scratchpad = FunctionCheck(
    "format_scratchpad",
    cot.format_scratchpad,
    _format_scratchpad_cases,
    hint=(
        "steps 'x{op}y+carry=value' (value with two digits, f'{value:02d}') joined by ',', "
        "least significant digit first, then '#' and the answer, no END character."
    ),
)


def _extract_answer_cases() -> list[Case]:
    return [
        Case("a worked chain", ("5+8+0=13,4+7+1=12,3+9+1=13#1323",)),
        Case("a direct answer", ("#42",), hint="the answer is the int after the '#' mark."),
        Case(
            "no answer mark",
            ("5+8+0=13,4+7+1=1",),
            hint="a chain that never reached '#' has no answer: return None (do not raise).",
        ),
        Case(
            "a mark with nothing after it",
            ("5+8+0=13#",),
            hint="return None when no digits follow the last '#'.",
        ),
        Case(
            "junk after the mark",
            ("#12a4",),
            hint="only an answer made of digits counts; anything else after '#' means None.",
        ),
        Case(
            "the model kept going after END",
            ("3+4+0=7#7\n12 plus 30:#42",),
            hint="stop reading at the first END ('\\n'): the model's answer is the one before it.",
        ),
        Case(
            "two marks: the last one counts",
            ("#12,3+4+0=7#7",),
            hint="a chain may restart; take the text after the LAST '#' (str.rsplit).",
        ),
    ]


check_extract_answer = FunctionCheck(
    "extract_answer",
    cot.extract_answer,
    _extract_answer_cases,
    hint="cut at the first '\\n', then take the digits after the last '#' as an int, else None.",
)


def _majority_vote_cases() -> list[Case]:
    return [
        Case("a clear majority", ([5, 3, 3],)),
        Case("one answer", ([12],)),
        Case(
            "unreadable chains (None) are not votes",
            ([None, None, 7],),
            hint="drop None before counting: a chain with no answer does not vote.",
        ),
        Case(
            "a tie goes to the answer seen first",
            ([4, 9, 9, 4],),
            hint="with equal counts return the answer that appeared first (Counter keeps that order).",
        ),
        Case(
            "no readable answer at all",
            ([None, None],),
            hint="return None when every chain is unreadable.",
        ),
        Case("no samples", ([],), hint="an empty list has no majority: return None."),
    ]


check_majority_vote = FunctionCheck(
    "majority_vote",
    cot.majority_vote,
    _majority_vote_cases,
    hint="count the non-None answers and return the most common one (first seen wins a tie).",
)
