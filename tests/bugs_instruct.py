"""Planted bugs for lesson 06's checks (format_example, response_mask,
exact_match_accuracy): see tests/test_check_exercises.py."""

from __future__ import annotations

import torch
from planted import Bug, as_typed

from labs import instruct
from labs.instruct import END_OF_RESPONSE, format_prompt

# --------------------------------------------------------------------------- format_example


def _fmt_no_end(instruction, response):
    prompt = f"Q: {instruction}\nA: "
    return prompt, prompt + response


def _fmt_no_space(instruction, response):
    prompt = f"Q: {instruction}\nA:"
    return prompt, prompt + response + END_OF_RESPONSE


def _fmt_swapped(instruction, response):
    prompt = f"Q: {instruction}\nA: "
    return prompt + response + END_OF_RESPONSE, prompt


def _fmt_prompt_without_marker(instruction, response):
    prompt = f"Q: {instruction}"
    return prompt, prompt + "\nA: " + response + END_OF_RESPONSE


def _fmt_strip(instruction, response):
    prompt = f"Q: {instruction.strip()}\nA: "
    return prompt, prompt + response + END_OF_RESPONSE


def _fmt_response_only(instruction, response):
    return f"Q: {instruction}\nA: ", response + END_OF_RESPONSE


def _fmt_blank_line_end(instruction, response):
    prompt = f"Q: {instruction}\nA: "
    return prompt, prompt + response + "\n\n"


# --------------------------------------------------------------------------- response_mask


def _mask_shifted_late(prompt_len, total_len):
    return torch.arange(total_len - 1) >= prompt_len  # forgets that target t is token t + 1


def _mask_shifted_early(prompt_len, total_len):
    return torch.arange(total_len - 1) >= prompt_len - 2


def _mask_per_token(prompt_len, total_len):
    return torch.arange(total_len) >= prompt_len  # masks tokens, not next-token targets


def _mask_inverted(prompt_len, total_len):
    return torch.arange(1, total_len) < prompt_len


def _mask_long(prompt_len, total_len):
    return (torch.arange(1, total_len) >= prompt_len).long()


def _mask_all_true(prompt_len, total_len):
    return torch.ones(total_len - 1, dtype=torch.bool)


def _mask_list(prompt_len, total_len):
    return [t + 1 >= prompt_len for t in range(total_len - 1)]


# --------------------------------------------------------------------------- exact_match_accuracy


def _em_unformatted(respond, examples):
    answers = respond([instruction for instruction, _ in examples])
    return sum(a == r for a, (_, r) in zip(answers, examples, strict=True)) / len(examples)


def _em_count(respond, examples):
    answers = respond([format_prompt(i) for i, _ in examples])
    return sum(a == r for a, (_, r) in zip(answers, examples, strict=True))


def _em_strip(respond, examples):
    answers = respond([format_prompt(i) for i, _ in examples])
    return sum(a.strip() == r for a, (_, r) in zip(answers, examples, strict=True)) / len(examples)


def _em_startswith(respond, examples):
    answers = respond([format_prompt(i) for i, _ in examples])
    return sum(a.startswith(r) for a, (_, r) in zip(answers, examples, strict=True)) / len(examples)


def _em_lower(respond, examples):
    answers = respond([format_prompt(i) for i, _ in examples])
    pairs = zip(answers, examples, strict=True)
    return sum(a.lower() == r.lower() for a, (_, r) in pairs) / len(examples)


def _em_against_instruction(respond, examples):
    answers = respond([format_prompt(i) for i, _ in examples])
    return sum(a == i for a, (i, _) in zip(answers, examples, strict=True)) / len(examples)


def _em_error_rate(respond, examples):
    answers = respond([format_prompt(i) for i, _ in examples])
    return sum(a != r for a, (_, r) in zip(answers, examples, strict=True)) / len(examples)


PLANTED_BUGS: dict[str, list[Bug]] = {
    "format_example": [
        ("forgets END_OF_RESPONSE", _fmt_no_end, "('reverse cat', 'tac')): output[1]"),
        ("no space after the response marker", _fmt_no_space, "output[0]: strings differ"),
        ("returns (full, prompt)", _fmt_swapped, "output[0]: strings differ at character 18"),
        (
            "the prompt lacks the response marker",
            _fmt_prompt_without_marker,
            "(a reversal: ('reverse cat', 'tac')): output[0]",
        ),
        ("strips the instruction", _fmt_strip, "(spaces kept: ('  spaced  out ', 'x'))"),
        ("full text is the response only", _fmt_response_only, "output[1]: strings differ"),
        ("ends with a blank line", _fmt_blank_line_end, "output[1]: strings differ"),
    ],
    "response_mask": [
        (
            "compares t (not t + 1) with prompt_len",
            _mask_shifted_late,
            "(prompt of 3 tokens in 6): output: 1 of 5 entries differ; first at index (2,)",
        ),
        (
            "counts the last prompt token's target as response",
            _mask_shifted_early,
            "first at index (1,): expected False, got True",
        ),
        ("one entry per token", _mask_per_token, "expected shape (5,), got (6,)"),
        ("inverted mask", _mask_inverted, "(prompt of 3 tokens in 6): output: 5 of 5 entries"),
        ("long instead of bool", _mask_long, "expected dtype torch.bool, got torch.int64"),
        ("everything is a response", _mask_all_true, "expected False, got True"),
        ("a Python list", _mask_list, "expected a torch.Tensor, got list"),
    ],
    "exact_match_accuracy": [
        ("asks with the bare instruction", _em_unformatted, "always right): output: expected 1"),
        ("returns a count", _em_count, "always right): output: expected 1, got 3"),
        ("strip() before comparing", _em_strip, "(answers with extra characters)"),
        ("startswith instead of ==", _em_startswith, "(answers with extra characters)"),
        (
            "case-insensitive",
            _em_lower,
            "(a model right on 2 of 3): output: expected 0.666667, got 1",
        ),
        ("compares with the instruction", _em_against_instruction, "expected 1, got 0"),
        ("returns the error rate", _em_error_rate, "expected 1, got 0"),
    ],
}


CORRECT_IMPLEMENTATIONS: dict[str, list[tuple[str, object]]] = {
    "format_example": [
        ("labs.instruct.format_example as typed", as_typed(instruct.format_example)),
        (
            "string concatenation with the constants",
            lambda i, r: (
                instruct.INSTRUCTION_MARKER + i + instruct.RESPONSE_MARKER,
                instruct.INSTRUCTION_MARKER + i + instruct.RESPONSE_MARKER + r + END_OF_RESPONSE,
            ),
        ),
        ("via format_prompt", lambda i, r: (format_prompt(i), format_prompt(i) + r + "\n")),
    ],
    "response_mask": [
        ("labs.instruct.response_mask as typed", as_typed(instruct.response_mask)),
        (
            "zeros, then ones from prompt_len - 1",
            lambda p, n: torch.cat(
                [torch.zeros(p - 1, dtype=torch.bool), torch.ones(n - p, dtype=torch.bool)]
            ),
        ),
        ("a list comprehension", lambda p, n: torch.tensor([t + 1 >= p for t in range(n - 1)])),
    ],
    "exact_match_accuracy": [
        ("labs.instruct.exact_match_accuracy as typed", as_typed(instruct.exact_match_accuracy)),
        (
            "one prompt at a time",
            lambda respond, examples: (
                sum(respond([format_prompt(i)])[0] == r for i, r in examples) / len(examples)
            ),
        ),
        (
            "a tensor mean turned into a float",
            lambda respond, examples: float(
                torch.tensor(
                    [
                        a == r
                        for a, (_, r) in zip(
                            respond([format_prompt(i) for i, _ in examples]), examples, strict=True
                        )
                    ],
                    dtype=torch.float,
                ).mean()
            ),
        ),
    ],
}
