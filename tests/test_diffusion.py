"""labs.diffusion against independent references: the papers' formulas written out
with NumPy / per-step betas, empirical moments, perfect ε-oracles (a known x0, and the
exact optimal denoiser of a Gaussian data distribution), and the clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labs import diffusion
from labs.diffusion import DDIMScheduler, DDPMScheduler


def _oracle(scheduler, x0: torch.Tensor):
    """The perfect noise predictor for a known clean sample x0: the ε that makes
    x_t = add_noise(x0, ε, t), i.e. (x_t − √ᾱ_t x0) / √(1 − ᾱ_t)."""

    def eps(x_t: torch.Tensor, t: int) -> torch.Tensor:
        signal = scheduler.add_noise(x0, torch.zeros_like(x0), t)  # √ᾱ_t x0
        noise_scale = scheduler.add_noise(torch.zeros_like(x0), torch.ones_like(x0), t)
        return (x_t - signal) / noise_scale

    return eps


def test_linear_betas_follow_ho_et_al():
    betas = diffusion.betas_for("linear", 1000)
    assert betas.shape == (1000,) and betas.dtype == torch.float32
    np.testing.assert_allclose(betas.numpy(), np.linspace(1e-4, 0.02, 1000), rtol=1e-6)
    short = diffusion.betas_for("linear", 100)  # scaled by 1000 / T
    np.testing.assert_allclose(short[[0, -1]].numpy(), [1e-3, 0.2], rtol=1e-6)


@pytest.mark.parametrize("T", [1000, 50])
def test_cosine_alpha_bar_matches_nichol_and_dhariwal(T):
    scheduler = DDPMScheduler(num_train_timesteps=T, beta_schedule="cosine")
    s = 0.008

    def f(t: float) -> float:
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    expected = np.array([f(t) / f(0) for t in range(1, T + 1)])  # paper's t = index + 1
    clipped = (scheduler.betas >= 0.999).nonzero()
    first_clipped = clipped[0].item() if len(clipped) else T
    assert first_clipped >= T - 2  # only the very last step(s) hit the 0.999 cap
    got = scheduler.alphas_cumprod.numpy()
    np.testing.assert_allclose(got[:first_clipped], expected[:first_clipped], rtol=1e-5)
    assert np.all(np.diff(got) < 0) and got[-1] < 1e-4
    np.testing.assert_allclose(  # float32 betas: ~1e-4 relative at the last, tiny ᾱ
        scheduler.alphas_cumprod.numpy(),
        np.cumprod(1 - scheduler.betas.double().numpy()),
        rtol=1e-3,
    )


def test_add_noise_matches_the_closed_form_per_sample():
    scheduler = DDPMScheduler()
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(5, 3, 4, 4, generator=g) * 2 - 1
    noise = torch.randn(5, 3, 4, 4, generator=g)
    t = torch.tensor([0, 10, 500, 998, 999])
    x_t = scheduler.add_noise(x0, noise, t)
    for i in range(5):
        a = scheduler.alphas_cumprod[t[i]]
        torch.testing.assert_close(x_t[i], a.sqrt() * x0[i] + (1 - a).sqrt() * noise[i])
    # one int for the whole batch, and float64 stays float64
    same = scheduler.add_noise(x0.double(), noise.double(), 500)
    assert same.dtype == torch.float64
    torch.testing.assert_close(same[2].float(), x_t[2])
    # unbatched 2-D input with a (B,) timestep vector
    flat = scheduler.add_noise(x0.flatten(1), noise.flatten(1), t)
    torch.testing.assert_close(flat, x_t.flatten(1))


def test_add_noise_empirical_mean_and_variance():
    scheduler = DDPMScheduler(beta_schedule="linear")
    g = torch.Generator().manual_seed(1)
    x0 = torch.full((200_000,), 0.7)
    for t in (0, 250, 999):
        x_t = scheduler.add_noise(x0, torch.randn(200_000, generator=g), t)
        a = scheduler.alphas_cumprod[t].item()
        assert abs(x_t.mean().item() - math.sqrt(a) * 0.7) < 0.01
        assert abs(x_t.var().item() - (1 - a)) < 0.01 * max(1 - a, 0.01) + 1e-4


def test_snr_and_timesteps():
    scheduler = DDPMScheduler()
    t = torch.arange(1000)
    f = np.cos((np.arange(1001) / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2
    a = f[1:] / f[0]  # Nichol & Dhariwal's ᾱ, float64 (the cap changes only the last step)
    np.testing.assert_allclose(scheduler.snr(t)[:-1].numpy(), (a / (1 - a))[:-1], rtol=1e-5)
    assert scheduler.snr(t).dtype == torch.float32 and scheduler.snr(5).shape == ()
    assert torch.all(scheduler.snr(t)[1:] < scheduler.snr(t)[:-1])
    assert torch.equal(scheduler.timesteps, torch.arange(999, -1, -1))  # default: all T
    for n in (1, 3, 7, 50, 999, 1000):
        scheduler.set_timesteps(n)
        steps = scheduler.timesteps
        assert steps.dtype == torch.long and len(steps) == n and steps[0] == 999
        assert torch.all(steps[1:] < steps[:-1]) and steps[-1] >= 0
        gaps = (steps[:-1] - steps[1:]).tolist()
        assert not gaps or max(gaps) - min(gaps) <= 1  # evenly spaced
    scheduler.set_timesteps(4)
    assert scheduler.timesteps.tolist() == [999, 749, 499, 249]
    assert [scheduler.previous_timestep(t) for t in (999, 749, 499, 249)] == [749, 499, 249, -1]


@pytest.mark.parametrize("n_steps", [1000, 10])
def test_one_ddpm_step_is_the_posterior_mean_plus_sigma_z(n_steps):
    scheduler = DDPMScheduler(beta_schedule="linear", clip_sample=False)
    scheduler.set_timesteps(n_steps)
    g = torch.Generator().manual_seed(2)
    x_t = torch.randn(4, 2, 3, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(4, 2, 3, 3, generator=g, dtype=torch.float64)
    betas = torch.from_numpy(np.linspace(1e-4, 0.02, 1000))  # float64, independent
    a_bar = torch.cumprod(1 - betas, dim=0)
    for t in scheduler.timesteps[[0, len(scheduler.timesteps) // 2, -2]].tolist():
        prev = scheduler.previous_timestep(t)
        a_t, a_prev = a_bar[t], a_bar[prev]
        if n_steps == 1000:  # Ho et al. eq. 11 and 7, written with the per-step β_t
            beta = betas[t]
            mean = (x_t - beta / (1 - a_t).sqrt() * eps) / (1 - beta).sqrt()
            var = (1 - a_prev) / (1 - a_t) * beta
        else:  # skipping steps: the posterior q(x_prev | x_t, x0) with ᾱ_t / ᾱ_prev
            x0 = (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            ratio = a_t / a_prev
            mean = (a_prev.sqrt() * (1 - ratio) * x0 + ratio.sqrt() * (1 - a_prev) * x_t) / (
                1 - a_t
            )
            var = (1 - a_prev) / (1 - a_t) * (1 - ratio)
        z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(t), dtype=torch.float64)
        got = scheduler.step(eps, t, x_t, generator=torch.Generator().manual_seed(t))
        torch.testing.assert_close(got, mean + var.sqrt() * z, rtol=1e-6, atol=1e-6)
        fixed = scheduler.step(eps, t, x_t, variance_noise=z)
        torch.testing.assert_close(fixed, got)
        assert scheduler.posterior_variance(t) == pytest.approx(var.item(), rel=1e-9)
    # the last step adds no noise and returns the predicted x0
    last = scheduler.timesteps[-1].item()
    x0_hat = scheduler.predict_x0(eps, last, x_t)
    torch.testing.assert_close(scheduler.step(eps, last, x_t, generator=g), x0_hat)


def test_clip_sample_keeps_the_predicted_x0_in_range():
    clipped, raw = DDPMScheduler(), DDPMScheduler(clip_sample=False)
    x_t = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    bad_eps = torch.zeros_like(x_t)  # a wrong prediction at the noisiest step
    assert clipped.predict_x0(bad_eps, 999, x_t).abs().max() <= 1.0
    assert raw.predict_x0(bad_eps, 999, x_t).abs().max() > 1000  # the prototype's blow-up
    assert clipped.step(bad_eps, 999, x_t, variance_noise=torch.zeros_like(x_t)).abs().max() < 5


@pytest.mark.parametrize("n_steps", [1, 2, 7, 50, 1000])
def test_ddim_eta0_with_a_perfect_oracle_recovers_x0_exactly(n_steps):
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(n_steps)
    g = torch.Generator().manual_seed(4)
    x0 = torch.rand(3, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
    eps = _oracle(scheduler, x0)
    x = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    for t in scheduler.timesteps.tolist():
        x = scheduler.step(eps(x, t), t, x, eta=0.0)
    torch.testing.assert_close(x, x0, rtol=0, atol=1e-7)
    # and deterministic: the same start gives the same end, no generator needed
    y = torch.randn(x0.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    first = scheduler.step(eps(y, 999), 999, y)
    torch.testing.assert_close(first, scheduler.step(eps(y, 999), 999, y), rtol=0, atol=0)


@pytest.mark.parametrize("n_steps", [1000, 20])
def test_ddpm_with_a_perfect_oracle_ends_at_x0(n_steps):
    scheduler = DDPMScheduler()
    scheduler.set_timesteps(n_steps)
    g = torch.Generator().manual_seed(5)
    x0 = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
    eps = _oracle(scheduler, x0)
    x = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    for t in scheduler.timesteps.tolist():
        x = scheduler.step(eps(x, t), t, x, generator=g)
    torch.testing.assert_close(x, x0, rtol=0, atol=1e-6)


def _sample_gaussian_data(sampler: str, n_steps: int, mu: float, s: float) -> torch.Tensor:
    """Sample with the exact optimal ε-predictor for data x0 ~ N(μ, s²):
    E[ε | x_t] = √(1−ᾱ)(x_t − √ᾱ μ) / (ᾱ s² + 1 − ᾱ)."""
    scheduler = (DDPMScheduler if sampler == "ddpm" else DDIMScheduler)(clip_sample=False)
    scheduler.set_timesteps(n_steps)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(20_000, generator=g, dtype=torch.float64)
    for t in scheduler.timesteps.tolist():
        a = scheduler.alphas_cumprod[t].double().item()
        eps = math.sqrt(1 - a) * (x - math.sqrt(a) * mu) / (a * s**2 + 1 - a)
        x = scheduler.step(eps, t, x, generator=g)
    return x


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samplers_reproduce_a_gaussian_data_distribution(sampler):
    """With the exact ε of N(μ, s²) data, 1000 steps of either sampler turn N(0, 1)
    noise into samples with mean μ and std s."""
    x = _sample_gaussian_data(sampler, 1000, mu=0.3, s=0.5)
    assert abs(x.mean().item() - 0.3) < 0.015
    assert abs(x.std().item() - 0.5) < 0.015


def test_few_step_ddim_underdisperses_and_converges_with_more_steps():
    """DDIM is exact for a single known x0 but not for a spread-out distribution: with
    few steps the samples come out too narrow (std 0.43 at 10 steps for s = 0.5),
    approaching s as the number of steps grows."""
    stds = [_sample_gaussian_data("ddim", n, mu=0.3, s=0.5).std().item() for n in (10, 25, 100)]
    assert stds[0] < stds[1] < stds[2] < 0.5 + 0.015
    assert stds[2] > 0.47


@pytest.mark.parametrize("n_steps", [1000, 10])
def test_ddim_with_eta1_is_the_ddpm_step(n_steps):
    ddpm, ddim = DDPMScheduler(clip_sample=False), DDIMScheduler(clip_sample=False)
    ddpm.set_timesteps(n_steps)
    ddim.set_timesteps(n_steps)
    g = torch.Generator().manual_seed(7)
    x_t = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)
    eps = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)
    z = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)
    for t in ddim.timesteps.tolist()[:-1]:
        with_z = ddim.step(eps, t, x_t, eta=1.0, variance_noise=z)
        without = ddim.step(eps, t, x_t, eta=1.0, variance_noise=torch.zeros_like(z))
        sigma = ((with_z - without) / z).mean().item()
        assert sigma**2 == pytest.approx(ddpm.posterior_variance(t), rel=1e-6)
        torch.testing.assert_close(with_z, ddpm.step(eps, t, x_t, variance_noise=z))
        half = ddim.step(eps, t, x_t, eta=0.5, variance_noise=z)
        half_sigma = ((half - ddim.step(eps, t, x_t, eta=0.5, variance_noise=0 * z)) / z).mean()
        assert half_sigma.item() == pytest.approx(0.5 * sigma, rel=1e-6)


def test_classifier_free_guidance():
    g = torch.Generator().manual_seed(8)
    uncond, cond = torch.randn(2, 4, 3, 8, 8, generator=g)
    torch.testing.assert_close(diffusion.classifier_free_guidance(uncond, cond, 0.0), uncond)
    torch.testing.assert_close(diffusion.classifier_free_guidance(uncond, cond, 1.0), cond)
    torch.testing.assert_close(
        diffusion.classifier_free_guidance(uncond, cond, 3.0), 3 * cond - 2 * uncond
    )
    scales = torch.tensor([0.0, 1.0, 2.0, 5.0])
    per_sample = diffusion.classifier_free_guidance(uncond, cond, scales)
    for i, w in enumerate(scales.tolist()):
        torch.testing.assert_close(
            per_sample[i], diffusion.classifier_free_guidance(uncond[i], cond[i], w)
        )


def test_clear_errors():
    scheduler = DDPMScheduler()
    x = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match="unknown beta schedule 'cosinus'"):
        DDPMScheduler(beta_schedule="cosinus")
    with pytest.raises(ValueError, match="num_train_timesteps"):
        diffusion.betas_for("linear", 1)
    with pytest.raises(ValueError, match=r"\[0, 1000\)"):
        scheduler.add_noise(x, x, torch.tensor([0, 1000]))
    with pytest.raises(ValueError, match=r"\[0, 1000\)"):
        scheduler.add_noise(x, x, -1)
    with pytest.raises(ValueError, match="integers"):
        scheduler.add_noise(x, x, torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="noise must have the shape"):
        scheduler.add_noise(x, x[:, :2], torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        scheduler.add_noise(x, x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="model_output"):
        scheduler.step(x[:, :1], 999, x)
    with pytest.raises(ValueError, match="one timestep"):
        scheduler.step(x, torch.tensor([999, 998]), x)
    scheduler.set_timesteps(10)
    with pytest.raises(ValueError, match="not one of this scheduler's 10 timesteps"):
        scheduler.step(x, 500, x)
    with pytest.raises(ValueError, match="num_inference_steps"):
        scheduler.set_timesteps(0)
    with pytest.raises(ValueError, match="num_inference_steps"):
        scheduler.set_timesteps(1001)
    with pytest.raises(ValueError, match="variance_noise"):
        scheduler.step(x, 999, x, variance_noise=x[:1])
    with pytest.raises(ValueError, match="eta must be >= 0"):
        DDIMScheduler().step(x, 999, x, eta=-1.0)
    with pytest.raises(ValueError, match="same shape"):
        diffusion.classifier_free_guidance(x, x[:1], 2.0)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        diffusion.classifier_free_guidance(x, x, torch.ones(3))


def test_diffusers_style_loop_in_float32_is_reproducible():
    """Loop over ``scheduler.timesteps`` (0-d tensors) as diffusers does; float32 in,
    float32 out; the same generator seed gives the same samples."""
    x0 = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(9)) * 2 - 1

    def sample(cls, seed: int) -> torch.Tensor:
        scheduler = cls()
        scheduler.set_timesteps(20)
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(x0.shape, generator=g)
        eps = _oracle(scheduler, x0)
        for t in scheduler.timesteps:
            x = scheduler.step(eps(x, t), t, x, generator=g)
        return x

    for cls in (DDPMScheduler, DDIMScheduler):
        a, b = sample(cls, 0), sample(cls, 0)
        assert a.dtype == torch.float32 and torch.equal(a, b)
        torch.testing.assert_close(a, x0, rtol=0, atol=1e-4)


# --------------------------------------------------------------------------- lesson 09:
# the step rules as functions, the digits, the denoiser, the pipeline and the judge


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_functional_add_noise_matches_the_scheduler(schedule):
    scheduler = DDPMScheduler(beta_schedule=schedule)
    g = torch.Generator().manual_seed(3)
    x0, noise = torch.rand(4, 1, 8, 8, generator=g) * 2 - 1, torch.randn(4, 1, 8, 8, generator=g)
    t = torch.tensor([0, 1, 500, 999])
    torch.testing.assert_close(
        diffusion.add_noise(x0, noise, t, scheduler.alphas_cumprod),
        scheduler.add_noise(x0, noise, t),
    )


@pytest.mark.parametrize("n", [1000, 20, 3])
def test_functional_steps_match_the_schedulers(n):
    """ddpm_step / ddim_step on (ᾱ_t, ᾱ_prev) reproduce scheduler.step for every
    timestep of a skipping schedule, clipping and the noiseless last step included."""
    g = torch.Generator().manual_seed(n)
    ddpm, ddim = DDPMScheduler(), DDIMScheduler()
    ddpm.set_timesteps(n)
    ddim.set_timesteps(n)
    ac = ddpm._alphas_cumprod64
    for t in [*ddpm.timesteps.tolist()[:: max(1, n // 10)], ddpm.timesteps[-1].item()]:
        prev = ddpm.previous_timestep(t)
        ab, ab_prev = ac[t].item(), (ac[prev].item() if prev >= 0 else 1.0)
        eps, x, z = (torch.randn(3, 1, 8, 8, generator=g) for _ in range(3))
        torch.testing.assert_close(
            diffusion.ddpm_step(eps, x, ab, ab_prev, z),
            ddpm.step(eps, t, x, variance_noise=z),
            rtol=1e-5,
            atol=1e-5,
        )
        torch.testing.assert_close(
            diffusion.ddim_step(eps, x, ab, ab_prev), ddim.step(eps, t, x), rtol=1e-5, atol=1e-5
        )


def test_make_digits_is_seeded_balanced_and_in_range():
    images, labels = diffusion.make_digits(2000, seed=0)
    assert images.shape == (2000, 1, 8, 8) and images.dtype == torch.float32
    assert labels.shape == (2000,) and labels.dtype == torch.int64
    assert images.min() >= -1 and images.max() <= 1 and images.max() > 0.4
    counts = torch.bincount(labels, minlength=10)
    assert counts.min() > 150  # about 200 each
    again, labels2 = diffusion.make_digits(2000, seed=0)
    assert torch.equal(images, again) and torch.equal(labels, labels2)
    assert not torch.equal(images, diffusion.make_digits(2000, seed=1)[0])
    # the classes differ on average: each class mean is nearest its own class mean
    means = torch.stack([images[labels == d].mean(0) for d in range(10)]).flatten(1)
    assert torch.cdist(means, means).fill_diagonal_(1e9).min() > 1.0
    with pytest.raises(ValueError, match="positive int"):
        diffusion.make_digits(0)


def test_denoiser_shapes_null_class_and_skip_gate():
    torch.manual_seed(0)
    model = diffusion.Denoiser(diffusion.DenoiserConfig(hidden=32, n_blocks=1, time_dim=16))
    x = torch.randn(5, 1, 8, 8)
    t = torch.tensor([0, 10, 100, 500, 999])
    out = model(x, t, torch.tensor([0, 1, 2, 3, 10]))
    assert out.shape == x.shape
    # None means the null class; one int t means the same t for the batch
    torch.testing.assert_close(model(x, t), model(x, t, torch.full((5,), model.null_class)))
    torch.testing.assert_close(model(x, 7)[:1], model(x[:1], torch.tensor([7])))
    # head starts at zero: the initial prediction is the gated skip, gate(emb) ⊙ x
    assert model.head.weight.abs().sum() == 0
    with pytest.raises(ValueError, match=r"shape \(B, 1, 8, 8\)"):
        model(torch.randn(2, 64), t[:2])


def test_training_lowers_the_loss_and_sampling_is_deterministic():
    images, labels = diffusion.make_digits(512, seed=0)
    scheduler = DDPMScheduler(num_train_timesteps=100)
    torch.manual_seed(0)
    model = diffusion.Denoiser(diffusion.DenoiserConfig(hidden=64, n_blocks=1, time_dim=16))
    losses = diffusion.train_denoiser(
        model, scheduler, images, labels, steps=150, batch_size=64, lr=3e-3
    )
    assert sum(losses[:10]) / 10 > 1.3 * sum(losses[-20:]) / 20
    ddim = DDIMScheduler(num_train_timesteps=100)
    req = torch.arange(6) % 10
    a, traj = diffusion.sample(
        model,
        ddim,
        6,
        num_inference_steps=10,
        class_labels=req,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(1),
        trajectory_every=3,
    )
    b, _ = diffusion.sample(
        model,
        ddim,
        6,
        num_inference_steps=10,
        class_labels=req,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(1),
    )
    assert a.shape == (6, 1, 8, 8) and torch.equal(a, b) and a.abs().max() <= 1
    assert [t for t, _ in traj] == [99, 69, 39, 9]  # every 3rd step, and the last
    torch.testing.assert_close(traj[-1][1], a)  # the last x̂_0 is the sample
    u, _ = diffusion.sample(model, DDPMScheduler(num_train_timesteps=100), 4)
    assert u.shape == (4, 1, 8, 8) and torch.isfinite(u).all()
    with pytest.raises(ValueError, match="class_labels must have n = 6"):
        diffusion.sample(model, ddim, 6, class_labels=req[:2])


def test_sample_with_guidance_uses_the_given_combination():
    """w = 1 without a batched call equals the cfg path with w = 1; a custom guidance
    function is used (here: always the unconditional prediction, i.e. w = 0)."""
    torch.manual_seed(0)
    model = diffusion.Denoiser(diffusion.DenoiserConfig(hidden=32, n_blocks=1, time_dim=16))
    torch.nn.init.normal_(model.head.weight, std=0.1)
    ddim = DDIMScheduler(num_train_timesteps=50)
    req = torch.tensor([1, 2, 3])
    kw = {"num_inference_steps": 5, "generator": None}
    plain, _ = diffusion.sample(model, ddim, 3, class_labels=req, **kw)
    forced, _ = diffusion.sample(
        model, ddim, 3, class_labels=req, guidance_scale=2.0, guidance=lambda u, c, w: c, **kw
    )
    torch.testing.assert_close(plain, forced, rtol=1e-5, atol=1e-5)
    uncond, _ = diffusion.sample(model, ddim, 3, **kw)
    w0, _ = diffusion.sample(model, ddim, 3, class_labels=req, guidance_scale=0.0, **kw)
    torch.testing.assert_close(uncond, w0, rtol=1e-5, atol=1e-5)


def test_judge_metrics_by_hand():
    class Fixed(torch.nn.Module):
        def forward(self, x):
            logits = torch.zeros(len(x), 10)
            logits[torch.arange(len(x)), torch.arange(len(x)) % 10] = 10.0 * x.flatten(1)[:, 0]
            return logits

    x = torch.ones(20, 1, 8, 8)
    x[:5] = 0.0  # uniform probabilities: not confident, predicted class 0
    out = diffusion.judge(Fixed(), x, requested=torch.arange(20) % 10)
    assert out["conf_frac"] == pytest.approx(0.75)
    assert out["class_acc"] == pytest.approx(15 / 20 + 1 / 20)  # sample 0 is class 0 anyway
    assert out["histogram"].sum() == 20 and out["histogram"][0] == 6
    p = out["histogram"].float() / 20
    assert out["entropy"] == pytest.approx(-(p[p > 0] * p[p > 0].log()).sum().item())
    uniform = diffusion.judge(Fixed(), torch.ones(100, 1, 8, 8))
    assert uniform["entropy"] == pytest.approx(math.log(10))


def test_use_clipped_model_output_changes_ddim_not_ddpm():
    """Handing the scheduler the ε̂ implied by the clipped x̂_0 leaves DDPM's update as it
    was (it only uses x̂_0 and x_t) but changes DDIM's (it re-uses ε̂)."""
    torch.manual_seed(0)
    model = diffusion.Denoiser(diffusion.DenoiserConfig(hidden=32, n_blocks=1, time_dim=16))
    torch.nn.init.normal_(model.head.weight, std=0.5)
    req = torch.tensor([0, 1, 2, 3])
    kw = {"num_inference_steps": 10, "class_labels": req, "guidance_scale": 4.0}

    def run(cls, flag):
        scheduler = cls(num_train_timesteps=100)
        g = torch.Generator().manual_seed(2)
        return diffusion.sample(
            model, scheduler, 4, generator=g, use_clipped_model_output=flag, **kw
        )[0]

    torch.testing.assert_close(
        run(DDPMScheduler, True), run(DDPMScheduler, False), atol=1e-4, rtol=0
    )
    assert (run(DDIMScheduler, True) - run(DDIMScheduler, False)).abs().max() > 1e-3


def test_fit_one_cycle_reports_every_step_clips_and_is_seeded():
    def run(grad_clip):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        data = torch.randn(64, 4)
        seen = []
        losses = diffusion.fit_one_cycle(
            model,
            lambda idx: 1e4 * model(data[idx]).square().mean(),  # huge gradients
            len(data),
            steps=5,
            batch_size=8,
            lr=0.1,
            generator=torch.Generator().manual_seed(1),
            grad_clip=grad_clip,
            callback=lambda step, loss: seen.append((step, loss)),
        )
        assert seen == list(enumerate(losses)) and not model.training
        return losses, model.weight.detach().clone()

    clipped, again, unclipped = run(1.0), run(1.0), run(None)
    assert clipped[0] == again[0] and torch.equal(clipped[1], again[1])  # seeded
    assert clipped[0][0] == unclipped[0][0]  # same first batch, same start
    assert not torch.equal(clipped[1], unclipped[1])  # clipping changed the updates
