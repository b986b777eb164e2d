"""Planted bugs for lesson 03's checks (GPT pretraining): see tests/test_check_exercises.py."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from planted import Bug, as_typed

from labs import gpt
from labs.checks import gpt as checks

# --------------------------------------------------------------------------- attention


def _qkv(x, attn, order=(0, 1, 2)):
    B, T, C = x.shape
    parts = attn.c_attn(x).split(C, dim=2)
    q, k, v = (parts[i] for i in order)
    hs = C // attn.n_head
    return [t.view(B, T, attn.n_head, hs).transpose(1, 2) for t in (q, k, v)]


def _merge(y):
    B, nh, T, hs = y.shape
    return y.transpose(1, 2).reshape(B, T, nh * hs)


def _attn_manual(x, attn):
    q, k, v = _qkv(x, attn)
    T = x.shape[1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return attn.c_proj(_merge(scores.softmax(-1) @ v))


def _attn_no_mask(x, attn):
    q, k, v = _qkv(x, attn)
    return attn.c_proj(_merge(F.scaled_dot_product_attention(q, k, v)))


def _attn_no_scale(x, attn):
    q, k, v = _qkv(x, attn)
    T = x.shape[1]
    scores = (q @ k.transpose(-2, -1)).masked_fill(
        ~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf")
    )
    return attn.c_proj(_merge(scores.softmax(-1) @ v))


def _attn_scale_by_width(x, attn):
    q, k, v = _qkv(x, attn)
    T, C = x.shape[1], x.shape[2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(C)  # model width instead of head size
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return attn.c_proj(_merge(scores.softmax(-1) @ v))


def _attn_swapped_qk(x, attn):
    q, k, v = _qkv(x, attn, order=(1, 0, 2))
    return attn.c_proj(_merge(F.scaled_dot_product_attention(q, k, v, is_causal=True)))


def _attn_heads_without_transpose(x, attn):
    B, T, C = x.shape
    q, k, v = attn.c_attn(x).split(C, dim=2)
    q, k, v = (t.reshape(B, attn.n_head, T, C // attn.n_head) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return attn.c_proj(y.reshape(B, T, C))


def _attn_no_projection(x, attn):
    q, k, v = _qkv(x, attn)
    return _merge(F.scaled_dot_product_attention(q, k, v, is_causal=True))


def _attn_upper_triangle(x, attn):
    q, k, v = _qkv(x, attn)
    T = x.shape[1]
    mask = torch.ones(T, T, dtype=torch.bool).triu()  # sees the future, not the past
    return attn.c_proj(_merge(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))


# --------------------------------------------------------------------------- forward


def _embed(model, idx, positions=None):
    T = idx.shape[1]
    positions = torch.arange(T) if positions is None else positions
    return model.transformer.wte(idx) + model.transformer.wpe(positions)


def _head(model, x, targets, reduction="mean"):
    logits = model.lm_head(model.transformer.ln_f(x))
    if targets is None:
        return logits, None
    B, T, V = logits.shape
    loss = F.cross_entropy(logits.view(B * T, V), targets.reshape(B * T), reduction=reduction)
    return logits, loss


def _blocks(model, x):
    for block in model.transformer.h:
        x = block(x)
    return x


def _forward_direct(model, idx, targets=None):
    return _head(model, _blocks(model, _embed(model, idx)), targets)


def _forward_no_positions(model, idx, targets=None):
    return _head(model, _blocks(model, model.transformer.wte(idx)), targets)


def _forward_positions_from_one(model, idx, targets=None):
    T = idx.shape[1]
    positions = torch.arange(1, T + 1).clamp(max=model.config.block_size - 1)
    return _head(model, _blocks(model, _embed(model, idx, positions)), targets)


def _forward_no_final_norm(model, idx, targets=None):
    x = _blocks(model, _embed(model, idx))
    logits = model.lm_head(x)
    loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    return logits, loss


def _forward_last_block_only(model, idx, targets=None):
    return _head(model, model.transformer.h[-1](_embed(model, idx)), targets)


def _forward_summed_loss(model, idx, targets=None):
    return _head(model, _blocks(model, _embed(model, idx)), targets, reduction="sum")


def _forward_shifts_targets_again(model, idx, targets=None):
    logits, _ = _head(model, _blocks(model, _embed(model, idx)), None)
    if targets is None:
        return logits, None
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), targets[:, 1:].flatten())
    return logits, loss


def _forward_loss_on_softmax(model, idx, targets=None):
    logits, _ = _head(model, _blocks(model, _embed(model, idx)), None)
    if targets is None:
        return logits, None
    return logits, F.cross_entropy(logits.softmax(-1).flatten(0, 1), targets.flatten())


# --------------------------------------------------------------------------- sampling


def _filter_top_p_strict(logits, top_k=None, top_p=None):
    """Drops the token that crosses top_p (keeps only tokens strictly below it)."""
    if top_k is not None:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        drop_sorted = sorted_logits.softmax(-1).cumsum(-1) > top_p
        logits = logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
    return logits


def _filter_top_k_off_by_one(logits, top_k=None, top_p=None):
    if top_k is not None:
        kth = torch.topk(logits, top_k + 1, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return gpt.filter_logits(logits, top_p=top_p)


def _filter_no_unsort(logits, top_k=None, top_p=None):
    """Builds the nucleus mask in sorted order and applies it to the unsorted logits."""
    logits = gpt.filter_logits(logits, top_k=top_k)
    if top_p is not None:
        sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = (probs.cumsum(-1) - probs) >= top_p
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _filter_global_top_k(logits, top_k=None, top_p=None):
    if top_k is not None:
        kth = torch.topk(logits.flatten(), top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return gpt.filter_logits(logits, top_p=top_p)


def _filter_cumsum_of_logits(logits, top_k=None, top_p=None):
    logits = gpt.filter_logits(logits, top_k=top_k)
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.cumsum(-1)  # logits are not probabilities
        drop_sorted = (cumulative - sorted_logits) >= top_p
        logits = logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
    return logits


def _filter_zero_instead_of_inf(logits, top_k=None, top_p=None):
    filtered = gpt.filter_logits(logits, top_k=top_k, top_p=top_p)
    return torch.where(torch.isinf(filtered), torch.zeros_like(filtered), filtered)


def _filter_top_p_before_top_k(logits, top_k=None, top_p=None):
    return gpt.filter_logits(gpt.filter_logits(logits, top_p=top_p), top_k=top_k)


def _filter_returns_probabilities(logits, top_k=None, top_p=None):
    return gpt.filter_logits(logits, top_k=top_k, top_p=top_p).softmax(-1)


PLANTED_BUGS: dict[str, list[Bug]] = {
    "causal_self_attention": [
        ("no causal mask: sees the future", _attn_no_mask, "case 1 of 5 (B=2, T=5, C=8, 2 heads)"),
        ("no 1/sqrt(head size) scale", _attn_no_scale, "entries differ"),
        ("scaled by sqrt(C) instead of sqrt(head size)", _attn_scale_by_width, "entries differ"),
        ("queries and keys swapped", _attn_swapped_qk, "entries differ"),
        (
            "heads split with a reshape but no transpose",
            _attn_heads_without_transpose,
            "case 1 of 5 (B=2, T=5, C=8, 2 heads): output",
        ),
        ("forgets the output projection c_proj", _attn_no_projection, "entries differ"),
        ("upper triangle: attends to the future", _attn_upper_triangle, "entries differ"),
    ],
    "gpt_forward": [
        ("no position embeddings", _forward_no_positions, "case 1 of 4"),
        ("positions start at 1", _forward_positions_from_one, "entries differ"),
        ("skips the final LayerNorm ln_f", _forward_no_final_norm, "entries differ"),
        ("runs only the last block", _forward_last_block_only, "entries differ"),
        ("sums the loss instead of averaging", _forward_summed_loss, "entries differ"),
        ("shifts the targets a second time", _forward_shifts_targets_again, "entries differ"),
        ("cross-entropy on probabilities", _forward_loss_on_softmax, "entries differ"),
    ],
    "filter_logits": [
        ("drops the token that crosses top_p", _filter_top_p_strict, "top_p=0.9 on a peaked row"),
        ("top-k keeps k+1 tokens", _filter_top_k_off_by_one, "top_k=2 on one row"),
        ("nucleus mask not mapped back to positions", _filter_no_unsort, "top_p=0.5 on a batch"),
        ("top-k over the whole batch", _filter_global_top_k, "a batch of rows (4, 10)"),
        (
            "cumulative sum of logits, not probabilities",
            _filter_cumsum_of_logits,
            "top_p=0.5 on a batch",
        ),
        ("filtered logits set to 0, not -inf", _filter_zero_instead_of_inf, "entries differ"),
        ("top-p before top-k", _filter_top_p_before_top_k, "top_k=4 and top_p=0.8 together"),
        ("returns probabilities", _filter_returns_probabilities, "case 1 of 8"),
    ],
}

CORRECT_IMPLEMENTATIONS = {
    "causal_self_attention": [
        ("labs reference as typed", as_typed(checks.causal_self_attention)),
        ("manual masked softmax", _attn_manual),
    ],
    "gpt_forward": [
        ("labs reference as typed", as_typed(checks.gpt_forward)),
        ("submodules one by one", _forward_direct),
    ],
    "filter_logits": [("labs.gpt.filter_logits as typed", as_typed(gpt.filter_logits))],
}
