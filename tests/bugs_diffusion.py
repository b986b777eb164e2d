"""Planted bugs for lesson 09's checks (add_noise, ddpm_step, ddim_step,
classifier_free_guidance): see tests/test_check_exercises.py."""

from __future__ import annotations

import math

import torch
from planted import Bug, as_typed

from labs import diffusion


def _col(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return values.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


# --------------------------------------------------------------------------- add_noise


def _add_noise_no_sqrt(x0, noise, t, alphas_cumprod):
    a = _col(alphas_cumprod[t], x0)
    return a * x0 + (1 - a) * noise


def _add_noise_one_minus_sqrt(x0, noise, t, alphas_cumprod):
    a = _col(alphas_cumprod[t], x0)
    return a.sqrt() * x0 + (1 - a.sqrt()) * noise


def _add_noise_swapped(x0, noise, t, alphas_cumprod):
    a = _col(alphas_cumprod[t], x0)
    return a.sqrt() * noise + (1 - a).sqrt() * x0


def _add_noise_no_reshape(x0, noise, t, alphas_cumprod):
    a = alphas_cumprod[t]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def _add_noise_off_by_one(x0, noise, t, alphas_cumprod):
    a = _col(alphas_cumprod[(t - 1).clamp(min=0)], x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def _add_noise_first_t_only(x0, noise, t, alphas_cumprod):
    a = alphas_cumprod[t[0]]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def _add_noise_4d_only(x0, noise, t, alphas_cumprod):
    a = alphas_cumprod[t].view(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


# --------------------------------------------------------------------------- ddpm_step


def _x0(eps, x_t, alpha_bar, clip=True):
    x0 = (x_t - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)
    return x0.clamp(-1, 1) if clip else x0


def _ddpm(eps, x_t, ab, ab_prev, z, *, clip=True, var="posterior", sqrt_a=True):
    x0 = _x0(eps, x_t, ab, clip)
    alpha = ab / ab_prev
    beta = 1 - alpha
    coef_xt = (math.sqrt(alpha) if sqrt_a else alpha) * (1 - ab_prev) / (1 - ab)
    mean = math.sqrt(ab_prev) * beta / (1 - ab) * x0 + coef_xt * x_t
    if ab_prev >= 1.0:
        return mean
    variance = {"posterior": (1 - ab_prev) / (1 - ab) * beta, "beta": beta}[var]
    return mean + math.sqrt(variance) * z


def _ddpm_no_clip(eps, x_t, ab, ab_prev, z):
    return _ddpm(eps, x_t, ab, ab_prev, z, clip=False)


def _ddpm_alpha_is_alpha_bar(eps, x_t, ab, ab_prev, z):
    # α_t = ᾱ_t (the cumulative product) instead of ᾱ_t / ᾱ_prev
    x0 = _x0(eps, x_t, ab)
    mean = (math.sqrt(ab_prev) * (1 - ab) * x0 + math.sqrt(ab) * (1 - ab_prev) * x_t) / (1 - ab)
    if ab_prev >= 1.0:
        return mean
    return mean + math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab)) * z


def _ddpm_beta_variance(eps, x_t, ab, ab_prev, z):
    return _ddpm(eps, x_t, ab, ab_prev, z, var="beta")


def _ddpm_alpha_not_sqrt(eps, x_t, ab, ab_prev, z):
    return _ddpm(eps, x_t, ab, ab_prev, z, sqrt_a=False)


def _ddpm_variance_not_sqrt(eps, x_t, ab, ab_prev, z):
    mean = _ddpm(eps, x_t, ab, ab_prev, torch.zeros_like(z))
    if ab_prev >= 1.0:
        return mean
    beta = 1 - ab / ab_prev
    return mean + (1 - ab_prev) / (1 - ab) * beta * z


def _ddpm_eps_formula(eps, x_t, ab, ab_prev, z):
    # Ho et al.'s ε-form with the adjacent-step α, ignoring clipping: differs when x̂_0 clips
    alpha = ab / ab_prev
    mean = (x_t - (1 - alpha) / math.sqrt(1 - ab) * eps) / math.sqrt(alpha)
    if ab_prev >= 1.0:
        return mean
    return mean + math.sqrt((1 - ab_prev) / (1 - ab) * (1 - alpha)) * z


def _ddpm_no_noise(eps, x_t, ab, ab_prev, z):
    return _ddpm(eps, x_t, ab, ab_prev, torch.zeros_like(z))


# --------------------------------------------------------------------------- ddim_step


def _ddim_no_clip(eps, x_t, ab, ab_prev):
    return math.sqrt(ab_prev) * _x0(eps, x_t, ab, False) + math.sqrt(1 - ab_prev) * eps


def _ddim_current_alpha_in_direction(eps, x_t, ab, ab_prev):
    return math.sqrt(ab_prev) * _x0(eps, x_t, ab) + math.sqrt(1 - ab) * eps


def _ddim_no_sqrt(eps, x_t, ab, ab_prev):
    return ab_prev * _x0(eps, x_t, ab) + (1 - ab_prev) * eps


def _ddim_returns_x0(eps, x_t, ab, ab_prev):
    return _x0(eps, x_t, ab)


def _ddim_x_t_not_x0(eps, x_t, ab, ab_prev):
    return math.sqrt(ab_prev) * x_t + math.sqrt(1 - ab_prev) * eps


def _ddim_fresh_noise(eps, x_t, ab, ab_prev):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(eps.shape, generator=g)
    return math.sqrt(ab_prev) * _x0(eps, x_t, ab) + math.sqrt(1 - ab_prev) * z


# --------------------------------------------------------------------------- CFG


def _cfg_swapped(eps_uncond, eps_cond, w):
    return diffusion.classifier_free_guidance(eps_cond, eps_uncond, w)


def _cfg_from_cond(eps_uncond, eps_cond, w):
    return eps_cond + w * (eps_cond - eps_uncond)


def _cfg_no_base(eps_uncond, eps_cond, w):
    return w * (eps_cond - eps_uncond)


def _cfg_no_reshape(eps_uncond, eps_cond, w):
    return eps_uncond + w * (eps_cond - eps_uncond)


def _cfg_mix(eps_uncond, eps_cond, w):
    return (eps_uncond + w * eps_cond) / (1 + w) if not torch.is_tensor(w) else eps_cond


def _cfg_cond_only(eps_uncond, eps_cond, w):
    return eps_cond


PLANTED_BUGS: dict[str, list[Bug]] = {
    "add_noise": [
        ("ᾱ and 1 − ᾱ without square roots", _add_noise_no_sqrt, "(one image at t = 500"),
        ("noise coefficient 1 − √ᾱ", _add_noise_one_minus_sqrt, "(one image at t = 500"),
        ("x0 and noise swapped", _add_noise_swapped, "(one image at t = 500"),
        (
            "no per-sample reshape: (B,) broadcasts over the last axis",
            _add_noise_no_reshape,
            "(a batch of 3 images (3, 1, 8, 8), one t per image) raised RuntimeError",
        ),
        ("indexes ᾱ[t − 1]", _add_noise_off_by_one, "(one image at t = 500"),
        ("one t for the whole batch", _add_noise_first_t_only, "(a batch of 3 images"),
        ("reshape only works for images", _add_noise_4d_only, "(flat samples (3, 64)"),
    ],
    "ddpm_step": [
        ("x̂_0 not clipped", _ddpm_no_clip, "must be clipped)"),
        ("α_t taken as ᾱ_t, not ᾱ_t/ᾱ_prev", _ddpm_alpha_is_alpha_bar, "(a middle step"),
        ("β as the variance instead of the posterior β̃", _ddpm_beta_variance, "(a middle step"),
        ("α instead of √α in the x_t coefficient", _ddpm_alpha_not_sqrt, "(a middle step"),
        ("σ² · z instead of σ · z", _ddpm_variance_not_sqrt, "(a middle step"),
        ("the ε-form of the mean ignores clipping", _ddpm_eps_formula, "must be clipped)"),
        ("no noise at all (that is DDIM's mean, not DDPM)", _ddpm_no_noise, "(a middle step"),
    ],
    "ddim_step": [
        ("x̂_0 not clipped", _ddim_no_clip, "must be clipped)"),
        ("√(1 − ᾱ_t) instead of √(1 − ᾱ_prev)", _ddim_current_alpha_in_direction, "(a middle step"),
        ("coefficients without square roots", _ddim_no_sqrt, "(a middle step"),
        ("returns x̂_0 (jumps straight to the end)", _ddim_returns_x0, "(a middle step"),
        ("re-noises x_t instead of x̂_0", _ddim_x_t_not_x0, "(a middle step"),
        ("fresh noise instead of ε̂ (that is not η = 0)", _ddim_fresh_noise, "(a middle step"),
    ],
    "classifier_free_guidance": [
        ("ε_c and ε_∅ swapped", _cfg_swapped, "(w = 3 (guided))"),
        ("starts from ε_c ((1 + w) convention)", _cfg_from_cond, "(w = 3 (guided))"),
        ("forgets the base ε_∅", _cfg_no_base, "(w = 3 (guided))"),
        (
            "a (B,) scale not reshaped",
            _cfg_no_reshape,
            "(one w per sample, a (3,) tensor [0, 1, 5]) raised RuntimeError",
        ),
        ("a weighted average, not an extrapolation", _cfg_mix, "(w = 3 (guided))"),
        ("ignores ε_∅ and w", _cfg_cond_only, "(w = 3 (guided))"),
    ],
}


CORRECT_IMPLEMENTATIONS: dict[str, list[tuple[str, object]]] = {
    "add_noise": [
        ("labs.diffusion.add_noise as typed", as_typed(diffusion.add_noise)),
        (
            "via DDPMScheduler.add_noise semantics, written with torch.where-free indexing",
            lambda x0, noise, t, ac: (
                ac[t].sqrt().view(-1, *[1] * (x0.ndim - 1)) * x0
                + (1 - ac[t]).sqrt().view(-1, *[1] * (x0.ndim - 1)) * noise
            ),
        ),
    ],
    "ddpm_step": [
        ("labs.diffusion.ddpm_step as typed", as_typed(diffusion.ddpm_step)),
        ("written with math.sqrt everywhere", lambda e, x, a, ap, z: _ddpm(e, x, a, ap, z)),
    ],
    "ddim_step": [
        ("labs.diffusion.ddim_step as typed", as_typed(diffusion.ddim_step)),
        (
            "with torch.clamp and float powers",
            lambda e, x, a, ap: (
                ap**0.5 * torch.clamp((x - (1 - a) ** 0.5 * e) / a**0.5, -1, 1)
                + (1 - ap) ** 0.5 * e
            ),
        ),
    ],
    "classifier_free_guidance": [
        (
            "labs.diffusion.classifier_free_guidance as typed",
            as_typed(diffusion.classifier_free_guidance),
        ),
        (
            "w·ε_c + (1 − w)·ε_∅ with a reshaped w",
            lambda u, c, w: (
                (w.view(-1, *[1] * (c.ndim - 1)) if torch.is_tensor(w) else w) * c
                + (1 - (w.view(-1, *[1] * (c.ndim - 1)) if torch.is_tensor(w) else w)) * u
            ),
        ),
    ],
}
