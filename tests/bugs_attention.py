"""Planted bugs for lesson 01's checks (attention): see tests/test_check_exercises.py."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from planted import Bug, as_typed

from labs import attention
from labs.attention import merge_heads, scaled_dot_product_attention, split_heads

# --------------------------------------------------------------------------- sdpa bugs


def _sdpa(q, k, v, mask=None, *, scale=None, dim=-1, fill=float("-inf"), zero_rows=True):
    """The reference with one knob turned: the bugs below are one-line changes of it."""
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / (math.sqrt(d_k) if scale is None else scale(q, v))
    if mask is not None:
        scores = scores.masked_fill(~mask, fill)
    weights = torch.softmax(scores, dim=dim)
    if mask is not None and zero_rows:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights


def _sdpa_no_scaling(q, k, v, mask=None):
    return _sdpa(q, k, v, mask, scale=lambda q, v: 1.0)


def _sdpa_scale_by_d_k(q, k, v, mask=None):
    return _sdpa(q, k, v, mask, scale=lambda q, v: q.shape[-1])


def _sdpa_scale_by_d_v(q, k, v, mask=None):
    return _sdpa(q, k, v, mask, scale=lambda q, v: math.sqrt(v.shape[-1]))


def _sdpa_softmax_over_queries(q, k, v, mask=None):
    return _sdpa(q, k, v, mask, dim=-2)


def _sdpa_mask_polarity(q, k, v, mask=None):
    return _sdpa(q, k, v, None if mask is None else ~mask)


def _sdpa_mask_fill_zero(q, k, v, mask=None):
    return _sdpa(q, k, v, mask, fill=0.0, zero_rows=False)


def _sdpa_mask_fill_minus_1e9(q, k, v, mask=None):
    return _sdpa(q, k, v, mask, fill=-1e9, zero_rows=False)


def _sdpa_nan_rows(q, k, v, mask=None):
    return _sdpa(q, k, v, mask, zero_rows=False)


def _sdpa_ignores_mask(q, k, v, mask=None):
    return _sdpa(q, k, v)


def _sdpa_multiplies_by_mask(q, k, v, mask=None):
    _, weights = _sdpa(q, k, v)
    if mask is not None:
        weights = weights * mask
    return weights @ v, weights


def _sdpa_transpose_first_dims(q, k, v, mask=None):
    weights = torch.softmax(q @ k.transpose(0, 1) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ v, weights


def _sdpa_returns_only_out(q, k, v, mask=None):
    return _sdpa(q, k, v, mask)[0]


def _sdpa_swapped_outputs(q, k, v, mask=None):
    out, weights = _sdpa(q, k, v, mask)
    return weights, out


def _sdpa_naive_exp(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    e = scores.exp()
    weights = (e / e.sum(-1, keepdim=True)).nan_to_num(0.0)
    return weights @ v, weights


# --------------------------------------------------------------------------- causal mask bugs


def _causal_upper(T_q, T_k=None, device=None):
    T_k = T_q if T_k is None else T_k
    return torch.ones(T_q, T_k, dtype=torch.bool, device=device).triu(T_k - T_q)


def _causal_pytorch_polarity(T_q, T_k=None, device=None):
    return ~attention.causal_mask(T_q, T_k, device)


def _causal_no_diagonal(T_q, T_k=None, device=None):
    T_k = T_q if T_k is None else T_k
    return torch.ones(T_q, T_k, dtype=torch.bool, device=device).tril(T_k - T_q - 1)


def _causal_sees_next(T_q, T_k=None, device=None):
    T_k = T_q if T_k is None else T_k
    return torch.ones(T_q, T_k, dtype=torch.bool, device=device).tril(T_k - T_q + 1)


def _causal_float(T_q, T_k=None, device=None):
    return attention.causal_mask(T_q, T_k, device).float()


def _causal_additive(T_q, T_k=None, device=None):
    T_k = T_q if T_k is None else T_k
    return torch.full((T_q, T_k), float("-inf"), device=device).triu(T_k - T_q + 1)


def _causal_top_left(T_q, T_k=None, device=None):
    T_k = T_q if T_k is None else T_k
    return torch.ones(T_q, T_k, dtype=torch.bool, device=device).tril()


def _causal_square_only(T_q, T_k=None, device=None):
    return torch.ones(T_q, T_q, dtype=torch.bool, device=device).tril()


def _causal_no_device(T_q, T_k=None):
    return attention.causal_mask(T_q, T_k)


# --------------------------------------------------------------------------- heads bugs


def _split_direct_view(x, n_heads):
    B, T, C = x.shape
    return x.view(B, n_heads, T, C // n_heads)


def _split_no_transpose(x, n_heads):
    B, T, C = x.shape
    return x.view(B, T, n_heads, C // n_heads)


def _split_interleaved(x, n_heads):
    B, T, C = x.shape
    return x.view(B, T, C // n_heads, n_heads).permute(0, 3, 1, 2)


def _split_swapped_sizes(x, n_heads):
    B, T, C = x.shape
    return x.view(B, T, C // n_heads, n_heads).transpose(1, 2)


def _split_transpose_wrong_dims(x, n_heads):
    B, T, C = x.shape
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 3)


def _split_chunks_time(x, n_heads):
    return torch.stack(x.chunk(n_heads, dim=1), dim=1)


def _merge_no_transpose(x):
    B, nh, T, hs = x.shape
    return x.reshape(B, T, nh * hs)


def _merge_view_after_transpose(x):
    B, nh, T, hs = x.shape
    return x.transpose(1, 2).view(B, T, nh * hs)


def _merge_head_size_major(x):
    B, nh, T, hs = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, T, nh * hs)


def _merge_sum_heads(x):
    return x.sum(dim=1)


def _merge_forgets_reshape(x):
    return x.transpose(1, 2)


def _merge_cat_time(x):
    return torch.cat(x.unbind(1), dim=1)


# --------------------------------------------------------------------------- multi-head bugs


def _mha(
    x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask=None, *, split=None, merge=None
):
    split = split or split_heads
    merge = merge or merge_heads
    q, k, v = (split(p(x), n_heads) for p, x in ((q_proj, x_q), (k_proj, x_kv), (v_proj, x_kv)))
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    return out_proj(merge(out)), weights


def _mha_no_out_proj(x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask=None):
    q, k, v = (
        split_heads(p(x), n_heads) for p, x in ((q_proj, x_q), (k_proj, x_kv), (v_proj, x_kv))
    )
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    return merge_heads(out), weights


def _mha_self_only(x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask=None):
    return _mha(x_q, x_q, q_proj, k_proj, v_proj, out_proj, n_heads, mask)


def _mha_split_direct_view(x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask=None):
    return _mha(
        x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask, split=_split_direct_view
    )


def _mha_merge_no_transpose(x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask=None):
    return _mha(
        x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask, merge=_merge_no_transpose
    )


def _mha_swapped_k_v(x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask=None):
    return _mha(x_q, x_kv, q_proj, v_proj, k_proj, out_proj, n_heads, mask)


def _mha_one_big_head(x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask=None):
    q, k, v = q_proj(x_q)[:, None], k_proj(x_kv)[:, None], v_proj(x_kv)[:, None]
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    return out_proj(out[:, 0]), weights.expand(-1, n_heads, -1, -1)


def _mha_ignores_mask(x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask=None):
    return _mha(x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads)


def _mha_averaged_weights(x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask=None):
    out, weights = _mha(x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask)
    return out, weights.mean(dim=1)


def _mha_scale_by_d_model(x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask=None):
    q, k, v = (
        split_heads(p(x), n_heads) for p, x in ((q_proj, x_q), (k_proj, x_kv), (v_proj, x_kv))
    )
    scores = q @ k.transpose(-2, -1) / math.sqrt(x_q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return out_proj(merge_heads(weights @ v)), weights


# --------------------------------------------------------------------------- registry


PLANTED_BUGS: dict[str, list[Bug]] = {
    "scaled_dot_product_attention": [
        (
            "no 1/sqrt(d_k) scaling",
            _sdpa_no_scaling,
            "(2-D: 3 queries, 4 keys, d_k = 8): output[0]",
        ),
        ("scales by d_k instead of sqrt(d_k)", _sdpa_scale_by_d_k, "24 of 24 entries differ"),
        ("scales by sqrt(d_v)", _sdpa_scale_by_d_v, "not by the width of v"),
        ("softmax over the queries (dim=-2)", _sdpa_softmax_over_queries, "softmax over the keys"),
        (
            "k.transpose(0, 1) instead of the last two dims",
            _sdpa_transpose_first_dims,
            "raised RuntimeError",
        ),
        (
            "mask polarity inverted (True = hidden)",
            _sdpa_mask_polarity,
            "(causal mask (5, 5)): output[0]: 40 of 40",
        ),
        (
            "masked scores filled with 0 instead of -inf",
            _sdpa_mask_fill_zero,
            "(causal mask (5, 5))",
        ),
        (
            "weights multiplied by the mask after the softmax",
            _sdpa_multiplies_by_mask,
            "becomes -inf before the softmax",
        ),
        ("mask ignored", _sdpa_ignores_mask, "(causal mask (5, 5))"),
        (
            "fully masked row left as NaN",
            _sdpa_nan_rows,
            "NaN or inf where finite values were expected",
        ),
        (
            "-1e9 fill: a fully masked row becomes uniform",
            _sdpa_mask_fill_minus_1e9,
            "(a query whose every key is masked)",
        ),
        (
            "exp without max subtraction overflows",
            _sdpa_naive_exp,
            "(large inputs (scores in the hundreds))",
        ),
        ("returns only the output", _sdpa_returns_only_out, "expected a tuple, got Tensor"),
        ("returns (weights, out)", _sdpa_swapped_outputs, "expected shape (3, 8), got (3, 4)"),
    ],
    "causal_mask": [
        ("upper triangle", _causal_upper, "12 of 16 entries differ"),
        (
            "nn.MultiheadAttention polarity (True = hidden)",
            _causal_pytorch_polarity,
            "16 of 16 entries differ",
        ),
        ("off by one: cannot see itself", _causal_no_diagonal, "expected True, got False"),
        (
            "off by one: sees the next token",
            _causal_sees_next,
            "first at index (0, 1): expected False, got True",
        ),
        ("float 0/1 mask", _causal_float, "expected dtype torch.bool, got torch.float32"),
        ("additive -inf mask", _causal_additive, "expected dtype torch.bool"),
        (
            "top-left alignment for T_q < T_k",
            _causal_top_left,
            "(one new query after 4 cached keys",
        ),
        ("ignores T_k", _causal_square_only, "expected shape (1, 5), got (1, 1)"),
        ("no device argument", _causal_no_device, "unexpected keyword argument 'device'"),
    ],
    "split_heads": [
        (
            "direct view(B, nh, T, hs) mixes positions",
            _split_direct_view,
            "(B=1, T=3, C=4 into 2 heads): output: 8 of 12",
        ),
        (
            "forgets the transpose",
            _split_no_transpose,
            "expected shape (1, 2, 3, 2), got (1, 3, 2, 2)",
        ),
        ("interleaved channels per head", _split_interleaved, "6 of 12 entries differ"),
        (
            "heads and head size swapped",
            _split_swapped_sizes,
            "expected shape (2, 3, 5, 4), got (2, 4, 5, 3)",
        ),
        ("transposes the wrong dims", _split_transpose_wrong_dims, "got (1, 2, 2, 3)"),
        ("chunks along time", _split_chunks_time, "raised RuntimeError"),
    ],
    "merge_heads": [
        ("reshape without transposing back", _merge_no_transpose, "8 of 12 entries differ"),
        ("view after transpose", _merge_view_after_transpose, "view size is not compatible"),
        ("head size before heads", _merge_head_size_major, "6 of 12 entries differ"),
        ("sums the heads", _merge_sum_heads, "expected shape (1, 3, 4), got (1, 3, 2)"),
        ("forgets to flatten", _merge_forgets_reshape, "got (1, 3, 2, 2)"),
        ("concatenates along time", _merge_cat_time, "got (1, 6, 2)"),
    ],
    "multi_head_attention": [
        (
            "no output projection",
            _mha_no_out_proj,
            "(self-attention: B=1, T=4, C=8, 2 heads): output[0]",
        ),
        ("keys and values from x_q", _mha_self_only, "keys AND values from x_kv"),
        ("split by a direct view", _mha_split_direct_view, "32 of 32 entries differ"),
        ("merge without transposing back", _mha_merge_no_transpose, "32 of 32 entries differ"),
        ("k_proj and v_proj swapped", _mha_swapped_k_v, "output[0]: 32 of 32"),
        ("one big head, weights copied", _mha_one_big_head, "output[0]"),
        (
            "scale by sqrt(d_model)",
            _mha_scale_by_d_model,
            "(self-attention: B=1, T=4, C=8, 2 heads)",
        ),
        ("mask ignored", _mha_ignores_mask, "(causal self-attention (mask (5, 5)))"),
        (
            "weights averaged over heads",
            _mha_averaged_weights,
            "output[1]: expected shape (1, 2, 4, 4), got (1, 4, 4)",
        ),
    ],
}


# --------------------------------------------------------------------------- correct ones


def _sdpa_einsum(q, k, v, mask=None):
    scores = torch.einsum("...qd,...kd->...qk", q, k) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return torch.einsum("...qk,...kd->...qd", weights, v), weights


def _sdpa_scale_q_first_where(q, k, v, mask=None):
    scores = (q / math.sqrt(q.shape[-1])) @ k.mT
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(float("-inf")))
    weights = F.softmax(scores, dim=-1)
    if mask is not None:
        weights = torch.where(mask, weights, torch.zeros(()))
    return weights @ v, weights


def _causal_ones_tril(T_q, T_k=None, device=None):
    T_k = T_k or T_q
    i = torch.arange(T_q, device=device)[:, None] + (T_k - T_q)
    j = torch.arange(T_k, device=device)[None, :]
    return j <= i


def _causal_not_triu(T_q, T_k=None, device=None):
    T_k = T_q if T_k is None else T_k
    return ~torch.ones(T_q, T_k, dtype=torch.bool, device=device).triu(T_k - T_q + 1)


def _split_reshape_permute(x, n_heads):
    B, T, _ = x.shape
    return x.reshape(B, T, n_heads, -1).permute(0, 2, 1, 3)


def _split_stack_chunks(x, n_heads):
    return torch.stack(x.chunk(n_heads, dim=-1), dim=1)


def _merge_cat_heads(x):
    return torch.cat(x.unbind(1), dim=-1)


def _merge_contiguous_view(x):
    B, nh, T, hs = x.shape
    return x.transpose(1, 2).contiguous().view(B, T, nh * hs)


def _mha_with_einsum(x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask=None):
    B, T_q, C = x_q.shape
    hs = C // n_heads
    q = q_proj(x_q).view(B, T_q, n_heads, hs)
    k = k_proj(x_kv).view(B, -1, n_heads, hs)
    v = v_proj(x_kv).view(B, -1, n_heads, hs)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hs)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(-1).nan_to_num(0.0)
    out = torch.einsum("bhqk,bkhd->bqhd", weights, v).reshape(B, T_q, C)
    return out_proj(out), weights


def _mha_with_torch_sdpa(x_q, x_kv, q_proj, k_proj, v_proj, out_proj, n_heads, mask=None):
    q, k, v = (
        split_heads(p(x), n_heads) for p, x in ((q_proj, x_q), (k_proj, x_kv), (v_proj, x_kv))
    )
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    _, weights = scaled_dot_product_attention(q, k, v, mask)
    return out_proj(merge_heads(out)), weights


CORRECT_IMPLEMENTATIONS: dict[str, list[tuple[str, object]]] = {
    "scaled_dot_product_attention": [
        (
            "labs.attention.scaled_dot_product_attention as typed",
            as_typed(attention.scaled_dot_product_attention),
        ),
        ("einsum and nan_to_num", _sdpa_einsum),
        ("scale q first, torch.where", _sdpa_scale_q_first_where),
    ],
    "causal_mask": [
        ("labs.attention.causal_mask as typed", as_typed(attention.causal_mask)),
        ("compare position indices", _causal_ones_tril),
        ("not the strict upper triangle", _causal_not_triu),
    ],
    "split_heads": [
        ("labs.attention.split_heads as typed", as_typed(attention.split_heads)),
        ("reshape and permute", _split_reshape_permute),
        ("stack of channel chunks", _split_stack_chunks),
    ],
    "merge_heads": [
        ("labs.attention.merge_heads as typed", as_typed(attention.merge_heads)),
        ("concatenate the heads", _merge_cat_heads),
        ("contiguous().view", _merge_contiguous_view),
    ],
    "multi_head_attention": [
        ("labs.attention.multi_head_attention as typed", as_typed(attention.multi_head_attention)),
        ("einsum over heads", _mha_with_einsum),
        ("F.scaled_dot_product_attention for the output", _mha_with_torch_sdpa),
    ],
}
