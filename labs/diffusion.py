"""Lessons 09–10: diffusion schedulers, kept apart from models and pipelines (diffusers style).

A scheduler owns the noise schedule and the update rules, nothing else:

- ``add_noise(x0, noise, t)``: the forward process in closed form,
  :math:`x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + \\sqrt{1-\\bar\\alpha_t}\\,\\varepsilon`;
- ``set_timesteps(n)``: choose the ``n`` timesteps a sampler visits;
- ``step(eps, t, x_t)``: one reverse update ``x_t → x_prev`` from the model's noise
  prediction ε (DDPM: ancestral, stochastic; DDIM: deterministic when ``eta=0``).

A sampling loop reads like diffusers::

    scheduler = DDIMScheduler()
    scheduler.set_timesteps(50)
    x = torch.randn(B, C, H, W, generator=g)
    for t in scheduler.timesteps:
        eps = model(x, t)
        x = scheduler.step(eps, t, x)

Conventions. Timesteps are integer indices ``t ∈ [0, T)`` into the schedule
(``T = num_train_timesteps``); index ``t`` is step ``t + 1`` of the papers, and
"before step 0" is the clean image, :math:`\\bar\\alpha_{-1} = 1`. Samples have
shape ``(B, ...)`` (e.g. ``(B, C, H, W)``); per-sample quantities of shape ``(B,)``
broadcast over the trailing dimensions. Schedules are computed in float64 and exposed
as float32 (``betas``, ``alphas``, ``alphas_cumprod``, as in diffusers); the update
coefficients use the float64 values, since β = 1 − ᾱ_t/ᾱ_prev computed from float32 ᾱ
would lose three digits where β ≈ 1e-4. ``set_timesteps(n)`` spaces the steps evenly,
*starting* at ``T - 1`` ("trailing" spacing), so every sampler starts from pure noise.

Also here: ``betas_for`` (linear, cosine), ``snr(t)``, ``predict_x0`` (the clean image
an ε-prediction implies; pictures of the denoising trajectory),
``DDPMScheduler.posterior_variance`` and ``classifier_free_guidance``.

Below the schedulers, and kept apart from them (lesson 09): the step rules written as
plain functions (``add_noise``, ``ddpm_step``, ``ddim_step``: the exercises' references),
a procedural 8×8 digit data set (``make_digits``), a small noise-prediction network
(``Denoiser``: an MLP with a timestep embedding, a class embedding with a null class for
classifier-free guidance, and a time-dependent per-pixel skip gate), ``train_denoiser``,
the sampling pipeline ``sample``, and the independent judge (``DigitClassifier``,
``train_classifier``, ``judge``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DDIMScheduler",
    "DDPMScheduler",
    "Denoiser",
    "DenoiserConfig",
    "DigitClassifier",
    "add_noise",
    "betas_for",
    "classifier_free_guidance",
    "ddim_step",
    "ddpm_step",
    "judge",
    "make_digits",
    "sample",
    "timed_sample",
    "timestep_embedding",
    "train_classifier",
    "train_denoiser",
]

SCHEDULES = ("linear", "cosine")


def betas_for(schedule: str, num_train_timesteps: int) -> torch.Tensor:
    """The noise schedule β_1 … β_T as a ``(T,)`` float32 tensor.

    - ``"linear"`` (Ho et al. 2020): β from 1e-4 to 0.02 for T = 1000, both scaled by
      1000 / T for other T (as in Nichol & Dhariwal's code) so the total noise matches.
    - ``"cosine"`` (Nichol & Dhariwal 2021):
      :math:`\\bar\\alpha(t) = f(t)/f(0)`, :math:`f(t) = \\cos^2\\big(\\tfrac{t/T + s}{1 + s}\\tfrac{\\pi}{2}\\big)`,
      s = 0.008, and :math:`\\beta_t = 1 - \\bar\\alpha(t)/\\bar\\alpha(t-1)` clipped to
      at most 0.999 (only the last step or two reach the clip).
    """
    return _betas64(schedule, num_train_timesteps).float()


def _betas64(schedule: str, num_train_timesteps: int) -> torch.Tensor:
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown beta schedule {schedule!r}: use one of {list(SCHEDULES)}")
    if not isinstance(num_train_timesteps, int) or num_train_timesteps < 2:
        raise ValueError(
            f"num_train_timesteps must be an int >= 2 (1000 is usual), got {num_train_timesteps!r}"
        )
    T = num_train_timesteps
    if schedule == "linear":
        scale = 1000 / T
        return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64)
    s = 0.008
    t = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)


def classifier_free_guidance(
    eps_uncond: torch.Tensor, eps_cond: torch.Tensor, guidance_scale: float | torch.Tensor
) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022):
    :math:`\\hat\\varepsilon = \\varepsilon_\\varnothing + w\\,(\\varepsilon_c - \\varepsilon_\\varnothing)`.

    ``eps_uncond``, ``eps_cond``: (B, ...) noise predictions without and with the
    condition. ``guidance_scale`` w: a float, or a (B,) tensor (one scale per sample).
    w = 0 is unconditional, w = 1 conditional (diffusers' convention), w > 1
    extrapolates: prompts obeyed more, less diversity.
    """
    if eps_uncond.shape != eps_cond.shape:
        raise ValueError(
            f"eps_uncond and eps_cond must have the same shape, got {tuple(eps_uncond.shape)} "
            f"and {tuple(eps_cond.shape)}: run the model on the same batch with and without "
            "the condition"
        )
    if isinstance(guidance_scale, torch.Tensor) and guidance_scale.ndim > 0:
        if guidance_scale.shape != eps_cond.shape[:1]:
            raise ValueError(
                f"a tensor guidance_scale must have shape (B,) = {tuple(eps_cond.shape[:1])}, "
                f"got {tuple(guidance_scale.shape)}"
            )
        guidance_scale = _per_sample(guidance_scale.to(eps_cond), eps_cond.ndim)
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)


def _per_sample(values: torch.Tensor, ndim: int) -> torch.Tensor:
    """(B,) → (B, 1, …, 1) with ``ndim`` dimensions, to broadcast over a (B, ...) sample."""
    return values.reshape(-1, *([1] * (ndim - 1)))


class _Scheduler:
    """The schedule and the parts DDPM and DDIM share (forward process, timesteps)."""

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "cosine",
        clip_sample: bool = True,
        clip_sample_range: float = 1.0,
    ) -> None:
        if clip_sample_range <= 0:
            raise ValueError(f"clip_sample_range must be > 0, got {clip_sample_range}")
        self.num_train_timesteps = num_train_timesteps
        self.beta_schedule = beta_schedule
        self.clip_sample = clip_sample
        self.clip_sample_range = clip_sample_range
        betas64 = _betas64(beta_schedule, num_train_timesteps)
        # float64 copy for the update coefficients: β = 1 - ᾱ_t/ᾱ_prev from float32 ᾱ
        # would lose 3 digits where β ~ 1e-4
        self._alphas_cumprod64 = torch.cumprod(1 - betas64, dim=0)
        self.betas = betas64.float()  # (T,)
        self.alphas = (1 - betas64).float()  # (T,)
        self.alphas_cumprod = self._alphas_cumprod64.float()  # (T,) ᾱ_t
        self.set_timesteps(num_train_timesteps)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_train_timesteps={self.num_train_timesteps}, "
            f"beta_schedule={self.beta_schedule!r}, clip_sample={self.clip_sample}, "
            f"num_inference_steps={self.num_inference_steps})"
        )

    # ------------------------------------------------------------------ timesteps

    def _check_timesteps(self, timesteps: torch.Tensor | int) -> torch.Tensor:
        t = torch.as_tensor(timesteps)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(
                f"timesteps must be integers (torch.long) in [0, {self.num_train_timesteps}), "
                f"got dtype {t.dtype}: use torch.randint(0, T, (B,)) or scheduler.timesteps"
            )
        if t.numel() and (t.min() < 0 or t.max() >= self.num_train_timesteps):
            raise ValueError(
                f"timesteps must lie in [0, {self.num_train_timesteps}) (num_train_timesteps), "
                f"got values from {t.min().item()} to {t.max().item()}"
            )
        return t.long()

    def set_timesteps(self, num_inference_steps: int) -> None:
        """Choose the ``num_inference_steps`` timesteps a sampler visits, stored in
        ``self.timesteps`` ((n,) long, descending): evenly spaced, from ``T - 1`` down
        ("trailing" spacing), e.g. T = 1000, n = 4 → [999, 749, 499, 249]."""
        T = self.num_train_timesteps
        if not isinstance(num_inference_steps, int) or not 1 <= num_inference_steps <= T:
            raise ValueError(
                f"num_inference_steps must be an int in [1, {T}] (num_train_timesteps), "
                f"got {num_inference_steps!r}"
            )
        n = num_inference_steps
        self.num_inference_steps = n
        steps = torch.tensor([round(T - i * T / n) - 1 for i in range(n)], dtype=torch.long)
        self.timesteps = steps
        self._prev = dict(zip(steps.tolist(), [*steps.tolist()[1:], -1], strict=True))

    def previous_timestep(self, timestep: torch.Tensor | int) -> int:
        """The timestep after ``timestep`` in ``self.timesteps`` (-1 after the last one:
        the clean image)."""
        t = self._check_timesteps(timestep)
        if t.numel() != 1:
            raise ValueError(
                f"step() takes one timestep for the whole batch, got shape {tuple(t.shape)}"
            )
        t_int = int(t.item())
        if t_int not in self._prev:
            raise ValueError(
                f"timestep {t_int} is not one of this scheduler's {self.num_inference_steps} "
                "timesteps: call set_timesteps(n) and loop over scheduler.timesteps"
            )
        return self._prev[t_int]

    def _alpha_bars(self, t: int, prev: int) -> tuple[float, float]:
        """(ᾱ_t, ᾱ_prev) as Python floats, ᾱ_{-1} = 1."""
        alpha_bar = self._alphas_cumprod64[t].item()
        alpha_bar_prev = self._alphas_cumprod64[prev].item() if prev >= 0 else 1.0
        return alpha_bar, alpha_bar_prev

    # ------------------------------------------------------------------ forward process

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor | int
    ) -> torch.Tensor:
        """Sample q(x_t | x_0) in closed form:
        :math:`x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + \\sqrt{1-\\bar\\alpha_t}\\,\\varepsilon`.

        original_samples x0 and noise ε: (B, ...) of the same shape; timesteps: (B,)
        integers in [0, T) (one per sample) or a single int. Returns x_t, (B, ...).
        """
        x0 = original_samples
        if noise.shape != x0.shape:
            raise ValueError(
                f"noise must have the shape of original_samples {tuple(x0.shape)}, got "
                f"{tuple(noise.shape)}: use torch.randn_like(x0)"
            )
        t = self._check_timesteps(timesteps)
        if t.ndim > 1 or (t.ndim == 1 and x0.ndim >= 1 and len(t) not in (1, x0.shape[0])):
            raise ValueError(
                f"timesteps must be a single int or shape (B,) = ({x0.shape[0]},) for samples "
                f"of shape {tuple(x0.shape)}, got shape {tuple(t.shape)}"
            )
        # index on the CPU, cast, then move: float64 cannot go to every device (MPS)
        alpha_bar = self._alphas_cumprod64[t.cpu()].to(x0.dtype).to(x0.device)
        alpha_bar = _per_sample(alpha_bar, x0.ndim) if t.ndim == 1 else alpha_bar
        return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise

    def snr(self, timesteps: torch.Tensor | int) -> torch.Tensor:
        """Signal-to-noise ratio :math:`\\bar\\alpha_t / (1 - \\bar\\alpha_t)` at
        ``timesteps`` (any shape of integers in [0, T)), same shape, float32."""
        alpha_bar = self._alphas_cumprod64[self._check_timesteps(timesteps)]
        return (alpha_bar / (1 - alpha_bar)).float()

    def predict_x0(
        self, model_output: torch.Tensor, timestep: torch.Tensor | int, sample: torch.Tensor
    ) -> torch.Tensor:
        """The clean image the noise prediction implies (clipped when ``clip_sample``):
        :math:`\\hat x_0 = (x_t - \\sqrt{1-\\bar\\alpha_t}\\,\\hat\\varepsilon)/\\sqrt{\\bar\\alpha_t}`.
        model_output ε̂ and sample x_t: (B, ...). Returns (B, ...)."""
        if model_output.shape != sample.shape:
            raise ValueError(
                f"model_output (the predicted noise) must have the shape of sample "
                f"{tuple(sample.shape)}, got {tuple(model_output.shape)}"
            )
        t = self._check_timesteps(timestep)
        if t.numel() != 1:
            raise ValueError(
                f"step() takes one timestep for the whole batch, got shape {tuple(t.shape)}"
            )
        alpha_bar = self._alphas_cumprod64[int(t.item())].item()
        x0 = (sample - math.sqrt(1 - alpha_bar) * model_output) / math.sqrt(alpha_bar)
        if self.clip_sample:
            x0 = x0.clamp(-self.clip_sample_range, self.clip_sample_range)
        return x0

    @staticmethod
    def _noise_like(
        sample: torch.Tensor,
        generator: torch.Generator | None,
        variance_noise: torch.Tensor | None,
    ) -> torch.Tensor:
        if variance_noise is not None:
            if variance_noise.shape != sample.shape:
                raise ValueError(
                    f"variance_noise must have the shape of sample {tuple(sample.shape)}, got "
                    f"{tuple(variance_noise.shape)}"
                )
            return variance_noise.to(sample)
        device = generator.device if generator is not None else sample.device
        z = torch.randn(sample.shape, generator=generator, device=device, dtype=sample.dtype)
        return z.to(sample.device)


class DDPMScheduler(_Scheduler):
    """DDPM (Ho et al. 2020): ancestral sampling from the posterior q(x_prev | x_t, x̂_0).

    ``DDPMScheduler(num_train_timesteps=1000, beta_schedule="cosine", clip_sample=True)``.
    Attributes: ``betas``, ``alphas``, ``alphas_cumprod`` (ᾱ), each (T,) float32;
    ``timesteps`` ((n,) long, descending; all T until ``set_timesteps``).

    ``clip_sample`` clips the predicted x̂_0 to ``[-clip_sample_range, clip_sample_range]``
    before it is used: with the cosine schedule ᾱ_{T-1} ≈ 2e-9, so early on x̂_0 = (x_t −
    √(1−ᾱ)ε̂)/√ᾱ divides by ~5e-5 and, unclipped, tiny errors in ε̂ blow samples up.
    """

    def posterior_variance(self, timestep: torch.Tensor | int) -> float:
        """σ_t² of the step from ``timestep`` to its previous timestep:
        :math:`\\tilde\\beta = \\frac{1-\\bar\\alpha_{prev}}{1-\\bar\\alpha_t}\\,(1 - \\bar\\alpha_t/\\bar\\alpha_{prev})`
        (0 for the last step)."""
        t = int(self._check_timesteps(timestep).item())
        alpha_bar, alpha_bar_prev = self._alpha_bars(t, self.previous_timestep(t))
        return (1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)

    def step(
        self,
        model_output: torch.Tensor,
        timestep: torch.Tensor | int,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        variance_noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One ancestral step x_t → x_prev (prev = the next entry of ``timesteps``).

        With :math:`\\alpha = \\bar\\alpha_t/\\bar\\alpha_{prev}` and
        :math:`\\beta = 1 - \\alpha` (the usual α_t, β_t when the steps are adjacent):

        .. math::
            \\hat x_0 = \\frac{x_t - \\sqrt{1-\\bar\\alpha_t}\\,\\hat\\varepsilon}{\\sqrt{\\bar\\alpha_t}}
            \\text{ (clipped)},\\quad
            \\mu = \\frac{\\sqrt{\\bar\\alpha_{prev}}\\,\\beta}{1-\\bar\\alpha_t}\\hat x_0
                 + \\frac{\\sqrt{\\alpha}\\,(1-\\bar\\alpha_{prev})}{1-\\bar\\alpha_t} x_t,\\quad
            x_{prev} = \\mu + \\sigma z,\\ \\sigma^2 = \\tilde\\beta

        and no noise on the last step. model_output ε̂, sample x_t: (B, ...);
        ``timestep``: one int for the batch; z ~ N(0, I) from ``generator`` (or pass
        ``variance_noise``, (B, ...), to fix it). Returns x_prev, (B, ...).
        """
        x0 = self.predict_x0(model_output, timestep, sample)
        t = int(self._check_timesteps(timestep).item())
        prev = self.previous_timestep(t)
        alpha_bar, alpha_bar_prev = self._alpha_bars(t, prev)
        alpha = alpha_bar / alpha_bar_prev
        beta = 1 - alpha
        coef_x0 = math.sqrt(alpha_bar_prev) * beta / (1 - alpha_bar)
        coef_xt = math.sqrt(alpha) * (1 - alpha_bar_prev) / (1 - alpha_bar)
        mean = coef_x0 * x0 + coef_xt * sample
        if prev < 0:
            return mean
        variance = max((1 - alpha_bar_prev) / (1 - alpha_bar) * beta, 1e-20)
        return mean + math.sqrt(variance) * self._noise_like(sample, generator, variance_noise)


class DDIMScheduler(_Scheduler):
    """DDIM (Song et al. 2021): the same trained model, a non-Markovian sampler that can
    skip steps; deterministic when ``eta=0``, DDPM's ancestral step when ``eta=1``.

    Same constructor and attributes as :class:`DDPMScheduler`; use it with
    ``set_timesteps(10 … 50)``.
    """

    def step(
        self,
        model_output: torch.Tensor,
        timestep: torch.Tensor | int,
        sample: torch.Tensor,
        eta: float = 0.0,
        use_clipped_model_output: bool = False,
        generator: torch.Generator | None = None,
        variance_noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One DDIM step x_t → x_prev (prev = the next entry of ``timesteps``):

        .. math::
            x_{prev} = \\sqrt{\\bar\\alpha_{prev}}\\,\\hat x_0
              + \\sqrt{1-\\bar\\alpha_{prev}-\\sigma^2}\\;\\hat\\varepsilon + \\sigma z,\\quad
            \\sigma = \\eta\\sqrt{\\frac{1-\\bar\\alpha_{prev}}{1-\\bar\\alpha_t}}
                     \\sqrt{1-\\frac{\\bar\\alpha_t}{\\bar\\alpha_{prev}}}

        with x̂_0 as in DDPM (clipped when ``clip_sample``; ε̂ itself is used unchanged,
        as in diffusers). model_output ε̂, sample x_t: (B, ...); ``timestep``: one int;
        ``eta`` ≥ 0; z from ``generator`` or ``variance_noise``. With
        ``use_clipped_model_output`` the step uses the ε̂ that the clipped x̂_0 implies
        (diffusers' option of that name; needed with guidance w > 1, whose ε̂ can point
        outside the data range). Returns x_prev, (B, ...).
        """
        if eta < 0:
            raise ValueError(f"eta must be >= 0 (0: deterministic DDIM, 1: DDPM), got {eta}")
        x0 = self.predict_x0(model_output, timestep, sample)
        t = int(self._check_timesteps(timestep).item())
        prev = self.previous_timestep(t)
        alpha_bar, alpha_bar_prev = self._alpha_bars(t, prev)
        variance = (1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)
        sigma = eta * math.sqrt(variance)
        if use_clipped_model_output and self.clip_sample:
            model_output = (sample - math.sqrt(alpha_bar) * x0) / math.sqrt(1 - alpha_bar)
        direction = math.sqrt(max(1 - alpha_bar_prev - sigma**2, 0.0)) * model_output
        prev_sample = math.sqrt(alpha_bar_prev) * x0 + direction
        if sigma > 0:
            prev_sample = prev_sample + sigma * self._noise_like(sample, generator, variance_noise)
        return prev_sample


# ====================================================================== the step rules
# as plain functions (lesson 09's exercises; the schedulers above are the references'
# references: tests/test_diffusion.py checks one against the other)


def add_noise(
    x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor
) -> torch.Tensor:
    """q(x_t | x_0) in closed form, :math:`x_t = \\sqrt{\\bar\\alpha_t}x_0 + \\sqrt{1-\\bar\\alpha_t}\\varepsilon`.

    x0, noise: (B, ...); t: (B,) long, one timestep per sample; alphas_cumprod: (T,) ᾱ.
    Returns x_t, (B, ...), in x0's dtype.
    """
    alpha_bar = alphas_cumprod[t].to(x0.dtype).reshape(-1, *([1] * (x0.ndim - 1)))
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise


def ddpm_step(
    eps: torch.Tensor,
    x_t: torch.Tensor,
    alpha_bar: float,
    alpha_bar_prev: float,
    z: torch.Tensor,
) -> torch.Tensor:
    """One DDPM ancestral step x_t → x_prev (the rule of :meth:`DDPMScheduler.step`).

    eps ε̂, x_t, z ~ N(0, I): (B, ...); alpha_bar ᾱ_t and alpha_bar_prev ᾱ_prev: floats
    (ᾱ_prev = 1 on the last step, which adds no noise). x̂_0 is clipped to [-1, 1].
    Returns x_prev, (B, ...).
    """
    x0 = ((x_t - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)).clamp(-1, 1)
    alpha = alpha_bar / alpha_bar_prev
    beta = 1 - alpha
    mean = (
        math.sqrt(alpha_bar_prev) * beta * x0 + math.sqrt(alpha) * (1 - alpha_bar_prev) * x_t
    ) / (1 - alpha_bar)
    if alpha_bar_prev >= 1.0:
        return mean
    variance = (1 - alpha_bar_prev) / (1 - alpha_bar) * beta
    return mean + math.sqrt(variance) * z


def ddim_step(
    eps: torch.Tensor, x_t: torch.Tensor, alpha_bar: float, alpha_bar_prev: float
) -> torch.Tensor:
    """One deterministic DDIM step (η = 0) x_t → x_prev (:meth:`DDIMScheduler.step`):
    :math:`x_{prev} = \\sqrt{\\bar\\alpha_{prev}}\\hat x_0 + \\sqrt{1-\\bar\\alpha_{prev}}\\,\\hat\\varepsilon`,
    x̂_0 clipped to [-1, 1]. eps, x_t: (B, ...); ᾱ_t, ᾱ_prev: floats. Returns (B, ...)."""
    x0 = ((x_t - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)).clamp(-1, 1)
    return math.sqrt(alpha_bar_prev) * x0 + math.sqrt(1 - alpha_bar_prev) * eps


# ====================================================================== data: 8×8 digits

# A 5×7 bitmap font: each digit is 7 rows of 5 pixels ("#" = ink).
_FONT = {
    0: (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    1: ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    2: (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    3: ("####.", "....#", "....#", ".###.", "....#", "....#", "####."),
    4: ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    5: ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    6: ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    7: ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    8: (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    9: (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
}


def _glyphs(upsample: int = 4) -> torch.Tensor:
    """The ten glyphs as a (10, 1, 7·u, 5·u) float tensor in {0, 1}."""
    rows = [[[float(c == "#") for c in row] for row in _FONT[d]] for d in range(10)]
    glyphs = torch.tensor(rows).unsqueeze(1)  # (10, 1, 7, 5)
    return glyphs.repeat_interleave(upsample, dim=2).repeat_interleave(upsample, dim=3)


def make_digits(n: int, *, seed: int = 0, image_size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` procedurally drawn handwritten-ish digits, like scikit-learn's 8×8 digits.

    Each digit is a 5×7 font glyph under a random affine map (scale ±10 %, rotation
    ±12°, shear ±0.25, shift ±0.6 px), a random stroke weight and brightness, rendered
    at 4× resolution and average-pooled (anti-aliasing). Returns ``images``
    (n, 1, S, S) float32 in [-1, 1] (background -1) and ``labels`` (n,) int64 in 0…9,
    balanced at random; the same for the same arguments.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8 (8 is usual), got {image_size!r}")
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(10, (n,), generator=g)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=g)

    scale, angle, shear = uniform(0.9, 1.1), uniform(-0.21, 0.21), uniform(-0.25, 0.25)
    shift_x, shift_y = uniform(-0.15, 0.15), uniform(-0.1, 0.1)
    weight, brightness = uniform(0.0, 1.0), uniform(0.75, 1.0)
    # output (canvas) coordinates → glyph coordinates, both in [-1, 1]: the glyph fills
    # 5/8 × 7/8 of the canvas at scale 1
    cos, sin = torch.cos(angle), torch.sin(angle)
    sx, sy = 8 / 5 / scale, 8 / 7 / scale
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = sx * cos, sx * (sin + shear)
    theta[:, 1, 0], theta[:, 1, 1] = -sy * sin, sy * cos
    theta[:, 0, 2], theta[:, 1, 2] = -sx * shift_x, -sy * shift_y
    hi = 4 * image_size
    grid = F.affine_grid(theta, [n, 1, hi, hi], align_corners=False)
    ink = F.grid_sample(_glyphs()[labels], grid, mode="bilinear", align_corners=False)
    bold = F.max_pool2d(ink, 3, stride=1, padding=1)  # a thicker pen
    ink = ink + weight.view(-1, 1, 1, 1) * (bold - ink)
    ink = F.avg_pool2d(ink, hi // image_size) * brightness.view(-1, 1, 1, 1)
    return (ink.clamp(0, 1) * 2 - 1).contiguous(), labels


# ====================================================================== the denoiser


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (Transformer / DDPM style): (B,) → (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


@dataclass
class DenoiserConfig:
    """Sizes of :class:`Denoiser`. ``num_classes`` real classes; class index
    ``num_classes`` is the null class ∅ (no condition, for classifier-free guidance)."""

    image_shape: tuple[int, int, int] = (1, 8, 8)
    hidden: int = 256
    n_blocks: int = 3
    time_dim: int = 64
    num_classes: int = 10


class MLPBlock(nn.Module):
    """Pre-norm residual MLP block, conditioned by adding the (time + class) embedding."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.cond = nn.Linear(hidden, hidden)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, 2 * hidden), nn.SiLU(), nn.Linear(2 * hidden, hidden)
        )

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return h + self.mlp(self.norm(h) + self.cond(emb))


class Denoiser(nn.Module):
    """Predicts the noise ε in x_t = √ᾱ x_0 + √(1-ᾱ) ε: ``model(x_t, t, class_labels)``.

    An MLP over the flattened image (fine for 8×8; a U-Net is the choice for bigger
    images) with a sinusoidal timestep embedding and a class embedding (index
    ``num_classes`` = ∅, no condition) added in every block. Its output is
    ``head(h) + gate(t) ⊙ x_t``: a per-pixel, time-dependent skip gate, because at
    large t the best ε̂ is almost x_t itself (ᾱ ≈ 0), which a narrow MLP finds hard to copy.

    x_t: (B, C, H, W); t: (B,) long (or one int); class_labels: (B,) long in
    [0, num_classes] or None (= all ∅). Returns ε̂, (B, C, H, W).
    """

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.config = config
        c, h, w = config.image_shape
        d, hidden = c * h * w, config.hidden
        self.time_mlp = nn.Sequential(
            nn.Linear(config.time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        self.class_emb = nn.Embedding(config.num_classes + 1, hidden)
        self.inp = nn.Linear(d, hidden)
        self.blocks = nn.ModuleList([MLPBlock(hidden) for _ in range(config.n_blocks)])
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, d)
        self.gate = nn.Linear(hidden, d)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def null_class(self) -> int:
        return self.config.num_classes

    def forward(
        self, x: torch.Tensor, t: torch.Tensor | int, class_labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        if tuple(x.shape[1:]) != tuple(self.config.image_shape):
            raise ValueError(
                f"x must have shape (B, {', '.join(map(str, self.config.image_shape))}), "
                f"got {tuple(x.shape)}"
            )
        B = x.shape[0]
        t = torch.as_tensor(t, device=x.device).long()
        if t.ndim == 0:
            t = t.expand(B)
        if class_labels is None:
            class_labels = torch.full((B,), self.null_class, dtype=torch.long, device=x.device)
        emb = self.time_mlp(timestep_embedding(t.to(x.device), self.config.time_dim))
        emb = emb + self.class_emb(class_labels)
        flat = x.flatten(1)
        h = self.inp(flat)
        for block in self.blocks:
            h = block(h, emb)
        out = self.head(self.norm(h)) + self.gate(emb) * flat
        return out.view_as(x)


def fit_one_cycle(
    model: nn.Module,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    n_items: int,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    weight_decay: float = 0.01,
    grad_clip: float | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> list[float]:
    """The training loop of lessons 09 and 10: AdamW with a one-cycle learning rate.

    Each step draws ``batch_size`` random indices in ``[0, n_items)`` with ``generator``
    and minimises ``batch_loss(indices)`` (a scalar); gradients are clipped to norm
    ``grad_clip`` if given. ``callback(step, loss)`` after every step. Returns the losses.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    losses: list[float] = []
    model.train()
    for step in range(steps):
        loss = batch_loss(torch.randint(n_items, (batch_size,), generator=generator))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if callback is not None:
            callback(step, losses[-1])
    model.eval()
    return losses


def train_denoiser(
    model: Denoiser,
    scheduler: DDPMScheduler | DDIMScheduler,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    steps: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    p_uncond: float = 0.2,
    null_condition: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` with the simple loss :math:`\\lVert\\varepsilon - \\varepsilon_\\theta(x_t, t, y)\\rVert^2`
    (t uniform in [0, T)), replacing each label by ∅ with probability ``p_uncond``
    (condition dropout: one model learns p(x | y) and p(x)). AdamW with a one-cycle
    learning rate. images: (N, C, H, W) in [-1, 1]; labels: (N,) long or None
    (unconditional), or any per-image condition such as text embeddings (N, D) with
    ``null_condition`` (D,), the condition that stands for ∅ (lesson 10: the empty
    prompt's embedding). ``callback(step, loss)`` after every step. Returns the losses."""
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"labels must have one entry per image ({len(images)}), got {len(labels)}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    T = scheduler.num_train_timesteps

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        x0 = images[idx]
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(T, (batch_size,), generator=g)
        y = None
        if labels is not None:
            y = labels[idx].clone()
            null = model.null_class if null_condition is None else null_condition
            y[torch.rand(batch_size, generator=g) < p_uncond] = null
            y = y.to(device)
        x_t = scheduler.add_noise(x0, noise, t)
        return F.mse_loss(model(x_t.to(device), t.to(device), y), noise.to(device))

    return fit_one_cycle(
        model,
        batch_loss,
        len(images),
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        generator=g,
        weight_decay=0.0,
        callback=callback,
    )


@torch.no_grad()
def sample(
    model: Denoiser,
    scheduler: DDPMScheduler | DDIMScheduler,
    n: int,
    *,
    num_inference_steps: int | None = None,
    class_labels: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    generator: torch.Generator | None = None,
    guidance: Callable[..., torch.Tensor] = classifier_free_guidance,
    use_clipped_model_output: bool = False,
    trajectory_every: int = 0,
) -> tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]:
    """Draw ``n`` images: start from x_T ~ N(0, I), loop over ``scheduler.timesteps``.

    ``class_labels`` (n,) long: class-conditional, combined with the unconditional
    prediction by classifier-free guidance at ``guidance_scale`` w (w = 1: plain
    conditional; both predictions come from one batched call); None: unconditional
    (∅). ``num_inference_steps``: calls ``scheduler.set_timesteps`` (None keeps the
    scheduler's). ``use_clipped_model_output``: hand the scheduler the ε̂ that the
    clipped x̂_0 implies, not the model's (as diffusers' DDIM option): needed for DDIM
    with guidance w > 1; DDPM's update does not change. ``trajectory_every`` k > 0
    records (t, x̂_0) every k steps and at the end. ``generator`` draws x_T and the
    step noise (None: a fresh one seeded 0, so the call is reproducible).
    Returns (images (n, C, H, W) clipped to [-1, 1], trajectory).
    """
    if num_inference_steps is not None:
        scheduler.set_timesteps(num_inference_steps)
    if class_labels is not None and len(class_labels) != n:
        raise ValueError(f"class_labels must have n = {n} entries, got {len(class_labels)}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    model.eval()
    x = torch.randn((n, *model.config.image_shape), generator=g).to(device)
    trajectory: list[tuple[int, torch.Tensor]] = []
    null = torch.full((n,), model.null_class, dtype=torch.long, device=device)
    timesteps = scheduler.timesteps.tolist()
    for i, t in enumerate(timesteps):
        t_batch = torch.full((n,), t, dtype=torch.long, device=device)
        if class_labels is None:
            eps = model(x, t_batch, null)
        elif guidance_scale == 1.0:
            eps = model(x, t_batch, class_labels.to(device))
        else:
            both = model(
                torch.cat([x, x]),
                torch.cat([t_batch, t_batch]),
                torch.cat([null, class_labels.to(device)]),
            )
            eps = guidance(both[:n], both[n:], guidance_scale)
        x0 = scheduler.predict_x0(eps, t, x)  # clipped to [-1, 1]
        if use_clipped_model_output and scheduler.clip_sample:
            # the ε̂ that the clipped x̂_0 implies (GLIDE; diffusers' DDIM option of this
            # name): DDIM's update uses ε̂ directly, and a guided ε̂ (w > 1) that disagrees
            # with the clipped x̂_0 would leave noise in the samples
            alpha_bar = scheduler.alphas_cumprod[t].item()
            eps = (x - math.sqrt(alpha_bar) * x0) / math.sqrt(1 - alpha_bar)
        if trajectory_every and (i % trajectory_every == 0 or i == len(timesteps) - 1):
            trajectory.append((t, x0.cpu()))
        noise = torch.randn(x.shape, generator=g).to(device)
        x = scheduler.step(eps, t, x, variance_noise=noise)
    return x.clamp(-1, 1).cpu(), trajectory


def timed_sample(*args, **kwargs) -> tuple[torch.Tensor, float]:
    """:func:`sample` and its wall-clock time in seconds: (images, seconds)."""
    start = time.perf_counter()
    images, _ = sample(*args, **kwargs)
    return images, time.perf_counter() - start


# ====================================================================== the judge


class DigitClassifier(nn.Module):
    """A small CNN for 8×8 digits, the independent judge of generated samples:
    (B, 1, 8, 8) in [-1, 1] → logits (B, 10)."""

    def __init__(self, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def train_classifier(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = 600,
    batch_size: int = 128,
    lr: float = 3e-3,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Train the judge with cross-entropy (AdamW, one-cycle). Returns the losses."""
    return fit_one_cycle(
        model,
        lambda idx: F.cross_entropy(model(images[idx]), labels[idx]),
        len(images),
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        generator=generator if generator is not None else torch.Generator().manual_seed(0),
    )


@torch.no_grad()
def judge(
    classifier: nn.Module,
    images: torch.Tensor,
    requested: torch.Tensor | None = None,
    *,
    threshold: float = 0.9,
) -> dict[str, float | torch.Tensor]:
    """What the judge thinks of ``images`` (B, 1, 8, 8): ``conf_frac`` (fraction whose
    top class has probability > ``threshold``), ``histogram`` (10,) (counts of the
    predicted classes), ``entropy`` (of that histogram, nats; ln 10 = uniform) and,
    with ``requested`` (B,) classes, ``class_acc`` (fraction predicted as requested)."""
    classifier.eval()
    probs = torch.softmax(classifier(images), dim=-1)
    conf, pred = probs.max(dim=-1)
    num_classes = probs.shape[-1]
    histogram = torch.bincount(pred, minlength=num_classes)
    p = histogram.float() / histogram.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
    out: dict[str, float | torch.Tensor] = {
        "conf_frac": (conf > threshold).float().mean().item(),
        "histogram": histogram,
        "entropy": entropy,
    }
    if requested is not None:
        out["class_acc"] = (pred == requested.to(pred.device)).float().mean().item()
    return out
