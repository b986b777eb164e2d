"""Checks for lesson 07 (RLHF): the Bradley–Terry loss, the KL-penalised reward, GAE,
PPO's clipped loss and the DPO loss. References in :mod:`labs.rlhf`."""

from __future__ import annotations

import math

import torch

from labs import rlhf
from labs.checks.core import Case, FunctionCheck


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mask(lengths: list[int], width: int) -> torch.Tensor:
    """Right-padded 0/1 mask (B, width) for answers of these lengths."""
    return (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).float()


# --------------------------------------------------------------------------- Bradley–Terry


def _bt_cases() -> list[Case]:
    g = _g(0)
    return [
        Case(
            "one pair with equal rewards (loss = log 2)",
            (torch.tensor([0.0]), torch.tensor([0.0])),
            hint=f"σ(0) = 1/2, so the loss is -log(1/2) = log 2 = {math.log(2):.6f}.",
        ),
        Case(
            "a batch of 6 pairs",
            (torch.randn(6, generator=g), torch.randn(6, generator=g)),
            hint="average -log σ(r_chosen - r_rejected) over the pairs (a mean, not a sum).",
        ),
        Case(
            "the chosen answer scores far lower (margin -200)",
            (torch.tensor([-100.0, 3.0]), torch.tensor([100.0, 1.0])),
            hint="σ(-200) underflows to 0 and log(0) = -inf: use F.logsigmoid(x) "
            "or -F.softplus(-x), which are exact for large |x|.",
        ),
        Case(
            "the chosen answer scores far higher (margin +200)",
            (torch.tensor([100.0]), torch.tensor([-100.0])),
            hint="a pair the model already ranks right costs (almost) nothing.",
        ),
    ]


check_bradley_terry_loss = FunctionCheck(
    "bradley_terry_loss",
    rlhf.bradley_terry_loss,
    _bt_cases,
    hint="loss = mean over pairs of -log σ(r_chosen - r_rejected).",
    atol=1e-5,
)


# --------------------------------------------------------------------------- KL-penalised reward


def _kl_cases() -> list[Case]:
    g = _g(1)
    lp = -torch.rand(3, 5, generator=g) * 3
    ref = -torch.rand(3, 5, generator=g) * 3
    return [
        Case(
            "one answer of 3 tokens, no padding",
            (
                torch.tensor([2.0]),
                torch.tensor([[-1.0, -0.5, -2.0]]),
                torch.tensor([[-1.5, -0.5, -1.0]]),
                torch.ones(1, 3),
                0.1,
            ),
            hint="every token gets -kl_coef * (logprob - ref_logprob); the last one also gets the score.",
        ),
        Case(
            "kl_coef = 0: only the score, on the last token",
            (
                torch.tensor([1.0, -0.5]),
                torch.tensor([[-1.0, -0.5, -2.0], [-0.3, -0.2, -0.1]]),
                torch.tensor([[-1.5, -0.5, -1.0], [-0.3, -0.7, -0.2]]),
                torch.ones(2, 3),
                0.0,
            ),
            hint="the reward model scores the whole answer once, at its last token.",
        ),
        Case(
            "a batch with padding (answer lengths 5, 2, 4)",
            (torch.tensor([0.5, -1.0, 2.0]), lp, ref, _mask([5, 2, 4], 5), 0.2),
            hint="the last token of each answer is where its mask ends (mask.sum(1) - 1), "
            "not the last column; padding (mask 0) gets reward 0.",
        ),
    ]


check_kl_penalized_rewards = FunctionCheck(
    "kl_penalized_rewards",
    rlhf.kl_penalized_rewards,
    _kl_cases,
    hint="r_t = -β (log π(y_t) - log π_ref(y_t)) on answer tokens, + score at the last one, 0 on padding.",
)


# --------------------------------------------------------------------------- GAE


def _gae_cases() -> list[Case]:
    g = _g(2)
    return [
        Case(
            "one token: A = r - V",
            (torch.tensor([[1.0]]), torch.tensor([[0.25]]), torch.ones(1, 1), 1.0, 0.95),
            hint="after the last token the value is 0: δ = r - V.",
        ),
        Case(
            "γ = λ = 1: A_t = (sum of rewards from t) - V_t",
            (
                torch.tensor([[0.0, 0.5, 1.0, -2.0]]),
                torch.tensor([[0.1, 0.2, -0.3, 0.4]]),
                torch.ones(1, 4),
                1.0,
                1.0,
            ),
            hint="go backwards: A_t = δ_t + γλ A_{t+1}, with δ_t = r_t + γ V_{t+1} - V_t.",
        ),
        Case(
            "γ = 0.9, λ = 0.8, a batch of 2",
            (
                torch.randn(2, 6, generator=g),
                torch.randn(2, 6, generator=g),
                torch.ones(2, 6),
                0.9,
                0.8,
            ),
            hint="both γ and λ multiply A_{t+1}; only γ multiplies V_{t+1}.",
        ),
        Case(
            "padding after short answers (values on padding are junk)",
            (
                torch.randn(3, 5, generator=g),
                torch.randn(3, 5, generator=g),
                _mask([5, 2, 3], 5),
                0.95,
                0.9,
            ),
            hint="the value after an answer's last token is 0: multiply rewards and values by "
            "the mask first; advantages and returns are 0 on padding.",
        ),
    ]


check_compute_gae = FunctionCheck(
    "compute_gae",
    rlhf.compute_gae,
    _gae_cases,
    hint="δ_t = r_t + γ V_{t+1} - V_t, A_t = δ_t + γλ A_{t+1} (backwards), returns = A + V; all masked.",
    atol=1e-5,
)


# --------------------------------------------------------------------------- PPO clipped loss


def _ppo_cases() -> list[Case]:
    g = _g(3)
    old = -torch.rand(2, 4, generator=g) * 2
    return [
        Case(
            "ratio 1 everywhere: loss = -mean(A)",
            (
                old.clone(),
                old.clone(),
                torch.tensor([[1.0, -1.0, 2.0, 0.5], [0.0, 1.0, 1.0, -3.0]]),
                torch.ones(2, 4),
                0.2,
            ),
            hint="with the same log-probs ρ = 1 and the loss is minus the mean advantage.",
        ),
        Case(
            "ratios inside and outside [1 - ε, 1 + ε], advantages of both signs",
            (
                torch.log(torch.tensor([[1.5, 1.5, 0.5, 0.5, 1.1, 0.9]])),
                torch.zeros(1, 6),
                torch.tensor([[1.0, -1.0, 1.0, -1.0, 2.0, -2.0]]),
                torch.ones(1, 6),
                0.2,
            ),
            hint="take the minimum of ρA and clip(ρ, 1-ε, 1+ε)A: the pessimistic bound. "
            "ρ = exp(logprobs - old_logprobs).",
        ),
        Case(
            "padding is ignored (mean over answer tokens only)",
            (
                old + 0.3 * torch.randn(2, 4, generator=g),
                old,
                torch.randn(2, 4, generator=g),
                _mask([4, 2], 4),
                0.2,
            ),
            hint="sum over masked tokens divided by mask.sum(), not a mean over every entry.",
        ),
        Case(
            "clip_range = 0.1",
            (
                torch.log(torch.tensor([[1.15, 0.85, 1.05]])),
                torch.zeros(1, 3),
                torch.tensor([[1.0, -1.0, 1.0]]),
                torch.ones(1, 3),
                0.1,
            ),
            hint="use the clip_range argument, not a fixed 0.2.",
        ),
    ]


check_ppo_clip_loss = FunctionCheck(
    "ppo_clip_loss",
    rlhf.ppo_clip_loss,
    _ppo_cases,
    hint="loss = -masked mean of min(ρA, clip(ρ, 1-ε, 1+ε)A), ρ = exp(logprobs - old_logprobs).",
    atol=1e-5,
)


# --------------------------------------------------------------------------- DPO


def _dpo_cases() -> list[Case]:
    g = _g(4)
    logps = [-10 * torch.rand(4, generator=g) for _ in range(4)]
    return [
        Case(
            "policy = reference (loss = log 2)",
            (
                torch.tensor([-5.0]),
                torch.tensor([-7.0]),
                torch.tensor([-5.0]),
                torch.tensor([-7.0]),
                0.1,
            ),
            hint="at the start the log-ratios are 0 and σ(0) = 1/2: the loss is log 2.",
        ),
        Case("a batch of 4, β = 0.1", (*logps, 0.1), hint="the implicit reward is β log(π/π_ref)."),
        Case(
            "β = 0.5 and log-ratio margins of ±600",
            (
                torch.tensor([-600.0, -1.0]),
                torch.tensor([-1.0, -600.0]),
                torch.tensor([-1.0, -1.0]),
                torch.tensor([-1.0, -1.0]),
                0.5,
            ),
            hint="σ(-300) underflows: use F.logsigmoid or softplus.",
        ),
        Case(
            "the policy moved away from the reference on both answers",
            (
                torch.tensor([-4.0, -9.0]),
                torch.tensor([-6.0, -3.0]),
                torch.tensor([-5.0, -8.0]),
                torch.tensor([-5.0, -6.0]),
                0.2,
            ),
            hint="compare (π_c - ref_c) with (π_r - ref_r): log-ratios, not raw log-probs.",
        ),
    ]


check_dpo_loss = FunctionCheck(
    "dpo_loss",
    rlhf.dpo_loss,
    _dpo_cases,
    hint="loss = mean of -log σ(β[(log π_c - log ref_c) - (log π_r - log ref_r)]).",
    atol=1e-5,
)
