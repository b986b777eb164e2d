"""Checks for lesson 10's LoRA exercises: the LoRA forward pass of one Linear layer and
merging the low-rank update into the weight."""

from __future__ import annotations

import torch

from labs import lora
from labs.checks.core import Case, FunctionCheck


def _weights(seed: int, d_in: int, d_out: int, r: int, bias: bool = True):
    """(weight, bias, lora_A, lora_B) with a nonzero B, so a forgotten branch shows."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(d_out, d_in, generator=g) / d_in**0.5
    b = torch.randn(d_out, generator=g) if bias else None
    A = torch.randn(r, d_in, generator=g) / d_in**0.5
    B = torch.randn(d_out, r, generator=g)
    return weight, b, A, B


def _lora_forward_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    W, b, A, B = _weights(1, 6, 5, 2)
    W3, b3, A3, B3 = _weights(2, 8, 8, 3)
    W1, b1, A1, B1 = _weights(3, 4, 7, 1)
    x = torch.randn(4, 6, generator=g)
    return [
        Case(
            "a batch (4, 6) → (4, 5), r = 2, scaling 1",
            (x, W, b, A, B, 1.0),
            hint="y = x @ W.T + b + scaling · (x @ A.T) @ B.T: A (r, in) goes first, "
            "B (out, r) second.",
        ),
        Case(
            "scaling = 0.5 (lora_alpha / r) scales only the LoRA branch",
            (x, W, b, A, B, 0.5),
            hint="multiply only the low-rank branch by scaling; the frozen x @ W.T + b stays as is.",
        ),
        Case(
            "3-D input (2, 5, 8) like a GPT's (B, T, C), r = 3, scaling 2",
            (torch.randn(2, 5, 8, generator=g), W3, b3, A3, B3, 2.0),
            hint="use x @ W.T (or F.linear), which works for any leading dims; "
            "don't assume x is 2-D.",
        ),
        Case(
            "no bias (bias is None)",
            (x, W, None, A, B, 1.5),
            hint="a Linear layer without bias passes bias=None: add it only when it is not None.",
        ),
        Case(
            "rank r = 1 (A is (1, 4), B is (7, 1))",
            (torch.randn(3, 4, generator=g), W1, b1, A1, B1, 4.0),
            hint="with r = 1, x @ A.T is (B, 1); then @ B.T gives (B, out).",
        ),
    ]


check_lora_forward = FunctionCheck(
    "lora_forward",
    lora.lora_forward,
    _lora_forward_cases,
    hint="y = x @ weight.T + bias + scaling · (x @ lora_A.T) @ lora_B.T",
    atol=1e-5,
)


def _merge_cases() -> list[Case]:
    W, _, A, B = _weights(4, 6, 5, 2)
    W1, _, A1, B1 = _weights(5, 3, 8, 1)
    return [
        Case(
            "merge (5, 6) with r = 2, scaling 1",
            (W, A, B, 1.0),
            hint="W' = W + scaling · B @ A: B (out, r) @ A (r, in) is (out, in), like W.",
        ),
        Case(
            "scaling = 0.25",
            (W, A, B, 0.25),
            hint="multiply the update B @ A by scaling once (not scaling², and not W).",
        ),
        Case(
            "rank r = 1, a tall (8, 3) weight",
            (W1, A1, B1, 3.0),
            hint="B @ A has W's shape (out, in); A @ B would be (r, r).",
        ),
        Case(
            "zero B (a fresh adapter) leaves W unchanged",
            (W, A, torch.zeros_like(B), 2.0),
            hint="with B = 0 the merged weight must equal W.",
        ),
    ]


check_lora_merge = FunctionCheck(
    "merge_lora_weight",
    lora.merge_lora_weight,
    _merge_cases,
    hint="return a new tensor W + scaling · lora_B @ lora_A (don't change W in place).",
    atol=1e-5,
)
