"""Lesson 01: attention, the reference implementations.

Scaled dot-product attention, the causal and padding masks, splitting into heads and
multi-head attention, written the way PyTorch names them. Lesson 03's GPT imports
these; the exercise checks of lesson 01 compare the learner's code with them.

Shapes: ``B`` batch, ``T_q`` queries, ``T_k`` keys (= values), ``C`` model width
(``d_model``), ``nh`` heads, ``hs`` head size (``C // nh``), ``d_k`` / ``d_v`` the
width of one query/key and one value.

Masks are boolean and mean what ``F.scaled_dot_product_attention``'s ``attn_mask``
means: **True = may attend**. (``nn.MultiheadAttention``'s masks use the opposite
polarity: True = masked out; :func:`torch_mha_masks` converts.)

A query row whose every key is masked gets all-zero weights and a zero output here,
as recent ``F.scaled_dot_product_attention`` does (2.13, the course's pin; older versions
gave NaN). ``nn.MultiheadAttention`` returns NaN there, and NaN would spread through the
rest of the network (into every loss and gradient of a padded batch).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "MultiHeadAttention",
    "causal_mask",
    "from_torch_mha",
    "merge_heads",
    "multi_head_attention",
    "padding_mask",
    "scaled_dot_product_attention",
    "split_heads",
    "to_torch_mha",
    "torch_mha_masks",
]


# --------------------------------------------------------------------------- attention


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q kᵀ / √d_k) v``, returning ``(out, weights)``.

    q: (..., T_q, d_k), k: (..., T_k, d_k), v: (..., T_k, d_v); leading dimensions
    broadcast. mask: bool, broadcastable to (..., T_q, T_k), True = may attend.
    Returns out (..., T_q, d_v) and weights (..., T_q, T_k), each row summing to 1,
    or to 0 where the mask hides every key of that row.
    """
    _check_qkv(q, k, v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    if mask is not None:
        _check_mask(mask, scores.shape)
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        # A fully masked row is softmax(all -inf) = NaN; it attends to nothing instead.
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dim() < 2:
            raise ValueError(
                f"{name} must be a tensor of shape (..., T, d) with at least 2 dimensions, "
                f"got {getattr(t, 'shape', type(t).__name__)}"
            )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"queries and keys must have the same width d_k: q is {tuple(q.shape)} and "
            f"k is {tuple(k.shape)} (last dimensions {q.shape[-1]} and {k.shape[-1]})"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"keys and values must come in pairs (the same T_k): k is {tuple(k.shape)} and "
            f"v is {tuple(v.shape)}"
        )


def _check_mask(mask: torch.Tensor, scores_shape: torch.Size) -> None:
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise ValueError(
            "mask must be a bool tensor (True = may attend, False = hidden), got "
            f"{getattr(mask, 'dtype', type(mask).__name__)}; build one with causal_mask(...), "
            "padding_mask(...) or a comparison such as `ids != pad_id`"
        )
    try:
        shape = torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        shape = None
    if shape != scores_shape:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the attention scores "
            f"(..., T_q, T_k) = {tuple(scores_shape)}; its last two dimensions must be "
            "(T_q or 1, T_k or 1)"
        )


# --------------------------------------------------------------------------- masks


def causal_mask(
    T_q: int, T_k: int | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """Bool (T_q, T_k): True where query i may see key j, i.e. j ≤ i + (T_k - T_q).

    Square (the default, ``T_k = T_q``): lower triangle with the diagonal, so position
    t sees positions 0..t. With ``T_q < T_k`` the queries are the *last* T_q positions
    of the sequence (decoding with cached keys): the diagonal is aligned bottom-right,
    like ``torch.nn.attention.bias.causal_lower_right``. (``F.scaled_dot_product_attention``
    with ``is_causal=True`` aligns top-left instead; both agree when square.) With
    ``T_q > T_k`` the first ``T_q - T_k`` queries see nothing (all False).
    """
    T_k = T_q if T_k is None else T_k
    for name, n in (("T_q", T_q), ("T_k", T_k)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive int (a sequence length), got {n!r}")
    return torch.ones(T_q, T_k, dtype=torch.bool, device=device).tril(diagonal=T_k - T_q)


def padding_mask(
    lengths: torch.Tensor | list[int], T: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Key-padding mask (B, 1, 1, T) from the true lengths (B,) of right-padded sequences.

    True for the real tokens ``j < lengths[b]``, False for the padding, so every query
    ignores the pad keys. It broadcasts against (B, nh, T_q, T) attention scores; for
    single-head scores (B, T_q, T) use ``padding_mask(...)[:, 0]``. Combine it with a
    causal mask by ``&``.
    """
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.dim() != 1 or lengths.dtype == torch.bool or lengths.is_floating_point():
        raise ValueError(
            f"lengths must be a 1-D sequence of ints (one length per sequence), got {lengths!r}"
        )
    if len(lengths) and (int(lengths.min()) < 0 or int(lengths.max()) > T):
        raise ValueError(f"lengths must lie in [0, T={T}], got {lengths.tolist()}")
    positions = torch.arange(T, device=lengths.device)
    return (positions[None, :] < lengths[:, None])[:, None, None, :]


# --------------------------------------------------------------------------- heads


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, C) -> (B, nh, T, hs): head h gets channels h·hs … (h+1)·hs - 1."""
    if x.dim() != 3:
        raise ValueError(f"split_heads expects (B, T, C), got shape {tuple(x.shape)}")
    B, T, C = x.shape
    _check_heads(C, n_heads)
    return x.reshape(B, T, n_heads, C // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, nh, T, hs) -> (B, T, nh·hs): the inverse of :func:`split_heads`."""
    if x.dim() != 4:
        raise ValueError(f"merge_heads expects (B, nh, T, hs), got shape {tuple(x.shape)}")
    B, nh, T, hs = x.shape
    return x.transpose(1, 2).reshape(B, T, nh * hs)


def _check_heads(d_model: int, n_heads: int) -> None:
    if isinstance(n_heads, bool) or not isinstance(n_heads, int) or n_heads < 1:
        raise ValueError(f"n_heads must be a positive int, got {n_heads!r}")
    if d_model % n_heads:
        raise ValueError(
            f"d_model={d_model} is not divisible by n_heads={n_heads}: each head gets "
            f"d_model / n_heads channels; pick n_heads among "
            f"{[n for n in range(1, d_model + 1) if d_model % n == 0]}"
        )


# --------------------------------------------------------------------------- multi-head


def multi_head_attention(
    x_q: torch.Tensor,
    x_kv: torch.Tensor,
    q_proj: nn.Module,
    k_proj: nn.Module,
    v_proj: nn.Module,
    out_proj: nn.Module,
    n_heads: int,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-head attention, functionally: returns ``(out, weights)``.

    x_q: (B, T_q, C) makes the queries; x_kv: (B, T_k, C) the keys and values (pass
    the same tensor twice for self-attention). The projections map C -> C. mask: bool,
    broadcastable to (B, nh, T_q, T_k), True = may attend. Returns out (B, T_q, C) and
    the weights of every head (B, nh, T_q, T_k).
    """
    for name, t in (("x_q", x_q), ("x_kv", x_kv)):
        if t.dim() != 3:
            raise ValueError(f"{name} must be (B, T, C), got shape {tuple(t.shape)}")
    if x_q.shape[0] != x_kv.shape[0] or x_q.shape[-1] != x_kv.shape[-1]:
        raise ValueError(
            f"x_q {tuple(x_q.shape)} and x_kv {tuple(x_kv.shape)} must share B and C "
            "(they may differ in T)"
        )
    q = split_heads(q_proj(x_q), n_heads)  # (B, nh, T_q, hs)
    k = split_heads(k_proj(x_kv), n_heads)  # (B, nh, T_k, hs)
    v = split_heads(v_proj(x_kv), n_heads)  # (B, nh, T_k, hs)
    out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, nh, T_q, hs)
    return out_proj(merge_heads(out)), weights


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate q, k, v and output projections (C -> C each).

    ``mha(x)`` is self-attention; ``mha(x_q, x_kv)`` is cross-attention (queries from
    one sequence, keys and values from another). ``mask`` is bool, broadcastable to
    (B, nh, T_q, T_k), True = may attend: ``causal_mask(T)`` for a decoder,
    ``padding_mask(lengths, T_k)`` for padded batches. No dropout.

    >>> mha = MultiHeadAttention(d_model=64, n_heads=4)
    >>> y = mha(x, mask=causal_mask(x.shape[1], device=x.device))   # (B, T, 64)
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True) -> None:
        super().__init__()
        if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"d_model must be a positive int, got {d_model!r}")
        _check_heads(d_model, n_heads)
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_size = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(
        self,
        x_q: torch.Tensor,
        x_kv: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x_q (B, T_q, C), x_kv (B, T_k, C) or None (self-attention) -> (B, T_q, C).

        With ``need_weights=True`` returns ``(out, weights)``, weights (B, nh, T_q, T_k).
        """
        if x_q.dim() != 3 or x_q.shape[-1] != self.d_model:
            raise ValueError(
                f"x_q must be (B, T, d_model={self.d_model}), got shape {tuple(x_q.shape)}"
            )
        out, weights = multi_head_attention(
            x_q,
            x_q if x_kv is None else x_kv,
            self.q_proj,
            self.k_proj,
            self.v_proj,
            self.out_proj,
            self.n_heads,
            mask,
        )
        return (out, weights) if need_weights else out

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}"


# --------------------------------------------------------------------------- PyTorch


def to_torch_mha(mha: MultiHeadAttention) -> nn.MultiheadAttention:
    """A ``nn.MultiheadAttention`` (batch_first=True, no dropout) with ``mha``'s weights.

    PyTorch stacks the q, k, v projections into one ``in_proj_weight`` (3C, C).
    """
    bias = mha.q_proj.bias is not None
    p = mha.q_proj.weight
    torch_mha = nn.MultiheadAttention(
        mha.d_model, mha.n_heads, bias=bias, batch_first=True, device=p.device, dtype=p.dtype
    )
    projections = (mha.q_proj, mha.k_proj, mha.v_proj)
    with torch.no_grad():
        torch_mha.in_proj_weight.copy_(torch.cat([lin.weight for lin in projections]))
        torch_mha.out_proj.weight.copy_(mha.out_proj.weight)
        if bias:
            torch_mha.in_proj_bias.copy_(torch.cat([lin.bias for lin in projections]))
            torch_mha.out_proj.bias.copy_(mha.out_proj.bias)
    return torch_mha


def from_torch_mha(torch_mha: nn.MultiheadAttention) -> MultiHeadAttention:
    """A :class:`MultiHeadAttention` with the weights of a ``nn.MultiheadAttention``."""
    if not torch_mha._qkv_same_embed_dim:
        raise ValueError(
            "only nn.MultiheadAttention with kdim == vdim == embed_dim is supported "
            "(it then has a single in_proj_weight)"
        )
    if torch_mha.bias_k is not None or torch_mha.add_zero_attn:
        raise ValueError("add_bias_kv and add_zero_attn have no counterpart here: leave them off")
    bias = torch_mha.in_proj_bias is not None
    p = torch_mha.in_proj_weight
    mha = MultiHeadAttention(torch_mha.embed_dim, torch_mha.num_heads, bias=bias).to(
        p.device, p.dtype
    )
    projections = (mha.q_proj, mha.k_proj, mha.v_proj)
    with torch.no_grad():
        for lin, w in zip(projections, torch_mha.in_proj_weight.chunk(3), strict=True):
            lin.weight.copy_(w)
        mha.out_proj.weight.copy_(torch_mha.out_proj.weight)
        if bias:
            for lin, b in zip(projections, torch_mha.in_proj_bias.chunk(3), strict=True):
                lin.bias.copy_(b)
            mha.out_proj.bias.copy_(torch_mha.out_proj.bias)
    return mha


def torch_mha_masks(
    mask: torch.Tensor | None = None, key_padding: torch.Tensor | None = None
) -> dict[str, torch.Tensor | None]:
    """Our masks (True = may attend) as ``nn.MultiheadAttention`` keyword arguments.

    mask: bool (T_q, T_k) -> ``attn_mask``; key_padding: bool (B, T_k) of real tokens,
    or a :func:`padding_mask` (B, 1, 1, T_k) -> ``key_padding_mask``. PyTorch's masks
    mean the opposite (True = masked out), hence the ``~``.
    """
    if key_padding is not None and key_padding.dim() == 4:
        key_padding = key_padding[:, 0, 0, :]
    return {
        "attn_mask": None if mask is None else ~mask,
        "key_padding_mask": None if key_padding is None else ~key_padding,
    }
