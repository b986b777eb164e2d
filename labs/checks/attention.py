"""Checks for lesson 01 (attention).

Five exercises, each compared with :mod:`labs.attention` on named cases from the
simple to the tricky: ``scaled_dot_product_attention``, ``causal_mask``,
``split_heads``, ``merge_heads`` and ``multi_head_attention``.
"""

from __future__ import annotations

import torch
from torch import nn

from labs import attention
from labs.checks.core import Case, FunctionCheck


def _randn(g: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=g)


# --------------------------------------------------------------------------- sdpa


def _sdpa_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)
    causal = attention.causal_mask(5)
    padding = attention.padding_mask([6, 3], 6)  # (2, 1, 1, 6)
    one_row_hidden = torch.ones(3, 4, dtype=torch.bool)
    one_row_hidden[1] = False
    return [
        Case(
            "2-D: 3 queries, 4 keys, d_k = 8",
            (_randn(g, 3, 8), _randn(g, 4, 8), _randn(g, 4, 8)),
            hint="scores = q @ k.transpose(-2, -1) / sqrt(d_k); weights = softmax over the keys "
            "(the last dim); out = weights @ v. Return (out, weights).",
        ),
        Case(
            "batched 4-D (B=2, heads=3, T=5, d_k=4)",
            (_randn(g, 2, 3, 5, 4), _randn(g, 2, 3, 5, 4), _randn(g, 2, 3, 5, 4)),
            hint="transpose the last two dims of k (k.transpose(-2, -1)), not k.T, so leading "
            "batch and head dims are left alone.",
        ),
        Case(
            "cross shapes: T_q = 2 queries, T_k = 7 keys",
            (_randn(g, 2, 2, 16), _randn(g, 2, 7, 16), _randn(g, 2, 7, 16)),
            hint="weights are (T_q, T_k): one row per query, one column per key; the softmax runs "
            "over the keys (dim=-1).",
        ),
        Case(
            "d_v = 3 differs from d_k = 16",
            (_randn(g, 4, 16), _randn(g, 5, 16), _randn(g, 5, 3)),
            hint="scale by sqrt(d_k), the width of q and k (q.shape[-1]), not by the width of v.",
        ),
        Case(
            "causal mask (5, 5)",
            (_randn(g, 5, 8), _randn(g, 5, 8), _randn(g, 5, 8)),
            {"mask": causal},
            hint="where mask is False the score becomes -inf before the softmax "
            "(scores.masked_fill(~mask, float('-inf'))), so that key gets weight exactly 0.",
        ),
        Case(
            "padding mask (2, 1, 1, 6) on batched heads",
            (_randn(g, 2, 2, 6, 4), _randn(g, 2, 2, 6, 4), _randn(g, 2, 2, 6, 4)),
            {"mask": padding},
            hint="the mask broadcasts against the scores (B, heads, T_q, T_k); True = may attend, "
            "False = padding, whose weight must be 0.",
        ),
        Case(
            "large inputs (scores in the hundreds)",
            (_randn(g, 4, 16, scale=10.0), _randn(g, 6, 16, scale=10.0), _randn(g, 6, 16)),
            hint="use torch.softmax (or subtract the row maximum before exp) so large scores do "
            "not overflow.",
        ),
        Case(
            "a query whose every key is masked",
            (_randn(g, 3, 8), _randn(g, 4, 8), _randn(g, 4, 8)),
            {"mask": one_row_hidden},
            hint="softmax of a row of -inf is NaN; such a row attends to nothing: set its weights "
            "to 0 after the softmax, e.g. weights.masked_fill(~mask, 0.0).",
        ),
    ]


check_scaled_dot_product_attention = FunctionCheck(
    "scaled_dot_product_attention",
    attention.scaled_dot_product_attention,
    _sdpa_cases,
    hint="out = softmax(q kᵀ / √d_k, masked to -inf where mask is False) v; return (out, weights).",
    atol=1e-5,
    rtol=1e-4,
)


# --------------------------------------------------------------------------- causal mask


def _causal_cases() -> list[Case]:
    return [
        Case(
            "square, T = 4",
            (4,),
            hint="position i may see positions 0..i: the lower triangle with the diagonal, "
            "torch.ones(T, T, dtype=torch.bool).tril().",
        ),
        Case("a single token, T = 1", (1,), hint="one token sees itself: [[True]]."),
        Case(
            "square, T = 6, T_k given",
            (6, 6),
            hint="with T_k equal to T_q the mask is the same square lower triangle.",
        ),
        Case(
            "one new query after 4 cached keys (T_q = 1, T_k = 5)",
            (1, 5),
            hint="the queries are the LAST T_q positions: the single new token sees all 5 keys. "
            "Shift the diagonal: tril(diagonal=T_k - T_q).",
        ),
        Case(
            "T_q = 3 queries, T_k = 5 keys",
            (3, 5),
            hint="query i sits at position i + (T_k - T_q), so it sees keys j ≤ i + T_k - T_q: "
            "tril(diagonal=T_k - T_q).",
        ),
        Case(
            "device='cpu' passed by keyword",
            (3,),
            {"device": "cpu"},
            hint="accept device=None and create the tensor there: torch.ones(..., device=device).",
        ),
    ]


check_causal_mask = FunctionCheck(
    "causal_mask",
    attention.causal_mask,
    _causal_cases,
    hint="a bool (T_q, T_k) tensor, True where query i may see key j: j ≤ i + (T_k - T_q).",
)


# --------------------------------------------------------------------------- heads


def _split_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    return [
        Case(
            "B=1, T=3, C=4 into 2 heads",
            (torch.arange(12.0).reshape(1, 3, 4), 2),
            hint="head 0 gets channels 0-1 of every position, head 1 channels 2-3: "
            "x.view(B, T, n_heads, C // n_heads).transpose(1, 2).",
        ),
        Case(
            "B=2, T=5, C=12 into 3 heads",
            (_randn(g, 2, 5, 12), 3),
            hint="the result is (B, n_heads, T, head_size): view as (B, T, nh, hs) first, then "
            "swap the T and head dims; a direct view(B, nh, T, hs) mixes positions.",
        ),
        Case(
            "B=2, T=4, C=6 into 2 heads (head size 3 ≠ heads)",
            (_randn(g, 2, 4, 6), 2),
            hint="head_size = C // n_heads; keep the order (B, n_heads, T, head_size).",
        ),
        Case("one head", (_randn(g, 2, 3, 8), 1), hint="one head is just x with a new dim 1."),
        Case(
            "head size 1 (C = n_heads = 4)",
            (_randn(g, 1, 5, 4), 4),
            hint="head h gets channel h alone.",
        ),
    ]


check_split_heads = FunctionCheck(
    "split_heads",
    attention.split_heads,
    _split_cases,
    hint="(B, T, C) -> (B, n_heads, T, C // n_heads); head h holds channels h·hs … (h+1)·hs - 1.",
)


def _merge_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    return [
        Case(
            "B=1, 2 heads, T=3, head size 2",
            (torch.arange(12.0).reshape(1, 2, 3, 2),),
            hint="position t gets head 0's channels then head 1's: "
            "x.transpose(1, 2).reshape(B, T, n_heads * head_size).",
        ),
        Case(
            "B=2, 3 heads, T=5, head size 4",
            (_randn(g, 2, 3, 5, 4),),
            hint="bring T next to B first (transpose(1, 2)), then flatten (heads, head_size) into "
            "C; a .view after a transpose needs .contiguous() (or use .reshape).",
        ),
        Case(
            "the output of split_heads (a transposed view)",
            (attention.split_heads(_randn(g, 2, 4, 6), 3),),
            hint="merge_heads(split_heads(x, n)) must give x back.",
        ),
        Case("one head", (_randn(g, 2, 1, 3, 8),), hint="with one head the result is x[:, 0]."),
    ]


check_merge_heads = FunctionCheck(
    "merge_heads",
    attention.merge_heads,
    _merge_cases,
    hint="(B, n_heads, T, hs) -> (B, T, n_heads·hs), the inverse of split_heads.",
)


# --------------------------------------------------------------------------- multi-head


def _projections(d_model: int, seed: int) -> tuple[nn.Linear, nn.Linear, nn.Linear, nn.Linear]:
    """Four seeded Linear(d_model, d_model) layers, leaving the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = tuple(nn.Linear(d_model, d_model) for _ in range(4))
    return layers


def _mha_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    x = _randn(g, 1, 4, 8)
    x2 = _randn(g, 2, 5, 12)
    x3 = _randn(g, 2, 6, 8)
    return [
        Case(
            "self-attention: B=1, T=4, C=8, 2 heads",
            (x, x, *_projections(8, 10), 2),
            hint="q = split_heads(q_proj(x_q)), k and v from x_kv the same way; attend per head; "
            "then out_proj(merge_heads(out)). Return (out, weights).",
        ),
        Case(
            "self-attention: B=2, T=5, C=12, 3 heads",
            (x2, x2, *_projections(12, 11), 3),
            hint="each head attends with its own head_size = C // n_heads channels, "
            "so the scale is 1/sqrt(head_size).",
        ),
        Case(
            "cross-attention: 3 queries, 6 keys/values",
            (_randn(g, 2, 3, 8), x3, *_projections(8, 12), 2),
            hint="queries come from x_q, keys AND values from x_kv; weights are "
            "(B, n_heads, T_q, T_k).",
        ),
        Case(
            "causal self-attention (mask (5, 5))",
            (x2, x2, *_projections(12, 13), 4),
            {"mask": attention.causal_mask(5)},
            hint="pass the mask on to scaled_dot_product_attention; it broadcasts over batch and "
            "heads.",
        ),
        Case(
            "cross-attention with a padding mask (2, 1, 1, 6)",
            (_randn(g, 2, 3, 8), x3, *_projections(8, 14), 4),
            {"mask": attention.padding_mask([6, 2], 6)},
            hint="pad keys get weight 0 in every head: pass the mask to the attention unchanged.",
        ),
        Case(
            "one head",
            (x, x, *_projections(8, 15), 1),
            hint="one head is plain attention on the projections, followed by out_proj.",
        ),
    ]


check_multi_head_attention = FunctionCheck(
    "multi_head_attention",
    attention.multi_head_attention,
    _mha_cases,
    hint="project, split into heads, attend per head, merge the heads, project the output.",
    atol=1e-5,
    rtol=1e-4,
)
