"""Planted bugs for lesson 10's LoRA checks (lora_forward, merge_lora_weight):
see tests/test_check_exercises.py."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from planted import Bug, as_typed

from labs import lora


def _base(x, weight, bias):
    return x @ weight.T + (0 if bias is None else bias)


# --------------------------------------------------------------------------- lora_forward


def _fwd_no_scaling(x, weight, bias, lora_A, lora_B, scaling):
    return _base(x, weight, bias) + (x @ lora_A.T) @ lora_B.T


def _fwd_A_B_swapped(x, weight, bias, lora_A, lora_B, scaling):
    return _base(x, weight, bias) + scaling * (x @ lora_B.T) @ lora_A.T


def _fwd_weight_not_transposed(x, weight, bias, lora_A, lora_B, scaling):
    return x @ weight + bias + scaling * (x @ lora_A.T) @ lora_B.T


def _fwd_scales_base_too(x, weight, bias, lora_A, lora_B, scaling):
    return scaling * (_base(x, weight, bias) + (x @ lora_A.T) @ lora_B.T)


def _fwd_no_bias(x, weight, bias, lora_A, lora_B, scaling):
    return x @ weight.T + scaling * (x @ lora_A.T) @ lora_B.T


def _fwd_no_branch(x, weight, bias, lora_A, lora_B, scaling):
    return _base(x, weight, bias)


def _fwd_2d_only(x, weight, bias, lora_A, lora_B, scaling):
    out = torch.mm(x, weight.t()) + scaling * torch.mm(torch.mm(x, lora_A.t()), lora_B.t())
    return out if bias is None else out + bias


def _fwd_bias_always(x, weight, bias, lora_A, lora_B, scaling):
    return x @ weight.T + bias + scaling * (x @ lora_A.T) @ lora_B.T


def _fwd_scaling_squared(x, weight, bias, lora_A, lora_B, scaling):
    return _base(x, weight, bias) + scaling**2 * (x @ lora_A.T) @ lora_B.T


# --------------------------------------------------------------------------- merge_lora_weight


def _merge_in_place(weight, lora_A, lora_B, scaling):
    weight += scaling * lora_B @ lora_A
    return weight


def _merge_add_(weight, lora_A, lora_B, scaling):
    return weight.add_(lora_B @ lora_A, alpha=scaling)


def _merge_A_at_B(weight, lora_A, lora_B, scaling):
    return weight + scaling * lora_A @ lora_B


def _merge_transposed_update(weight, lora_A, lora_B, scaling):
    return weight + scaling * lora_A.T @ lora_B.T


def _merge_no_scaling(weight, lora_A, lora_B, scaling):
    return weight + lora_B @ lora_A


def _merge_scaling_squared(weight, lora_A, lora_B, scaling):
    return weight + scaling**2 * lora_B @ lora_A


def _merge_scales_weight_too(weight, lora_A, lora_B, scaling):
    return scaling * (weight + lora_B @ lora_A)


def _merge_update_only(weight, lora_A, lora_B, scaling):
    return scaling * lora_B @ lora_A


PLANTED_BUGS: dict[str, list[Bug]] = {
    "lora_forward": [
        ("forgot scaling", _fwd_no_scaling, "(scaling = 0.5"),
        (
            "A and B swapped: x @ B.T @ A.T",
            _fwd_A_B_swapped,
            "(a batch (4, 6) → (4, 5), r = 2, scaling 1) raised RuntimeError",
        ),
        (
            "x @ weight without the transpose",
            _fwd_weight_not_transposed,
            "(a batch (4, 6) → (4, 5), r = 2, scaling 1) raised RuntimeError",
        ),
        ("scaling applied to the frozen path too", _fwd_scales_base_too, "(scaling = 0.5"),
        ("bias dropped", _fwd_no_bias, "(a batch (4, 6)"),
        ("the LoRA branch forgotten", _fwd_no_branch, "(a batch (4, 6)"),
        ("torch.mm: 2-D inputs only", _fwd_2d_only, "(3-D input (2, 5, 8)"),
        ("adds bias even when it is None", _fwd_bias_always, "(no bias (bias is None)) raised"),
        ("scaling squared", _fwd_scaling_squared, "(scaling = 0.5"),
    ],
    "merge_lora_weight": [
        ("weight += … modifies the weight in place", _merge_in_place, "changed its input in place"),
        ("weight.add_(…) modifies the weight in place", _merge_add_, "changed its input in place"),
        (
            "A @ B instead of B @ A",
            _merge_A_at_B,
            "(merge (5, 6) with r = 2, scaling 1) raised RuntimeError",
        ),
        (
            "update transposed: A.T @ B.T is (in, out)",
            _merge_transposed_update,
            "(merge (5, 6) with r = 2, scaling 1) raised RuntimeError",
        ),
        ("forgot scaling", _merge_no_scaling, "(scaling = 0.25)"),
        ("scaling squared", _merge_scaling_squared, "(scaling = 0.25)"),
        ("scaling applied to W too", _merge_scales_weight_too, "(scaling = 0.25)"),
        ("returns only the update, not W + update", _merge_update_only, "(merge (5, 6)"),
    ],
}


CORRECT_IMPLEMENTATIONS: dict[str, list[tuple[str, object]]] = {
    "lora_forward": [
        ("labs.lora.lora_forward as typed", as_typed(lora.lora_forward)),
        (
            "with @ and an explicit bias check",
            lambda x, w, b, A, B, s: x @ w.T + (b if b is not None else 0) + s * (x @ A.T) @ B.T,
        ),
        (
            "merging first, then one F.linear",
            lambda x, w, b, A, B, s: F.linear(x, w + s * B @ A, b),
        ),
    ],
    "merge_lora_weight": [
        ("labs.lora.merge_lora_weight as typed", as_typed(lora.merge_lora_weight)),
        (
            "via einsum",
            lambda w, A, B, s: w + s * torch.einsum("or,ri->oi", B, A),
        ),
        ("via torch.addmm", lambda w, A, B, s: torch.addmm(w, B, A, alpha=s)),
    ],
}
