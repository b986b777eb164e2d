"""Lesson 00: the reference for the warm-up exercise and the lesson's small pictures."""

from __future__ import annotations

import torch


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Numerically stable softmax along ``dim``; same shape and dtype as ``x``.

    Subtracting the maximum changes nothing mathematically (it cancels in the ratio)
    but keeps ``exp`` from overflowing: ``exp(1000)`` is ``inf`` in float32.
    """
    shifted = x - x.amax(dim=dim, keepdim=True)
    exp = shifted.exp()
    return exp / exp.sum(dim=dim, keepdim=True)
