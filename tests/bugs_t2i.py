"""Planted bugs for lesson 10's checks (denoise_latents, zero_module): see
tests/test_check_exercises.py. (LoRA's are in tests/bugs_lora.py.)"""

from __future__ import annotations

import torch
from planted import Bug, as_typed
from torch import nn

from labs import t2i
from labs.diffusion import classifier_free_guidance

# --------------------------------------------------------------------------- denoise_latents


def _batched(unet, t, latents, text, uncond):
    timestep = torch.full((2 * len(latents),), t, dtype=torch.long)
    return unet(torch.cat([latents, latents]), timestep, torch.cat([uncond, text])).chunk(2)


def _loop_two_calls(unet, scheduler, latents, text, uncond, w):
    for t in scheduler.timesteps:
        timestep = torch.full((len(latents),), int(t), dtype=torch.long)
        e_u, e_c = unet(latents, timestep, uncond), unet(latents, timestep, text)
        latents = scheduler.step(e_u + w * (e_c - e_u), t, latents, use_clipped_model_output=True)
    return latents


def _loop_no_guidance(unet, scheduler, latents, text, uncond, w):
    for t in scheduler.timesteps:
        _, e_c = _batched(unet, t, latents, text, uncond)
        latents = scheduler.step(e_c, t, latents, use_clipped_model_output=True)
    return latents


def _loop_swapped_chunks(unet, scheduler, latents, text, uncond, w):
    for t in scheduler.timesteps:
        e_c, e_u = _batched(unet, t, latents, text, uncond)  # uncond went first
        latents = scheduler.step(e_u + w * (e_c - e_u), t, latents, use_clipped_model_output=True)
    return latents


def _loop_missing_subtraction(unet, scheduler, latents, text, uncond, w):
    for t in scheduler.timesteps:
        e_u, e_c = _batched(unet, t, latents, text, uncond)
        latents = scheduler.step(e_u + w * e_c, t, latents, use_clipped_model_output=True)
    return latents


def _loop_guides_from_text(unet, scheduler, latents, text, uncond, w):
    for t in scheduler.timesteps:
        e_u, e_c = _batched(unet, t, latents, text, uncond)
        latents = scheduler.step(e_c + w * (e_c - e_u), t, latents, use_clipped_model_output=True)
    return latents


def _loop_ascending(unet, scheduler, latents, text, uncond, w):
    for t in scheduler.timesteps.flip(0):
        e_u, e_c = _batched(unet, t, latents, text, uncond)
        latents = scheduler.step(
            classifier_free_guidance(e_u, e_c, w), t, latents, use_clipped_model_output=True
        )
    return latents


def _loop_skips_first(unet, scheduler, latents, text, uncond, w):
    for t in scheduler.timesteps[1:]:
        e_u, e_c = _batched(unet, t, latents, text, uncond)
        latents = scheduler.step(
            classifier_free_guidance(e_u, e_c, w), t, latents, use_clipped_model_output=True
        )
    return latents


def _loop_raw_eps(unet, scheduler, latents, text, uncond, w):
    for t in scheduler.timesteps:
        e_u, e_c = _batched(unet, t, latents, text, uncond)
        latents = scheduler.step(classifier_free_guidance(e_u, e_c, w), t, latents)
    return latents


def _loop_returns_noise(unet, scheduler, latents, text, uncond, w):
    for t in scheduler.timesteps:
        e_u, e_c = _batched(unet, t, latents, text, uncond)
        eps = classifier_free_guidance(e_u, e_c, w)
        latents = scheduler.step(eps, t, latents, use_clipped_model_output=True)
    return eps


# --------------------------------------------------------------------------- zero_module


def _zero_weight_only(module):
    with torch.no_grad():
        for m in module.modules():
            if hasattr(m, "weight") and m.weight is not None:
                m.weight.zero_()
    return module


def _zero_new_module(module):
    fresh = type(module)(module.in_features, module.out_features)
    nn.init.zeros_(fresh.weight)
    nn.init.zeros_(fresh.bias)
    return fresh


def _zero_frozen(module):
    for p in module.parameters():
        nn.init.zeros_(p)
        p.requires_grad_(False)
    return module


def _zero_rebinds(module):
    for p in module.parameters():
        p = p * 0  # the learner's mistake: rebinds the name, changes nothing
    return module


def _zero_linear_only(module):
    with torch.no_grad():
        module.weight.zero_()
        module.bias.zero_()
    return module


def _zero_tiny_random(module):
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(1e-4)
    return module


def _zero_with_data(module):
    for p in module.parameters():
        p.data = torch.zeros_like(p)
    return module


PLANTED_BUGS: dict[str, list[Bug]] = {
    "denoise_latents": [
        ("no guidance: the text prediction only", _loop_no_guidance, "case 1"),
        ("the two halves of the batch swapped", _loop_swapped_chunks, "case 1"),
        ("ε̂_∅ + w·ε̂_text (no subtraction)", _loop_missing_subtraction, "case 1"),
        ("guides from the text prediction", _loop_guides_from_text, "case 1"),
        ("timesteps in ascending order", _loop_ascending, "case 1"),
        ("skips the first timestep", _loop_skips_first, "case 1"),
        ("steps with the raw guided ε̂", _loop_raw_eps, "use_clipped_model_output"),
        ("returns the noise, not the latents", _loop_returns_noise, "case 1"),
    ],
    "zero_module": [
        ("zeroes the weights but not the biases", _zero_weight_only, "parameters'][1]"),
        ("returns a new module", _zero_new_module, "returns the module it was given"),
        ("freezes the zeroed parameters", _zero_frozen, "output['requires_grad']"),
        ("rebinds the loop variable", _zero_rebinds, "parameters"),
        ("assumes a single Linear layer", _zero_linear_only, "case 2"),
        ("scales by 1e-4 instead of zeroing", _zero_tiny_random, "parameters"),
    ],
}

CORRECT_IMPLEMENTATIONS = {
    "denoise_latents": [
        ("the reference as typed", as_typed(t2i.denoise_latents)),
        ("two unet calls instead of one batch", _loop_two_calls),
    ],
    "zero_module": [
        ("the reference as typed", as_typed(t2i.zero_module)),
        ("p.data = zeros_like", _zero_with_data),
    ],
}
