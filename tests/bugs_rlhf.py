"""Planted bugs for lesson 07's checks (RLHF): see tests/test_check_exercises.py."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from planted import Bug, as_typed

from labs import rlhf

# --------------------------------------------------------------------------- Bradley–Terry


def _bt_naive_log_sigmoid(c, r):
    return -torch.log(torch.sigmoid(c - r)).mean()


def _bt_swapped(c, r):
    return F.softplus(-(r - c)).mean()


def _bt_sum(c, r):
    return F.softplus(-(c - r)).sum()


def _bt_no_minus(c, r):
    return F.logsigmoid(c - r).mean()


def _bt_mse(c, r):
    return ((c - r) - 1).pow(2).mean()


def _bt_hinge(c, r):
    return F.relu(1 - (c - r)).mean()


def _bt_sigmoid_only(c, r):
    return (1 - torch.sigmoid(c - r)).mean()


# --------------------------------------------------------------------------- KL-penalised reward


def _kl_score_first_token(scores, lp, ref, mask, beta):
    rewards = -beta * (lp - ref) * mask
    rewards[:, 0] += scores
    return rewards


def _kl_score_last_column(scores, lp, ref, mask, beta):
    rewards = -beta * (lp - ref) * mask
    rewards[:, -1] += scores
    return rewards


def _kl_score_every_token(scores, lp, ref, mask, beta):
    return (-beta * (lp - ref) + scores[:, None]) * mask


def _kl_sign_flipped(scores, lp, ref, mask, beta):
    return rlhf.kl_penalized_rewards(scores, ref, lp, mask, beta)


def _kl_no_mask(scores, lp, ref, mask, beta):
    rewards = -beta * (lp - ref)
    last = mask.sum(1).long() - 1
    rewards[torch.arange(len(scores)), last] += scores
    return rewards


def _kl_no_beta(scores, lp, ref, mask, beta):
    return rlhf.kl_penalized_rewards(scores, lp, ref, mask, 1.0)


def _kl_sequence_kl_at_end(scores, lp, ref, mask, beta):
    rewards = torch.zeros_like(lp)
    last = mask.sum(1).long() - 1
    kl = ((lp - ref) * mask).sum(1)
    rewards[torch.arange(len(scores)), last] = scores - beta * kl
    return rewards


def _kl_in_place(scores, lp, ref, mask, beta):
    lp.sub_(ref).mul_(-beta).mul_(mask)
    last = mask.sum(1).long() - 1
    lp[torch.arange(len(scores)), last] += scores
    return lp


# --------------------------------------------------------------------------- GAE


def _gae_forward_loop(rewards, values, mask, gamma=1.0, lam=0.95):
    rewards, values = rewards * mask, values * mask
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    T = rewards.size(1)
    for t in range(T):
        nv = values[:, t + 1] if t + 1 < T else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * nv - values[:, t]
        running = delta + gamma * lam * running
        adv[:, t] = running
    adv = adv * mask
    return adv, (adv + values) * mask


def _gae_no_lambda(rewards, values, mask, gamma=1.0, lam=0.95):
    return rlhf.compute_gae(rewards, values, mask, gamma, 1.0)


def _gae_no_gamma_on_value(rewards, values, mask, gamma=1.0, lam=0.95):
    rewards, values = rewards * mask, values * mask
    adv = torch.zeros_like(rewards)
    nxt_a = torch.zeros_like(rewards[:, 0])
    nxt_v = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.size(1))):
        delta = rewards[:, t] + nxt_v - values[:, t]
        nxt_a = delta + gamma * lam * nxt_a
        adv[:, t] = nxt_a
        nxt_v = values[:, t]
    adv = adv * mask
    return adv, (adv + values) * mask


def _gae_bootstraps_from_padding(rewards, values, mask, gamma=1.0, lam=0.95):
    adv = torch.zeros_like(rewards)
    nxt_a = torch.zeros_like(rewards[:, 0])
    nxt_v = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.size(1))):
        delta = rewards[:, t] + gamma * nxt_v - values[:, t]
        nxt_a = delta + gamma * lam * nxt_a
        adv[:, t] = nxt_a
        nxt_v = values[:, t]
    adv = adv * mask
    return adv, (adv + values) * mask


def _gae_returns_are_advantages(rewards, values, mask, gamma=1.0, lam=0.95):
    adv, _ = rlhf.compute_gae(rewards, values, mask, gamma, lam)
    return adv, adv


def _gae_only_delta(rewards, values, mask, gamma=1.0, lam=0.95):
    rewards, values = rewards * mask, values * mask
    nxt = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], 1)
    adv = (rewards + gamma * nxt - values) * mask
    return adv, (adv + values) * mask


def _gae_returns_only(rewards, values, mask, gamma=1.0, lam=0.95):
    return rlhf.compute_gae(rewards, values, mask, gamma, lam)[1]


# --------------------------------------------------------------------------- PPO clipped loss


def _ppo_max(lp, old, adv, mask, clip_range=0.2):
    ratio = torch.exp(lp - old)
    obj = torch.max(ratio * adv, ratio.clamp(1 - clip_range, 1 + clip_range) * adv)
    return -(obj * mask).sum() / mask.sum()


def _ppo_no_clip(lp, old, adv, mask, clip_range=0.2):
    ratio = torch.exp(lp - old)
    return -(ratio * adv * mask).sum() / mask.sum()


def _ppo_clipped_only(lp, old, adv, mask, clip_range=0.2):
    ratio = torch.exp(lp - old).clamp(1 - clip_range, 1 + clip_range)
    return -(ratio * adv * mask).sum() / mask.sum()


def _ppo_ratio_of_logprobs(lp, old, adv, mask, clip_range=0.2):
    ratio = lp / old
    obj = torch.min(ratio * adv, ratio.clamp(1 - clip_range, 1 + clip_range) * adv)
    return -(obj * mask).sum() / mask.sum()


def _ppo_mean_over_padding(lp, old, adv, mask, clip_range=0.2):
    ratio = torch.exp(lp - old)
    obj = torch.min(ratio * adv, ratio.clamp(1 - clip_range, 1 + clip_range) * adv)
    return -(obj * mask).mean()


def _ppo_objective_not_loss(lp, old, adv, mask, clip_range=0.2):
    return -rlhf.ppo_clip_loss(lp, old, adv, mask, clip_range)


def _ppo_fixed_clip(lp, old, adv, mask, clip_range=0.2):
    return rlhf.ppo_clip_loss(lp, old, adv, mask, 0.2)


def _ppo_clip_advantages(lp, old, adv, mask, clip_range=0.2):
    ratio = torch.exp(lp - old)
    obj = torch.min(ratio * adv, ratio * adv.clamp(1 - clip_range, 1 + clip_range))
    return -(obj * mask).sum() / mask.sum()


# --------------------------------------------------------------------------- DPO


def _dpo_no_reference(pc, pr, rc, rr, beta=0.1):
    return F.softplus(-beta * (pc - pr)).mean()


def _dpo_swapped(pc, pr, rc, rr, beta=0.1):
    return rlhf.dpo_loss(pr, pc, rr, rc, beta)


def _dpo_no_beta(pc, pr, rc, rr, beta=0.1):
    return rlhf.dpo_loss(pc, pr, rc, rr, 1.0)


def _dpo_beta_outside(pc, pr, rc, rr, beta=0.1):
    return -beta * F.logsigmoid((pc - rc) - (pr - rr)).mean()


def _dpo_naive_log_sigmoid(pc, pr, rc, rr, beta=0.1):
    return -torch.log(torch.sigmoid(beta * ((pc - rc) - (pr - rr)))).mean()


def _dpo_sum(pc, pr, rc, rr, beta=0.1):
    return F.softplus(-beta * ((pc - rc) - (pr - rr))).sum()


def _dpo_ratio_sign(pc, pr, rc, rr, beta=0.1):
    return F.softplus(-beta * ((rc - pc) - (rr - pr))).mean()


PLANTED_BUGS: dict[str, list[Bug]] = {
    "bradley_terry_loss": [
        ("log(sigmoid) underflows to -inf", _bt_naive_log_sigmoid, "NaN or inf"),
        ("chosen and rejected swapped", _bt_swapped, "(a batch of 6 pairs)"),
        ("sum instead of mean", _bt_sum, "(a batch of 6 pairs)"),
        ("forgets the minus sign", _bt_no_minus, "expected 0.693147, got -0.693147"),
        ("squared error on the margin", _bt_mse, "(one pair with equal rewards (loss = log 2))"),
        ("hinge loss instead of log-sigmoid", _bt_hinge, "expected 0.693147, got 1"),
        ("1 - σ instead of -log σ", _bt_sigmoid_only, "expected 0.693147, got 0.5"),
    ],
    "kl_penalized_rewards": [
        ("score on the first token", _kl_score_first_token, "(one answer of 3 tokens, no padding)"),
        (
            "score on the last column, padding or not",
            _kl_score_last_column,
            "(a batch with padding",
        ),
        ("score added on every token", _kl_score_every_token, "(one answer of 3 tokens"),
        ("KL sign flipped (ref - logprob)", _kl_sign_flipped, "(one answer of 3 tokens"),
        ("penalty not masked on padding", _kl_no_mask, "(a batch with padding"),
        ("ignores kl_coef", _kl_no_beta, "(one answer of 3 tokens"),
        (
            "whole-answer KL at the last token only",
            _kl_sequence_kl_at_end,
            "(one answer of 3 tokens",
        ),
        ("overwrites the logprobs input", _kl_in_place, "changed its input in place"),
    ],
    "compute_gae": [
        ("loops forwards in time", _gae_forward_loop, "(γ = λ = 1"),
        ("forgets λ", _gae_no_lambda, "(γ = 0.9, λ = 0.8"),
        ("no γ on the next value", _gae_no_gamma_on_value, "(γ = 0.9, λ = 0.8"),
        (
            "bootstraps from values on padding",
            _gae_bootstraps_from_padding,
            "(padding after short answers",
        ),
        ("returns = advantages", _gae_returns_are_advantages, "output[1]"),
        ("one-step TD error instead of GAE", _gae_only_delta, "(γ = λ = 1"),
        ("returns one tensor, not (advantages, returns)", _gae_returns_only, "expected a tuple"),
    ],
    "ppo_clip_loss": [
        ("max instead of min", _ppo_max, "(ratios inside and outside"),
        ("no clipping", _ppo_no_clip, "(ratios inside and outside"),
        ("clipped term only", _ppo_clipped_only, "(ratios inside and outside"),
        (
            "ratio of log-probs instead of exp of the difference",
            _ppo_ratio_of_logprobs,
            "(ratios inside",
        ),
        ("mean over padding too", _ppo_mean_over_padding, "(padding is ignored"),
        ("returns the objective (to maximise)", _ppo_objective_not_loss, "(ratio 1 everywhere"),
        ("ignores clip_range", _ppo_fixed_clip, "(clip_range = 0.1)"),
        ("clips the advantages", _ppo_clip_advantages, "(ratio 1 everywhere"),
    ],
    "dpo_loss": [
        ("forgets the reference model", _dpo_no_reference, "(policy = reference (loss = log 2))"),
        ("chosen and rejected swapped", _dpo_swapped, "(a batch of 4"),
        ("forgets β", _dpo_no_beta, "(a batch of 4"),
        ("β outside the log-sigmoid", _dpo_beta_outside, "(policy = reference"),
        ("log(sigmoid) underflows", _dpo_naive_log_sigmoid, "NaN or inf"),
        ("sum instead of mean", _dpo_sum, "(a batch of 4"),
        ("log-ratios upside down (ref - policy)", _dpo_ratio_sign, "(a batch of 4"),
    ],
}


def _bt_logsigmoid(c, r):
    return -F.logsigmoid(c - r).mean()


def _gae_brute_force(rewards, values, mask, gamma=1.0, lam=0.95):
    B, T = rewards.shape
    r, v = rewards * mask, values * mask
    adv = torch.zeros_like(r)
    for b in range(B):
        for t in range(T):
            total = torch.zeros(())
            for k in range(t, T):
                nv = v[b, k + 1] if k + 1 < T else torch.zeros(())
                total = total + (gamma * lam) ** (k - t) * (r[b, k] + gamma * nv - v[b, k])
            adv[b, t] = total
    adv = adv * mask
    return adv, (adv + v) * mask


def _ppo_where(lp, old, adv, mask, clip_range=0.2):
    ratio = (lp - old).exp()
    obj = torch.where(
        adv >= 0,
        torch.minimum(ratio, torch.full_like(ratio, 1 + clip_range)) * adv,
        torch.maximum(ratio, torch.full_like(ratio, 1 - clip_range)) * adv,
    )
    return -(obj * mask).sum() / mask.sum()


def _dpo_logsigmoid(pc, pr, rc, rr, beta=0.1):
    pi = pc - pr
    ref = rc - rr
    return -F.logsigmoid(beta * (pi - ref)).mean()


def _kl_scatter(scores, lp, ref, mask, beta):
    last = mask.sum(1).long() - 1
    onehot = F.one_hot(last, mask.size(1)).to(lp.dtype)
    return (-beta * (lp - ref) + onehot * scores[:, None]) * mask


CORRECT_IMPLEMENTATIONS: dict[str, list[tuple[str, object]]] = {
    "bradley_terry_loss": [
        ("labs.rlhf.bradley_terry_loss as typed", as_typed(rlhf.bradley_terry_loss)),
        ("-logsigmoid", _bt_logsigmoid),
    ],
    "kl_penalized_rewards": [
        ("labs.rlhf.kl_penalized_rewards as typed", as_typed(rlhf.kl_penalized_rewards)),
        ("one-hot of the last token", _kl_scatter),
    ],
    "compute_gae": [
        ("labs.rlhf.compute_gae as typed", as_typed(rlhf.compute_gae)),
        ("brute-force sum of discounted TD errors", _gae_brute_force),
    ],
    "ppo_clip_loss": [
        ("labs.rlhf.ppo_clip_loss as typed", as_typed(rlhf.ppo_clip_loss)),
        ("sign-dependent clipping (torch.where)", _ppo_where),
    ],
    "dpo_loss": [
        ("labs.rlhf.dpo_loss as typed", as_typed(rlhf.dpo_loss)),
        ("-logsigmoid of β times the difference of log-ratios", _dpo_logsigmoid),
    ],
}
