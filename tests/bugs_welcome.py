"""Planted bugs for lesson 00's check (softmax): see tests/test_check_exercises.py."""

from __future__ import annotations

import torch
from planted import Bug, as_typed

from labs import welcome

# --------------------------------------------------------------------------- softmax bugs


def _softmax_no_max_subtraction(x, dim=-1):
    e = x.exp()
    return e / e.sum(dim=dim, keepdim=True)


def _softmax_global_max(x, dim=-1):
    e = (x - x.max()).exp()
    return e / e.sum(dim=dim, keepdim=True)


def _softmax_sum_over_dim0(x, dim=-1):
    e = (x - x.amax(dim=dim, keepdim=True)).exp()
    return e / e.sum(dim=0, keepdim=True)


def _softmax_no_keepdim(x, dim=-1):
    e = (x - x.amax(dim=dim, keepdim=True)).exp()
    return e / e.sum(dim=dim)


def _softmax_float64(x, dim=-1):
    return welcome.softmax(x.double(), dim=dim)


def _softmax_unnormalised(x, dim=-1):
    return (x - x.amax(dim=dim, keepdim=True)).exp()


def _softmax_in_place(x, dim=-1):
    x -= x.amax(dim=dim, keepdim=True)
    e = x.exp()
    return e / e.sum(dim=dim, keepdim=True)


def _softmax_transposed(x, dim=-1):
    return welcome.softmax(x, dim=dim).transpose(0, -1)


def _softmax_off_by_one(x, dim=-1):
    e = (x - x.amax(dim=dim, keepdim=True)).exp()
    return e / (e.sum(dim=dim, keepdim=True) + 1)


def _softmax_ignores_dim(x, dim=-1):
    return welcome.softmax(x, dim=-1)


def _softmax_mean_shift(x, dim=-1):
    e = (x - x.mean(dim=dim, keepdim=True)).exp()
    return e / e.sum(dim=dim, keepdim=True)


def _softmax_log_probs(x, dim=-1):
    return torch.log_softmax(x, dim=dim)


PLANTED_BUGS: dict[str, list[Bug]] = {
    "softmax": [
        (
            "no max subtraction: exp overflows to inf, inf/inf = NaN",
            _softmax_no_max_subtraction,
            "NaN or inf",
        ),
        (
            "no max subtraction fails on the large-logits case",
            _softmax_no_max_subtraction,
            "(large logits around ±1000)",
        ),
        (
            "global max instead of the max along dim",
            _softmax_global_max,
            "(large logits around ±1000)",
        ),
        (
            "normalising over dim 0 instead of dim",
            _softmax_sum_over_dim0,
            "(a batch of rows, shape (4, 5)): output",
        ),
        (
            "sum without keepdim does not broadcast on a batch",
            _softmax_no_keepdim,
            "(a batch of rows, shape (4, 5)) raised RuntimeError",
        ),
        (
            "returns float64 instead of the input's dtype",
            _softmax_float64,
            "expected dtype torch.float32, got torch.float64",
        ),
        (
            "forgets to normalise (just exp of shifted)",
            _softmax_unnormalised,
            "[1, 2, 3]): output: 3 of 3 entries differ",
        ),
        ("modifies x in place", _softmax_in_place, "changed its input in place"),
        ("returns the transposed result", _softmax_transposed, "expected shape (4, 5), got (5, 4)"),
        (
            "off-by-one in the denominator",
            _softmax_off_by_one,
            "[1, 2, 3]): output: 3 of 3 entries differ",
        ),
        (
            "ignores the dim argument (always -1)",
            _softmax_ignores_dim,
            "(dim=0 on a (3, 2) tensor): output",
        ),
        (
            "subtracts the mean instead of the max (-inf entries)",
            _softmax_mean_shift,
            "(masked entries (-inf) in a row)",
        ),
        ("returns log-probabilities", _softmax_log_probs, "got -2.40761"),
    ],
}


CORRECT_IMPLEMENTATIONS: dict[str, list[tuple[str, object]]] = {
    "softmax": [
        ("labs.welcome.softmax as typed", as_typed(welcome.softmax)),
        ("torch.softmax", lambda x, dim=-1: torch.softmax(x, dim=dim)),
        ("exp of log_softmax", lambda x, dim=-1: torch.log_softmax(x, dim=dim).exp()),
    ],
}
