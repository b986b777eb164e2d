"""labs.attention against PyTorch's own attention and against brute-force loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention.bias import causal_lower_right

from labs import attention
from labs.attention import (
    MultiHeadAttention,
    causal_mask,
    from_torch_mha,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
    to_torch_mha,
    torch_mha_masks,
)
from labs.plots import plot_attention

ATOL = 1e-5


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _qkv(lead, T_q, T_k, d_k, d_v, seed=0, dtype=torch.float32):
    g = _gen(seed)
    return (
        torch.randn(*lead, T_q, d_k, generator=g, dtype=dtype),
        torch.randn(*lead, T_k, d_k, generator=g, dtype=dtype),
        torch.randn(*lead, T_k, d_v, generator=g, dtype=dtype),
    )


def _brute_force(q, k, v, mask=None):
    """Attention one query row at a time, in float64, with Python loops over the keys."""
    lead = q.shape[:-2]
    T_q, T_k = q.shape[-2], k.shape[-2]
    q, k, v = (t.double().reshape(-1, t.shape[-2], t.shape[-1]) for t in (q, k, v))
    if mask is not None:
        mask = mask.expand(*lead, T_q, T_k).reshape(-1, T_q, T_k)
    out = torch.zeros(q.shape[0], T_q, v.shape[-1], dtype=torch.float64)
    weights = torch.zeros(q.shape[0], T_q, T_k, dtype=torch.float64)
    for b in range(q.shape[0]):
        for i in range(T_q):
            keys = [j for j in range(T_k) if mask is None or bool(mask[b, i, j])]
            if not keys:
                continue  # attends to nothing: zero weights, zero output
            scores = {j: float(q[b, i] @ k[b, j]) / math.sqrt(q.shape[-1]) for j in keys}
            top = max(scores.values())
            total = sum(math.exp(s - top) for s in scores.values())
            for j in keys:
                weights[b, i, j] = math.exp(scores[j] - top) / total
                out[b, i] += weights[b, i, j] * v[b, j]
    return out.reshape(*lead, T_q, -1), weights.reshape(*lead, T_q, T_k)


# ------------------------------------------------------------------ scaled dot-product


SHAPES = [
    ((), 4, 4, 8, 8),
    ((3,), 5, 7, 16, 4),
    ((2, 4), 6, 6, 8, 8),
    ((2, 3), 1, 9, 32, 16),
    ((1, 2), 10, 3, 4, 12),
]


@pytest.mark.parametrize(("lead", "T_q", "T_k", "d_k", "d_v"), SHAPES)
def test_sdpa_matches_pytorch_without_mask(lead, T_q, T_k, d_k, d_v):
    q, k, v = _qkv(lead, T_q, T_k, d_k, d_v)
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=ATOL, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(*lead, T_q))
    torch.testing.assert_close(weights, torch.softmax(q @ k.mT / math.sqrt(d_k), -1))


@pytest.mark.parametrize("T", [1, 2, 7, 16])
def test_sdpa_causal_matches_pytorch_is_causal(T):
    q, k, v = _qkv((2, 3), T, T, 8, 8, seed=T)
    out, weights = scaled_dot_product_attention(q, k, v, causal_mask(T))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    assert bool((weights.triu(1) == 0).all())


@pytest.mark.parametrize(("T_q", "T_k"), [(1, 6), (3, 8), (5, 5)])
def test_sdpa_non_square_causal_matches_pytorch_lower_right(T_q, T_k):
    q, k, v = _qkv((2, 2), T_q, T_k, 8, 8, seed=T_q + T_k)
    out, _ = scaled_dot_product_attention(q, k, v, causal_mask(T_q, T_k))
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(T_q, T_k))
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("seed", range(5))
def test_sdpa_random_bool_masks_match_pytorch_and_brute_force(seed):
    g = _gen(100 + seed)
    lead = (2, 3)
    T_q, T_k = int(torch.randint(1, 9, (), generator=g)), int(torch.randint(1, 9, (), generator=g))
    q, k, v = _qkv(lead, T_q, T_k, 8, 5, seed=seed)
    mask = torch.rand(*lead, T_q, T_k, generator=g) > 0.4
    mask[..., 0] = True  # no fully masked row (PyTorch versions disagree on those)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=ATOL, rtol=0
    )
    brute_out, brute_weights = _brute_force(q, k, v, mask)
    torch.testing.assert_close(out.double(), brute_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights.double(), brute_weights, atol=ATOL, rtol=0)


def test_sdpa_broadcast_masks_match_brute_force():
    q, k, v = _qkv((2, 3), 4, 6, 8, 8, seed=7)
    for mask in (causal_mask(4, 6), padding_mask([6, 2], 6), torch.tensor([True] * 5 + [False])):
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        brute_out, brute_weights = _brute_force(q, k, v, mask)
        torch.testing.assert_close(out.double(), brute_out, atol=ATOL, rtol=0)
        torch.testing.assert_close(weights.double(), brute_weights, atol=ATOL, rtol=0)


def test_padding_mask_matches_pytorch_and_hides_the_pads():
    q, k, v = _qkv((3, 2), 5, 5, 4, 4, seed=3)
    mask = padding_mask(torch.tensor([5, 3, 1]), 5)
    assert mask.shape == (3, 1, 1, 5) and mask.dtype == torch.bool
    assert mask[:, 0, 0].tolist() == [
        [True] * 5,
        [True, True, True, False, False],
        [True, False, False, False, False],
    ]
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=ATOL, rtol=0
    )
    assert bool((weights[1, ..., 3:] == 0).all()) and bool((weights[2, ..., 1:] == 0).all())
    # changing the padded values changes nothing
    v2 = v.clone()
    v2[1, :, 3:] += 100.0
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v2, mask)[0][1], out[1])


def test_fully_masked_row_gives_zero_weights_and_output():
    q, k, v = _qkv((), 3, 4, 8, 8)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    assert bool((weights[1] == 0).all()) and bool((out[1] == 0).all())
    torch.testing.assert_close(weights[[0, 2]].sum(-1), torch.ones(2))


def test_sdpa_large_inputs_stay_finite_and_float64_works():
    q, k, v = _qkv((2,), 4, 6, 16, 8)
    out, weights = scaled_dot_product_attention(100 * q, 100 * k, v)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    q64, k64, v64 = _qkv((2,), 4, 6, 16, 8, dtype=torch.float64)
    out64, _ = scaled_dot_product_attention(q64, k64, v64)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64, _brute_force(q64, k64, v64)[0])


def test_sdpa_gradients_match_pytorch():
    q, k, v = (t.requires_grad_() for t in _qkv((2, 2), 5, 5, 8, 8))
    mask = causal_mask(5)
    scaled_dot_product_attention(q, k, v, mask)[0].square().sum().backward()
    ours = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    F.scaled_dot_product_attention(q, k, v, attn_mask=mask).square().sum().backward()
    for a, t in zip(ours, (q, k, v), strict=True):
        torch.testing.assert_close(a, t.grad, atol=ATOL, rtol=1e-4)


# ------------------------------------------------------------------ masks


@pytest.mark.parametrize(("T_q", "T_k"), [(1, 1), (4, 4), (1, 5), (3, 7), (6, 2)])
def test_causal_mask_brute_force(T_q, T_k):
    mask = causal_mask(T_q, T_k)
    assert mask.shape == (T_q, T_k) and mask.dtype == torch.bool
    offset = T_k - T_q
    for i in range(T_q):
        for j in range(T_k):
            assert bool(mask[i, j]) == (j <= i + offset)


def test_causal_mask_defaults_to_square_lower_triangle_on_the_device():
    torch.testing.assert_close(causal_mask(5), torch.ones(5, 5, dtype=torch.bool).tril())
    assert causal_mask(3, device="cpu").device.type == "cpu"


def test_causal_outputs_ignore_future_tokens():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(2, 8, 16)
    changed = x.clone()
    changed[:, 5:] = torch.randn(2, 3, 16)
    mask = causal_mask(8)
    with torch.no_grad():
        before, after = mha(x, mask=mask), mha(changed, mask=mask)
        unmasked_before, unmasked_after = mha(x), mha(changed)
    assert torch.equal(before[:, :5], after[:, :5])
    assert not torch.allclose(before[:, 5:], after[:, 5:])
    assert not torch.allclose(unmasked_before[:, :5], unmasked_after[:, :5])


# ------------------------------------------------------------------ heads


def test_split_heads_gives_each_head_its_channel_block():
    x = torch.randn(2, 5, 12, generator=_gen())
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    for h in range(3):
        torch.testing.assert_close(heads[:, h], x[..., 4 * h : 4 * (h + 1)], atol=0, rtol=0)


@pytest.mark.parametrize(("C", "n_heads"), [(8, 1), (8, 2), (12, 3), (6, 6)])
def test_split_merge_round_trip(C, n_heads):
    x = torch.randn(3, 7, C, generator=_gen(C))
    assert torch.equal(merge_heads(split_heads(x, n_heads)), x)
    y = torch.randn(3, n_heads, 7, C // n_heads, generator=_gen())
    assert torch.equal(split_heads(merge_heads(y), n_heads), y)


# ------------------------------------------------------------------ multi-head vs PyTorch


def _torch_outputs(mha, x_q, x_kv, mask=None, key_padding=None):
    torch_mha = to_torch_mha(mha)
    return torch_mha(
        x_q,
        x_kv,
        x_kv,
        need_weights=True,
        average_attn_weights=False,
        **torch_mha_masks(mask, key_padding),
    )


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("d_model", "n_heads"), [(8, 1), (16, 4), (24, 3)])
def test_mha_self_attention_matches_pytorch(d_model, n_heads, bias):
    torch.manual_seed(d_model + n_heads)
    mha = MultiHeadAttention(d_model, n_heads, bias=bias)
    x = torch.randn(2, 7, d_model)
    out, weights = mha(x, need_weights=True)
    expected_out, expected_weights = _torch_outputs(mha, x, x)
    torch.testing.assert_close(out, expected_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights, expected_weights, atol=ATOL, rtol=0)
    assert weights.shape == (2, n_heads, 7, 7)


def test_mha_cross_attention_with_key_padding_matches_pytorch():
    torch.manual_seed(1)
    mha = MultiHeadAttention(16, 4)
    x_q, x_kv = torch.randn(3, 4, 16), torch.randn(3, 9, 16)
    pad = padding_mask([9, 5, 1], 9)
    out, weights = mha(x_q, x_kv, mask=pad, need_weights=True)
    expected_out, expected_weights = _torch_outputs(mha, x_q, x_kv, key_padding=pad)
    torch.testing.assert_close(out, expected_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights, expected_weights, atol=ATOL, rtol=0)
    assert out.shape == (3, 4, 16) and weights.shape == (3, 4, 4, 9)


def test_mha_causal_and_padding_together_match_pytorch():
    torch.manual_seed(2)
    mha = MultiHeadAttention(12, 2)
    x = torch.randn(2, 6, 12)
    pad = padding_mask([6, 4], 6)
    out, _ = mha(x, mask=causal_mask(6) & pad, need_weights=True)
    expected_out, _ = _torch_outputs(mha, x, x, mask=causal_mask(6), key_padding=pad)
    torch.testing.assert_close(out, expected_out, atol=ATOL, rtol=0)


def test_mha_gradients_match_pytorch():
    torch.manual_seed(3)
    mha = MultiHeadAttention(16, 4)
    torch_mha = to_torch_mha(mha)
    x = torch.randn(2, 5, 16)
    mha(x, mask=causal_mask(5)).square().sum().backward()
    torch_mha(x, x, x, need_weights=False, attn_mask=~causal_mask(5))[0].square().sum().backward()
    in_grad = torch.cat([mha.q_proj.weight.grad, mha.k_proj.weight.grad, mha.v_proj.weight.grad])
    torch.testing.assert_close(in_grad, torch_mha.in_proj_weight.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        mha.out_proj.weight.grad, torch_mha.out_proj.weight.grad, atol=1e-4, rtol=1e-4
    )


def test_mha_from_torch_round_trip_and_self_attention_default():
    torch.manual_seed(4)
    torch_mha = nn.MultiheadAttention(16, 2, batch_first=True)
    mha = from_torch_mha(torch_mha)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(mha(x), torch_mha(x, x, x)[0], atol=ATOL, rtol=0)
    torch.testing.assert_close(mha(x), mha(x, x), atol=0, rtol=0)
    back = to_torch_mha(mha)
    for name, p in torch_mha.named_parameters():
        assert torch.equal(p, dict(back.named_parameters())[name]), name


def test_functional_mha_is_what_the_module_runs():
    torch.manual_seed(5)
    mha = MultiHeadAttention(8, 2)
    x_q, x_kv = torch.randn(1, 3, 8), torch.randn(1, 4, 8)
    out, weights = attention.multi_head_attention(
        x_q, x_kv, mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj, 2
    )
    module_out, module_weights = mha(x_q, x_kv, need_weights=True)
    assert torch.equal(out, module_out) and torch.equal(weights, module_weights)


# ------------------------------------------------------------------ clear errors


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (
            lambda: scaled_dot_product_attention(
                *_qkv((), 3, 4, 8, 8)[:1], *_qkv((), 3, 4, 6, 8)[1:]
            ),
            "same width d_k",
        ),
        (
            lambda: scaled_dot_product_attention(
                torch.zeros(3, 8), torch.zeros(4, 8), torch.zeros(5, 8)
            ),
            "same T_k",
        ),
        (
            lambda: scaled_dot_product_attention(torch.zeros(8), torch.zeros(8), torch.zeros(8)),
            "at least 2 dimensions",
        ),
        (
            lambda: scaled_dot_product_attention(*_qkv((), 3, 3, 4, 4), causal_mask(3).float()),
            "must be a bool tensor",
        ),
        (
            lambda: scaled_dot_product_attention(*_qkv((), 3, 4, 4, 4), causal_mask(4)),
            "does not broadcast",
        ),
        (lambda: split_heads(torch.zeros(2, 3, 10), 3), "not divisible by n_heads=3"),
        (lambda: split_heads(torch.zeros(3, 10), 2), "expects (B, T, C)"),
        (lambda: merge_heads(torch.zeros(3, 10, 2)), "expects (B, nh, T, hs)"),
        (lambda: MultiHeadAttention(10, 4), "pick n_heads among [1, 2, 5, 10]"),
        (lambda: MultiHeadAttention(8, 0), "n_heads must be a positive int"),
        (lambda: MultiHeadAttention(8, 2)(torch.zeros(2, 3, 6)), "d_model=8"),
        (
            lambda: MultiHeadAttention(8, 2)(torch.zeros(2, 3, 8), torch.zeros(3, 3, 8)),
            "share B and C",
        ),
        (lambda: causal_mask(0), "T_q must be a positive int"),
        (lambda: causal_mask(3, 2.5), "T_k must be a positive int"),
        (lambda: padding_mask([3, 7], 5), "lengths must lie in [0, T=5]"),
        (lambda: padding_mask([[3]], 5), "1-D sequence of ints"),
        (lambda: from_torch_mha(nn.MultiheadAttention(8, 2, kdim=4, vdim=4)), "kdim == vdim"),
        (lambda: from_torch_mha(nn.MultiheadAttention(8, 2, add_bias_kv=True)), "add_bias_kv"),
    ],
)
def test_clear_errors(call, words):
    with pytest.raises(ValueError) as info:
        call()
    assert words in str(info.value)


def test_plot_attention_draws_a_heat_map_and_checks_labels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = torch.softmax(torch.randn(3, 4, generator=_gen()), -1)
    ax = plot_attention(weights, ["a", "b", "c"], ["w", "x", "y", "z"], highlight_row=1)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["w", "x", "y", "z"]
    assert len(ax.patches) == 1  # the highlighted row
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="do not match"):
        plot_attention(weights, ["a", "b"])
    with pytest.raises(ValueError, match="expects weights"):
        plot_attention(weights[None], ["a", "b", "c"])
