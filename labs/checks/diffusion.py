"""Checks for lesson 09 (diffusion): the closed-form forward process, one DDPM step,
one DDIM step and the classifier-free guidance combination."""

from __future__ import annotations

import torch

from labs import diffusion
from labs.checks.core import Case, FunctionCheck


def _schedule(name: str = "cosine", T: int = 1000) -> torch.Tensor:
    return diffusion.DDPMScheduler(num_train_timesteps=T, beta_schedule=name).alphas_cumprod


def _add_noise_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    cosine, linear = _schedule("cosine"), _schedule("linear")
    x0 = torch.rand(3, 1, 8, 8, generator=g) * 2 - 1
    noise = torch.randn(3, 1, 8, 8, generator=g)
    return [
        Case(
            "one image at t = 500 (cosine schedule)",
            (x0[:1], noise[:1], torch.tensor([500]), cosine),
            hint="x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε: both coefficients are square roots.",
        ),
        Case(
            "t = 0: almost the clean image",
            (x0[:1], noise[:1], torch.tensor([0]), cosine),
            hint="index t is the t-th entry of alphas_cumprod (no -1: index 0 is the first step).",
        ),
        Case(
            "a batch of 3 images (3, 1, 8, 8), one t per image",
            (x0, noise, torch.tensor([10, 400, 999]), cosine),
            hint="ᾱ[t] has shape (B,): reshape it to (B, 1, 1, 1) so each image gets its own.",
        ),
        Case(
            "flat samples (3, 64), linear schedule",
            (x0.flatten(1), noise.flatten(1), torch.tensor([999, 1, 250]), linear),
            hint="reshape ᾱ[t] to (B, 1, …, 1) for any number of dimensions: x0.ndim - 1 ones.",
        ),
    ]


check_add_noise = FunctionCheck(
    "add_noise",
    diffusion.add_noise,
    _add_noise_cases,
    hint="x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε with ᾱ_t = alphas_cumprod[t], one per sample.",
)


def _step_inputs(seed: int, alpha_bar: float, shape=(2, 1, 8, 8)):
    """(ε̂, x_t, z) such that the implied x̂_0 lies inside [-1, 1] (no clipping)."""
    g = torch.Generator().manual_seed(seed)
    x0 = (torch.rand(shape, generator=g) * 2 - 1) * 0.9
    eps = torch.randn(shape, generator=g)
    x_t = alpha_bar**0.5 * x0 + (1 - alpha_bar) ** 0.5 * eps
    z = torch.randn(shape, generator=g)
    return eps, x_t, z


def _ddpm_step_cases() -> list[Case]:
    eps, x_t, z = _step_inputs(1, 0.5)
    eps1, x1, z1 = _step_inputs(2, 0.9)
    eps2, x2, z2 = _step_inputs(3, 0.05, (3, 64))
    x0_big = torch.full((1, 4), 0.9)  # with this ε̂ the implied x̂_0 lies outside [-1, 1]
    return [
        Case(
            "a middle step, ᾱ_t = 0.5 → ᾱ_prev = 0.6",
            (eps, x_t, 0.5, 0.6, z),
            hint="mean = (√ᾱ_prev·β·x̂0 + √α·(1 − ᾱ_prev)·x_t) / (1 − ᾱ_t) with α = ᾱ_t/ᾱ_prev, "
            "β = 1 − α; then add σ·z with σ² = (1 − ᾱ_prev)/(1 − ᾱ_t)·β.",
        ),
        Case(
            "the last step (ᾱ_prev = 1): no noise",
            (eps1, x1, 0.9, 1.0, z1),
            hint="on the last step (ᾱ_prev = 1) return the mean: no σ·z.",
        ),
        Case(
            "skipping steps, ᾱ_t = 0.05 → ᾱ_prev = 0.7, flat (3, 64)",
            (eps2, x2, 0.05, 0.7, z2),
            hint="use α = ᾱ_t/ᾱ_prev and β = 1 − α, not the per-step β of the schedule.",
        ),
        Case(
            "x̂_0 outside [-1, 1] must be clipped",
            (torch.full((1, 4), -0.5), x0_big, 0.3, 0.5, torch.zeros(1, 4)),
            hint="clip x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t to [-1, 1] before using it.",
        ),
    ]


check_ddpm_step = FunctionCheck(
    "ddpm_step",
    diffusion.ddpm_step,
    _ddpm_step_cases,
    hint="x̂_0 = clip((x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t); μ = (√ᾱ_prev·β·x̂_0 + √α·(1 − ᾱ_prev)·x_t)/(1 − ᾱ_t); "
    "x_prev = μ + σ·z (σ = 0 on the last step).",
    atol=1e-5,
)


def _ddim_step_cases() -> list[Case]:
    eps, x_t, _ = _step_inputs(4, 0.5)
    eps1, x1, _ = _step_inputs(5, 0.9)
    eps2, x2, _ = _step_inputs(6, 0.001, (3, 64))
    return [
        Case(
            "a middle step, ᾱ_t = 0.5 → ᾱ_prev = 0.6",
            (eps, x_t, 0.5, 0.6),
            hint="x_prev = √ᾱ_prev·x̂_0 + √(1 − ᾱ_prev)·ε̂: the clean guess, re-noised to the "
            "previous level with the *same* ε̂.",
        ),
        Case(
            "the last step (ᾱ_prev = 1) gives x̂_0",
            (eps1, x1, 0.9, 1.0),
            hint="with ᾱ_prev = 1 the step returns the (clipped) x̂_0.",
        ),
        Case(
            "a big jump from pure noise, ᾱ_t = 0.001 → ᾱ_prev = 0.4, flat (3, 64)",
            (eps2, x2, 0.001, 0.4),
            hint="use ᾱ_prev (not ᾱ_t) in both coefficients of the update.",
        ),
        Case(
            "x̂_0 outside [-1, 1] must be clipped",
            (torch.full((1, 4), -0.5), torch.full((1, 4), 0.9), 0.3, 0.5),
            hint="clip x̂_0 to [-1, 1] before re-noising it.",
        ),
    ]


check_ddim_step = FunctionCheck(
    "ddim_step",
    diffusion.ddim_step,
    _ddim_step_cases,
    hint="x̂_0 = clip((x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t); x_prev = √ᾱ_prev·x̂_0 + √(1 − ᾱ_prev)·ε̂.",
    atol=1e-5,
)


def _cfg_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    u, c = torch.randn(3, 1, 8, 8, generator=g), torch.randn(3, 1, 8, 8, generator=g)
    return [
        Case(
            "w = 3 (guided)",
            (u, c, 3.0),
            hint="ε̂ = ε_∅ + w·(ε_c − ε_∅): start from the unconditional prediction.",
        ),
        Case("w = 0 gives the unconditional prediction", (u, c, 0.0)),
        Case(
            "w = 1 gives the conditional prediction",
            (u, c, 1.0),
            hint="with w = 1 the result must be ε_c exactly (diffusers' convention).",
        ),
        Case(
            "one w per sample, a (3,) tensor [0, 1, 5]",
            (u, c, torch.tensor([0.0, 1.0, 5.0])),
            hint="reshape a (B,) guidance scale to (B, 1, 1, 1) so it scales each sample.",
        ),
    ]


check_classifier_free_guidance = FunctionCheck(
    "classifier_free_guidance",
    diffusion.classifier_free_guidance,
    _cfg_cases,
    hint="ε̂ = ε_∅ + w·(ε_c − ε_∅); w may be a float or a (B,) tensor.",
)
