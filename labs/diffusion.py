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
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "DDIMScheduler",
    "DDPMScheduler",
    "betas_for",
    "classifier_free_guidance",
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
        ``eta`` ≥ 0; z from ``generator`` or ``variance_noise``. Returns x_prev, (B, ...).
        """
        if eta < 0:
            raise ValueError(f"eta must be >= 0 (0: deterministic DDIM, 1: DDPM), got {eta}")
        x0 = self.predict_x0(model_output, timestep, sample)
        t = int(self._check_timesteps(timestep).item())
        prev = self.previous_timestep(t)
        alpha_bar, alpha_bar_prev = self._alpha_bars(t, prev)
        variance = (1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)
        sigma = eta * math.sqrt(variance)
        direction = math.sqrt(max(1 - alpha_bar_prev - sigma**2, 0.0)) * model_output
        prev_sample = math.sqrt(alpha_bar_prev) * x0 + direction
        if sigma > 0:
            prev_sample = prev_sample + sigma * self._noise_like(sample, generator, variance_noise)
        return prev_sample
