"""Checks for lesson 10 (text-to-image): the classifier-free-guided sampling loop and
ControlNet's zero-initialised connection. (The LoRA checks live in labs.checks.lora.)"""

from __future__ import annotations

import torch
from torch import nn

from labs import t2i
from labs.checks.core import Case, FunctionCheck
from labs.diffusion import DDIMScheduler


class _FakeUNet(nn.Module):
    """A tiny deterministic stand-in for the denoiser: ε̂ depends on the sample, the
    timestep and the text embedding, so every mistake in the loop changes the result."""

    def __init__(self, shape: tuple[int, ...], dim: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        numel = int(torch.tensor(shape).prod())
        self.shape = shape
        self.w_x = torch.randn(numel, numel, generator=g) / numel**0.5
        self.w_text = torch.randn(dim, numel, generator=g)

    def forward(self, sample, timestep, encoder_hidden_states):
        flat = sample.flatten(1)
        t = timestep.float().view(-1, 1) / 1000
        out = 0.5 * flat @ self.w_x + encoder_hidden_states @ self.w_text + t
        return out.view_as(sample)


def _loop_case(name, *, steps, w, batch=2, shape=(2, 2, 2), seed=0, hint="", clip=4.0):
    g = torch.Generator().manual_seed(seed)
    dim = 3
    unet = _FakeUNet(shape, dim, seed)
    latents = torch.randn(batch, *shape, generator=g)
    text = torch.randn(batch, dim, generator=g)
    uncond = torch.randn(1, dim, generator=g).expand(batch, dim).clone()

    def call(impl, unet, latents, text, uncond, w):
        scheduler = DDIMScheduler(clip_sample_range=clip)
        scheduler.set_timesteps(steps)
        return impl(unet, scheduler, latents, text, uncond, w)

    return Case(name, (unet, latents, text, uncond, w), hint=hint, call=call)


def _loop_cases() -> list[Case]:
    return [
        _loop_case(
            "w = 3, 4 DDIM steps, a batch of 2",
            steps=4,
            w=3.0,
            hint="per step: ε̂_∅, ε̂_text = unet(cat[x, x], t, cat[uncond, text]).chunk(2); "
            "ε̂ = ε̂_∅ + w·(ε̂_text − ε̂_∅); x = scheduler.step(ε̂, t, x, use_clipped_model_output=True).",
        ),
        _loop_case(
            "w = 1: plain text-conditional sampling",
            steps=3,
            w=1.0,
            seed=1,
            hint="with w = 1 the guided ε̂ is the text-conditional one.",
        ),
        _loop_case(
            "w = 0: unconditional sampling",
            steps=3,
            w=0.0,
            seed=2,
            hint="with w = 0 the guided ε̂ is the unconditional one: uncond_embeddings "
            "go first in the batch, so the first chunk is ε̂_∅.",
        ),
        _loop_case(
            "w = 5, 10 steps, a batch of 3 (predictions get clipped)",
            steps=10,
            w=5.0,
            batch=3,
            seed=3,
            clip=1.0,
            hint="visit every t in scheduler.timesteps, in order (from noisy to clean), and "
            "pass use_clipped_model_output=True to step().",
        ),
    ]


check_denoise_latents = FunctionCheck(
    "denoise_latents",
    t2i.denoise_latents,
    _loop_cases,
    hint="for t in scheduler.timesteps: one batched unet call on cat[x, x] with "
    "cat[uncond, text]; guide; step. Return the final latents.",
    atol=1e-5,
)


def _zero_case(name, make, hint=""):
    def call(impl, module):
        x = torch.randn(4, *module.in_shape, generator=torch.Generator().manual_seed(0))
        returned = impl(module)
        out = returned(x)
        # the gradient a first training step would see: ∂(Σ out · r)/∂params
        r = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        params = list(returned.parameters())
        trainable = [p for p in params if p.requires_grad]
        grads = [None] * len(params)
        if trainable and out.requires_grad:
            found = iter(torch.autograd.grad((out * r).sum(), trainable, allow_unused=True))
            grads = [next(found) if p.requires_grad else None for p in params]
        return {
            "returns the module it was given": torch.tensor(returned is module),
            "parameters": [p.detach() for p in params],
            "requires_grad": torch.tensor([p.requires_grad for p in params]),
            "output": out.detach(),
            "weight gradients are not zero": torch.tensor(
                [g is not None and bool(g.abs().sum() > 0) for g in grads[:1]]
            ),
        }

    module = make()
    return Case(name, (module,), hint=hint, call=call)


def _linear() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Linear(6, 5)
    m.in_shape = (6,)
    return m


def _conv_stack() -> nn.Module:
    torch.manual_seed(1)
    m = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.SiLU(), nn.Conv2d(3, 2, 1))
    m.in_shape = (2, 4, 4)
    return m


def _zero_cases() -> list[Case]:
    return [
        _zero_case(
            "an nn.Linear(6, 5)",
            _linear,
            hint="zero every parameter in place (weight AND bias) with torch.no_grad() or "
            "nn.init.zeros_, keep requires_grad, and return the same module.",
        ),
        _zero_case(
            "a small conv stack (nn.Sequential of Conv2d, SiLU, Conv2d)",
            _conv_stack,
            hint="loop over module.parameters(): a Sequential has no .weight of its own.",
        ),
    ]


check_zero_module = FunctionCheck(
    "zero_module",
    t2i.zero_module,
    _zero_cases,
    hint="for p in module.parameters(): nn.init.zeros_(p); return module.",
    atol=0.0,
    rtol=0.0,
)
