"""Checks for lesson 04 (in-context learning).

Three exercises, compared with :mod:`labs.icl`: ``build_prompt`` (interleave examples
into one sequence), ``least_squares_predict`` (the optimal baseline, in context) and
``induction_score`` (how much a head attends like an induction head).
"""

from __future__ import annotations

import torch

from labs import icl
from labs.checks.core import Case, FunctionCheck


def _xy(g: torch.Generator, B: int, K: int, D: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(B, K, D, generator=g), torch.randn(B, K, generator=g)


# --------------------------------------------------------------------------- build_prompt


def _prompt_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    return [
        Case(
            "one prompt, 2 examples in 1-D: x=[1, 2], y=[10, 20]",
            (torch.tensor([[[1.0], [2.0]]]), torch.tensor([[10.0, 20.0]])),
            hint="the sequence is x_1, y_1, x_2, y_2: [[1, 0], [1, 10], [2, 0], [2, 20]].",
        ),
        Case(
            "B=2, K=3, D=4",
            _xy(g, 2, 3, 4),
            hint="an x token is [x, 0] (D + 1 channels); a y token is [x, y].",
        ),
        Case(
            "a single example (K=1), D=5",
            _xy(g, 3, 1, 5),
        ),
        Case(
            "K=6 examples, D=2: order x_1, y_1, x_2, y_2, …",
            _xy(g, 2, 6, 2),
            hint="stack the two kinds of token on a new dim 2, (B, K, 2, D+1), then reshape "
            "to (B, 2K, D+1) — concatenating along the sequence puts all x's first.",
        ),
    ]


check_build_prompt = FunctionCheck(
    "build_prompt",
    icl.build_prompt,
    _prompt_cases,
    hint=(
        "x_tokens = cat([xs, zeros(B, K, 1)], -1); y_tokens = cat([xs, ys[..., None]], -1); "
        "stack([x_tokens, y_tokens], dim=2).reshape(B, 2K, D+1)."
    ),
)


# --------------------------------------------------------------------------- least squares


def _least_squares_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)
    xs, _ = _xy(g, 4, 8, 3)
    w = torch.randn(4, 3, 1, generator=g)
    exact = (xs @ w).squeeze(-1)  # noiseless: exact from 3 examples on
    return [
        Case(
            "one task in 1-D: x = 1, 2, 3 and y = 2x",
            (torch.tensor([[[1.0], [2.0], [3.0]]]), torch.tensor([[2.0, 4.0, 6.0]])),
            hint="position i fits w to the examples BEFORE it (0 … i-1) and predicts w·x_i; "
            "position 0 has nothing to learn from and predicts 0.",
        ),
        Case(
            "noiseless 3-D tasks, K=8 (exact once 3 examples are seen)",
            (xs, exact),
        ),
        Case(
            "noisy labels, B=3, K=10, D=4",
            _xy(g, 3, 10, 4),
            hint="use only examples 0 … i-1 for position i: never the y you are predicting.",
        ),
        Case(
            "fewer examples than dimensions (K=4, D=6): minimum-norm solution",
            _xy(g, 2, 4, 6),
            hint="with i < D examples XᵀX is singular: use torch.linalg.pinv(X) @ y (or "
            "torch.linalg.lstsq), the minimum-norm solution, not solve(XᵀX, Xᵀy).",
        ),
        Case(
            "a single example (K=1): nothing seen yet",
            _xy(g, 2, 1, 3),
            hint="return zeros of shape (B, K) for position 0.",
        ),
    ]


check_least_squares_predict = FunctionCheck(
    "least_squares_predict",
    icl.least_squares_predict,
    _least_squares_cases,
    hint=(
        "for i in 1 … K-1: w_hat = torch.linalg.pinv(xs[:, :i]) @ ys[:, :i, None]; "
        "preds[:, i] = (xs[:, i:i+1] @ w_hat)[:, 0, 0]; preds[:, 0] = 0."
    ),
    atol=1e-4,
    rtol=1e-3,
)


# --------------------------------------------------------------------------- induction score


def _patterns(g: torch.Generator, B: int, H: int, T: int) -> torch.Tensor:
    scores = torch.randn(B, H, T, T, generator=g) * 2
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    return scores.masked_fill(~mask, float("-inf")).softmax(-1)


def _perfect(B: int, L: int) -> torch.Tensor:
    """One head that is a perfect induction head, one that looks at the previous token."""
    T = 2 * L
    pattern = torch.zeros(B, 2, T, T)
    pattern[:, :, 0, 0] = 1.0
    for t in range(1, T):
        pattern[:, 1, t, t - 1] = 1.0
        pattern[:, 0, t, t - L + 1 if t >= L else t] = 1.0
    return pattern


def _induction_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    return [
        Case(
            "a perfect induction head and a previous-token head (L=4)",
            (_perfect(1, 4), 4),
            hint="an induction head at query t (second copy) attends to key t - seq_len + 1: "
            "the token AFTER the previous occurrence of the current token.",
        ),
        Case(
            "random causal patterns, B=2, H=3, L=5",
            (_patterns(g, 2, 3, 10), 5),
            hint="average over the batch and over the queries t = seq_len … 2·seq_len - 1 only.",
        ),
        Case(
            "one head, B=4, L=3",
            (_patterns(g, 4, 1, 6), 3),
            hint="return one score per head: shape (H,).",
        ),
        Case(
            "B=1, H=4, L=8",
            (_patterns(g, 1, 4, 16), 8),
        ),
    ]


check_induction_score = FunctionCheck(
    "induction_score",
    icl.induction_score,
    _induction_cases,
    hint=(
        "q = torch.arange(seq_len, 2 * seq_len); "
        "pattern[:, :, q, q - seq_len + 1].mean(dim=(0, 2)) → (H,)."
    ),
)
