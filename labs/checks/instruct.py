"""Checks for lesson 06 (instruction tuning)."""

from __future__ import annotations

from labs import instruct
from labs.checks.core import Case, FunctionCheck
from labs.instruct import format_prompt


def _format_example_cases() -> list[Case]:
    return [
        Case(
            "a reversal: ('reverse cat', 'tac')",
            ("reverse cat", "tac"),
            hint='the prompt is "Q: " + instruction + "\\nA: "; the full text adds the response '
            "and END_OF_RESPONSE.",
        ),
        Case(
            "a classification: ('is 7 even or odd?', 'odd')",
            ("is 7 even or odd?", "odd"),
            hint="return a tuple (prompt, full_text), in that order.",
        ),
        Case(
            "an empty response: ('say nothing', '')",
            ("say nothing", ""),
            hint="even an empty response ends with END_OF_RESPONSE: that is how the model "
            "learns to stop.",
        ),
        Case(
            "spaces kept: ('  spaced  out ', 'x')",
            ("  spaced  out ", "x"),
            hint="keep the instruction exactly as given (no strip()): the format must be "
            "reproducible character for character.",
        ),
    ]


check_format_example = FunctionCheck(
    "format_example",
    instruct.format_example,
    _format_example_cases,
    hint='prompt = "Q: " + instruction + "\\nA: "; full = prompt + response + END_OF_RESPONSE.',
)


def _response_mask_cases() -> list[Case]:
    return [
        Case(
            "prompt of 3 tokens in 6",
            (3, 6),
            hint="target t is token t + 1: it is a response token when t + 1 >= prompt_len.",
        ),
        Case(
            "prompt of 1 token in 2",
            (1, 2),
            hint="with a one-token prompt every target is a response token.",
        ),
        Case(
            "prompt of 8 tokens in 9",
            (8, 9),
            hint="only the last target (the token after the prompt) is a response token.",
        ),
        Case(
            "no response: prompt of 5 tokens in 5",
            (5, 5),
            hint="a sequence of total_len tokens has total_len - 1 targets; here none is a "
            "response token.",
        ),
        Case(
            "a long prompt: 20 tokens in 27",
            (20, 27),
            hint="return a bool tensor of shape (total_len - 1,).",
        ),
    ]


check_response_mask = FunctionCheck(
    "response_mask",
    instruct.response_mask,
    _response_mask_cases,
    hint="torch.arange(1, total_len) >= prompt_len: the target of position t is token t + 1.",
)


def _oracle(answers: dict[str, str], *, wrong: str = "?"):
    """A fake model: answers formatted prompts it knows, anything else with ``wrong``."""

    def respond(prompts: list[str]) -> list[str]:
        return [answers.get(p, wrong) for p in prompts]

    return respond


_EXAMPLES = [("reverse cat", "tac"), ("uppercase dog", "DOG"), ("length of abcd?", "4")]


def _answers(outputs: list[str]) -> dict[str, str]:
    return {format_prompt(i): out for (i, _), out in zip(_EXAMPLES, outputs, strict=True)}


def _exact_match_cases() -> list[Case]:
    return [
        Case(
            "a model that is always right",
            (_oracle(_answers(["tac", "DOG", "4"])), _EXAMPLES),
            hint="format each instruction with format_prompt before asking `respond`; "
            "return the fraction of exact matches.",
        ),
        Case(
            "a model right on 2 of 3",
            (_oracle(_answers(["tac", "dog", "4"])), _EXAMPLES),
            hint="return a fraction (correct / total), not a count.",
        ),
        Case(
            "answers with extra characters",
            (_oracle(_answers(["tac ", "DOGS", "4"])), _EXAMPLES),
            hint="exact match: 'tac ' and 'DOGS' are wrong (no strip(), no startswith()).",
        ),
        Case(
            "answers in the wrong case",
            (_oracle(_answers(["TAC", "dog", "4"])), [*_EXAMPLES, ("reverse ab", "ba")]),
            hint="exact match is case-sensitive: 'TAC' is not 'tac'.",
        ),
    ]


check_exact_match_accuracy = FunctionCheck(
    "exact_match_accuracy",
    instruct.exact_match_accuracy,
    _exact_match_cases,
    hint="prompts = [format_prompt(i) for i, _ in examples]; answers = respond(prompts); "
    "accuracy = mean(answer == response).",
)
