"""Checks for lesson 00 (welcome)."""

from __future__ import annotations

import torch

from labs import welcome
from labs.checks.core import Case, FunctionCheck


def _softmax_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    return [
        Case("a 1-D vector [1, 2, 3]", (torch.tensor([1.0, 2.0, 3.0]),)),
        Case(
            "a batch of rows, shape (4, 5)",
            (torch.randn(4, 5, generator=g),),
            hint="normalise each row on its own: sum over `dim` with keepdim=True.",
        ),
        Case(
            "large logits around ±1000",
            (torch.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -1002.0, -1001.0]]),),
            hint="exp(1000) overflows to inf: subtract the maximum along `dim` first.",
        ),
        Case(
            "masked entries (-inf) in a row",
            (torch.tensor([[0.5, float("-inf"), 1.5, float("-inf")]]),),
            hint="exp(-inf) = 0, so masked entries should get probability exactly 0.",
        ),
        Case(
            "dim=0 on a (3, 2) tensor",
            (torch.randn(3, 2, generator=g),),
            {"dim": 0},
            hint="use the `dim` argument everywhere instead of assuming the last dimension.",
        ),
        Case(
            "a 3-D tensor (2, 3, 4), last dim",
            (5 * torch.randn(2, 3, 4, generator=g),),
            hint="`dim=-1` must work for any number of leading dimensions.",
        ),
    ]


check_softmax = FunctionCheck(
    "softmax",
    welcome.softmax,
    _softmax_cases,
    hint="softmax(x)_i = exp(x_i - max(x)) / Σ_j exp(x_j - max(x)), along `dim`.",
)
