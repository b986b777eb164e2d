"""Planted bugs for lesson 04's checks (in-context learning): see tests/test_check_exercises.py."""

from __future__ import annotations

import torch
from planted import Bug, as_typed

from labs import icl

# --------------------------------------------------------------------------- build_prompt


def _tokens(xs, ys):
    B, K, _ = xs.shape
    x_tokens = torch.cat([xs, xs.new_zeros(B, K, 1)], dim=-1)
    y_tokens = torch.cat([xs, ys.unsqueeze(-1)], dim=-1)
    return x_tokens, y_tokens


def _prompt_all_x_then_all_y(xs, ys):
    return torch.cat(_tokens(xs, ys), dim=1)


def _prompt_y_first(xs, ys):
    x_tokens, y_tokens = _tokens(xs, ys)
    B, K, D = xs.shape
    return torch.stack([y_tokens, x_tokens], dim=2).reshape(B, 2 * K, D + 1)


def _prompt_y_in_first_channel(xs, ys):
    B, K, D = xs.shape
    x_tokens = torch.cat([xs.new_zeros(B, K, 1), xs], dim=-1)
    y_tokens = torch.cat([ys.unsqueeze(-1), xs], dim=-1)
    return torch.stack([x_tokens, y_tokens], dim=2).reshape(B, 2 * K, D + 1)


def _prompt_y_token_without_x(xs, ys):
    B, K, D = xs.shape
    x_tokens = torch.cat([xs, xs.new_zeros(B, K, 1)], dim=-1)
    y_tokens = torch.cat([xs.new_zeros(B, K, D), ys.unsqueeze(-1)], dim=-1)
    return torch.stack([x_tokens, y_tokens], dim=2).reshape(B, 2 * K, D + 1)


def _prompt_x_twice(xs, ys):
    x_tokens, _ = _tokens(xs, ys)
    B, K, D = xs.shape
    return torch.stack([x_tokens, x_tokens], dim=2).reshape(B, 2 * K, D + 1)


def _prompt_no_extra_channel(xs, ys):
    B, K, D = xs.shape
    y_tokens = xs + ys.unsqueeze(-1)  # y added onto x instead of its own channel
    return torch.stack([xs, y_tokens], dim=2).reshape(B, 2 * K, D)


def _prompt_float64(xs, ys):
    return icl.build_prompt(xs.double(), ys.double())


# --------------------------------------------------------------------------- least squares


def _ls(xs, ys, first, last_offset, solver="pinv"):
    preds = torch.zeros_like(ys)
    for i in range(first, xs.shape[1]):
        end = i + last_offset
        if end < 1:
            continue
        X, y = xs[:, :end], ys[:, :end].unsqueeze(-1)
        if solver == "pinv":
            w_hat = torch.linalg.pinv(X) @ y
        elif solver == "normal":
            w_hat = torch.linalg.solve(X.transpose(1, 2) @ X, X.transpose(1, 2) @ y)
        else:  # ridge with lambda = 1
            eye = torch.eye(xs.shape[-1])
            w_hat = torch.linalg.solve(X.transpose(1, 2) @ X + eye, X.transpose(1, 2) @ y)
        preds[:, i] = (xs[:, i : i + 1] @ w_hat)[:, 0, 0]
    return preds


def _ls_includes_current(xs, ys):
    return _ls(xs, ys, 0, 1)  # fits on examples 0 … i: sees the answer


def _ls_one_too_few(xs, ys):
    return _ls(xs, ys, 1, -1)  # fits on examples 0 … i-2


def _ls_normal_equations(xs, ys):
    return _ls(xs, ys, 1, 0, solver="normal")


def _ls_ridge(xs, ys):
    return _ls(xs, ys, 1, 0, solver="ridge")


def _ls_first_batch_only(xs, ys):
    preds = torch.zeros_like(ys)
    for i in range(1, xs.shape[1]):
        w_hat = torch.linalg.pinv(xs[0, :i]) @ ys[0, :i]  # task 0's weights for every task
        preds[:, i] = xs[:, i] @ w_hat
    return preds


def _ls_position0_mean(xs, ys):
    preds = icl.least_squares_predict(xs, ys)
    preds[:, 0] = ys.mean()
    return preds


def _ls_one_fit_on_all(xs, ys):
    w_hat = torch.linalg.pinv(xs) @ ys.unsqueeze(-1)  # one fit on every example
    return (xs @ w_hat).squeeze(-1)


def _ls_returns_weights(xs, ys):
    return torch.linalg.pinv(xs) @ ys.unsqueeze(-1)


# --------------------------------------------------------------------------- induction score


def _score_previous_occurrence(pattern, seq_len):
    q = torch.arange(seq_len, 2 * seq_len)
    return pattern[:, :, q, q - seq_len].mean(dim=(0, 2))


def _score_two_after(pattern, seq_len):
    q = torch.arange(seq_len, 2 * seq_len - 1)
    return pattern[:, :, q, q - seq_len + 2].mean(dim=(0, 2))


def _score_transposed(pattern, seq_len):
    q = torch.arange(seq_len, 2 * seq_len)
    return pattern[:, :, q - seq_len + 1, q].mean(dim=(0, 2))


def _score_all_queries(pattern, seq_len):
    q = torch.arange(seq_len - 1, 2 * seq_len)
    return pattern[:, :, q, q - seq_len + 1].mean(dim=(0, 2))


def _score_mean_over_heads(pattern, seq_len):
    q = torch.arange(seq_len, 2 * seq_len)
    return pattern[:, :, q, q - seq_len + 1].mean()


def _score_no_batch_mean(pattern, seq_len):
    q = torch.arange(seq_len, 2 * seq_len)
    return pattern[:, :, q, q - seq_len + 1].mean(dim=-1)


def _score_sum(pattern, seq_len):
    q = torch.arange(seq_len, 2 * seq_len)
    return pattern[:, :, q, q - seq_len + 1].sum(dim=-1).mean(dim=0)


def _score_previous_token(pattern, seq_len):
    q = torch.arange(seq_len, 2 * seq_len)
    return pattern[:, :, q, q - 1].mean(dim=(0, 2))


PLANTED_BUGS: dict[str, list[Bug]] = {
    "build_prompt": [
        (
            "all x tokens, then all y tokens (cat on the sequence)",
            _prompt_all_x_then_all_y,
            "(one prompt, 2 examples in 1-D: x=[1, 2], y=[10, 20]): output: 4 of 8 entries differ",
        ),
        ("y before x in each pair", _prompt_y_first, "(one prompt, 2 examples in 1-D"),
        (
            "y in the first channel instead of the last",
            _prompt_y_in_first_channel,
            "(one prompt, 2 examples in 1-D",
        ),
        (
            "y token without its x (Garg et al.'s format)",
            _prompt_y_token_without_x,
            "first mismatch at index (0, 1, 0): expected 1, got 0",
        ),
        ("the x token twice, no y token", _prompt_x_twice, "(one prompt, 2 examples in 1-D"),
        (
            "no extra channel: y broadcast over the x channels",
            _prompt_no_extra_channel,
            "expected shape (1, 4, 2), got (1, 4, 1)",
        ),
        ("returns float64", _prompt_float64, "expected dtype torch.float32, got torch.float64"),
    ],
    "least_squares_predict": [
        (
            "fits on examples 0 … i: the answer leaks in",
            _ls_includes_current,
            "(one task in 1-D: x = 1, 2, 3 and y = 2x): output",
        ),
        (
            "off by one: fits on examples 0 … i-2",
            _ls_one_too_few,
            "(one task in 1-D: x = 1, 2, 3 and y = 2x): output",
        ),
        (
            "normal equations break when XᵀX is singular",
            _ls_normal_equations,
            "(noiseless 3-D tasks, K=8 (exact once 3 examples are seen)) raised",
        ),
        ("ridge (λ = 1) instead of least squares", _ls_ridge, "(one task in 1-D"),
        (
            "uses the first task's weights for every task",
            _ls_first_batch_only,
            "(noiseless 3-D tasks, K=8 (exact once 3 examples are seen)): output",
        ),
        (
            "predicts the mean label at position 0",
            _ls_position0_mean,
            "first mismatch at index (0, 0)",
        ),
        ("one fit on all examples, not in context", _ls_one_fit_on_all, "(one task in 1-D"),
        ("returns the weights, not predictions", _ls_returns_weights, "expected shape (1, 3), got"),
    ],
    "induction_score": [
        (
            "attends to the previous occurrence itself, not the token after it",
            _score_previous_occurrence,
            "(a perfect induction head and a previous-token head (L=4)): output",
        ),
        ("two tokens after the occurrence", _score_two_after, "(a perfect induction head"),
        ("query and key swapped", _score_transposed, "(a perfect induction head"),
        (
            "includes a query from the first copy",
            _score_all_queries,
            "(a perfect induction head and a previous-token head (L=4)): output",
        ),
        ("averages over the heads too", _score_mean_over_heads, "expected shape (2,), got ()"),
        ("no mean over the batch", _score_no_batch_mean, "expected shape (2,), got (1, 2)"),
        ("sums over the queries", _score_sum, "(a perfect induction head"),
        ("previous-token score instead", _score_previous_token, "(a perfect induction head"),
    ],
}


def _ls_lstsq(xs, ys):
    preds = torch.zeros_like(ys)
    for i in range(1, xs.shape[1]):
        w_hat = torch.linalg.lstsq(xs[:, :i], ys[:, :i].unsqueeze(-1), driver="gelsd").solution
        preds[:, i] = (xs[:, i : i + 1] @ w_hat)[:, 0, 0]
    return preds


def _ls_loop(xs, ys):
    preds = torch.zeros_like(ys)
    for b in range(xs.shape[0]):
        for i in range(1, xs.shape[1]):
            preds[b, i] = xs[b, i] @ (torch.linalg.pinv(xs[b, :i]) @ ys[b, :i])
    return preds


def _prompt_loop(xs, ys):
    B, K, D = xs.shape
    out = torch.zeros(B, 2 * K, D + 1)
    for i in range(K):
        out[:, 2 * i, :D] = xs[:, i]
        out[:, 2 * i + 1, :D] = xs[:, i]
        out[:, 2 * i + 1, D] = ys[:, i]
    return out


def _prompt_index(xs, ys):
    B, K, D = xs.shape
    out = xs.new_zeros(B, 2 * K, D + 1)
    out[:, 0::2, :D] = xs
    out[:, 1::2, :D] = xs
    out[:, 1::2, D] = ys
    return out


def _prompt_cat_channels(xs, ys):
    x_tokens, y_tokens = _tokens(xs, ys)
    B, K, D = xs.shape
    return torch.cat([x_tokens, y_tokens], dim=-1).reshape(B, 2 * K, D + 1)


def _score_diagonal(pattern, seq_len):
    # the induction stripe is the diagonal at offset -(seq_len - 1), second copy only
    stripe = pattern.diagonal(offset=-(seq_len - 1), dim1=-2, dim2=-1)  # (B, H, seq_len + 1)
    return stripe[..., 1:].mean(dim=(0, 2))


def _score_loop(pattern, seq_len):
    total = torch.zeros(pattern.shape[1])
    for t in range(seq_len, 2 * seq_len):
        total += pattern[:, :, t, t - seq_len + 1].mean(0)
    return total / seq_len


CORRECT_IMPLEMENTATIONS: dict[str, list[tuple[str, object]]] = {
    "build_prompt": [
        ("labs.icl.build_prompt as typed", as_typed(icl.build_prompt)),
        ("a loop over examples", _prompt_loop),
        ("strided assignment", _prompt_index),
        ("cat on the channels, then reshape", _prompt_cat_channels),
    ],
    "least_squares_predict": [
        ("labs.icl.least_squares_predict as typed", as_typed(icl.least_squares_predict)),
        ("torch.linalg.lstsq (gelsd)", _ls_lstsq),
        ("a loop over tasks and positions", _ls_loop),
    ],
    "induction_score": [
        ("labs.icl.induction_score as typed", as_typed(icl.induction_score)),
        ("the diagonal of the pattern", _score_diagonal),
        ("a loop over queries", _score_loop),
    ],
}
