"""Datasets generated in code, so every lesson runs offline and the same on every machine."""

from __future__ import annotations

import math

import torch


def make_spirals(
    n_per_class: int = 200,
    n_classes: int = 3,
    noise: float = 0.25,
    seed: int = 0,
    turns: float = 1.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interleaved 2-D spirals: a classic "not linearly separable" toy problem.

    Each arm winds ``turns`` times around the origin; ``noise`` jitters the angle.
    Returns ``X`` of shape ``(n_per_class * n_classes, 2)`` (float32, roughly in
    [-1, 1]) and labels ``y`` of shape ``(N,)`` (int64 in ``[0, n_classes)``),
    shuffled with ``seed``.
    """
    if n_per_class < 1 or n_classes < 2:
        raise ValueError(
            f"need n_per_class >= 1 and n_classes >= 2, got {n_per_class} and {n_classes}"
        )
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    g = torch.Generator().manual_seed(seed)
    radius = torch.linspace(0.05, 1.0, n_per_class)
    xs, ys = [], []
    for label in range(n_classes):
        angle = radius * turns * 2 * math.pi + label * 2 * math.pi / n_classes
        angle = angle + noise * torch.randn(n_per_class, generator=g)
        xs.append(torch.stack([radius * torch.sin(angle), radius * torch.cos(angle)], dim=1))
        ys.append(torch.full((n_per_class,), label, dtype=torch.int64))
    X, y = torch.cat(xs), torch.cat(ys)
    order = torch.randperm(len(y), generator=g)
    return X[order].float(), y[order]
