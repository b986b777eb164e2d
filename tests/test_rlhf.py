"""Tests for labs.rlhf against independent references (brute force, closed forms)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from labs import rlhf
from labs.gpt import GPT, GPTConfig
from labs.instruct import END_OF_RESPONSE, format_prompt
from labs.tokenizers import CharTokenizer

END = END_OF_RESPONSE


@pytest.fixture(scope="module")
def tokenizer() -> CharTokenizer:
    text = "".join(sorted(set("abcdefghijklmnopqrstuvwxyzQA:?., \n")))
    return CharTokenizer.from_text(text)


@pytest.fixture(scope="module")
def tiny(tokenizer) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size, block_size=40, n_layer=1, n_head=2, n_embd=16
    )
    return GPT(config).eval()


def _mask(lengths, width):
    return (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).float()


# --------------------------------------------------------------------------- the hidden preference


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ("great and tasty.\n", 1.0),
        ("it was bad.\n", -1.0),
        ("good, but cold.\n", 0.0),
        ("the pasta was ok.\n", 0.0),
        ("great and tasty.", -1.5),  # never ended
        ("great and tsaty.\n", -1.5),  # typo
        ("great and great.\n", -1.5),  # repeated adjective
        ("it was great\n", -1.5),  # no final period
        ("it was nice and fresh and good and great.\n", -1.5),  # too long
        ("it was.\n", -1.5),  # no adjective
    ],
)
def test_true_score(answer, score):
    assert rlhf.true_score(answer, END) == pytest.approx(score)


def test_sft_demonstrations_are_well_formed():
    examples = rlhf.make_sft_examples(300, format_prompt, seed=1)
    assert len({e[1] for e in examples}) > 100
    for prompt, answer in examples:
        assert prompt.startswith("Q: how was the ") and prompt.endswith("?\nA: ")
        assert rlhf.is_well_formed(answer + END, END), answer
    assert len({len(p) for p in rlhf.make_prompts(50, format_prompt)}) == 1


# --------------------------------------------------------------------------- exercises' references


def test_bradley_terry_loss_matches_the_probability_model():
    g = torch.Generator().manual_seed(0)
    c, r = (
        torch.randn(7, generator=g, dtype=torch.float64),
        torch.randn(7, generator=g, dtype=torch.float64),
    )
    expected = -torch.log(1 / (1 + torch.exp(-(c - r)))).mean()
    torch.testing.assert_close(rlhf.bradley_terry_loss(c, r), expected)
    assert math.isfinite(
        rlhf.bradley_terry_loss(torch.tensor([-500.0]), torch.tensor([500.0])).item()
    )


def test_kl_penalized_rewards_brute_force():
    g = torch.Generator().manual_seed(1)
    lp, ref = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    scores, mask, beta = torch.tensor([1.0, -2.0, 0.5]), _mask([6, 1, 3], 6), 0.3
    got = rlhf.kl_penalized_rewards(scores, lp, ref, mask, beta)
    for b, n in enumerate([6, 1, 3]):
        for t in range(6):
            want = (
                0.0
                if t >= n
                else -beta * (lp[b, t] - ref[b, t]).item()
                + (scores[b].item() if t == n - 1 else 0.0)
            )
            assert got[b, t].item() == pytest.approx(want, abs=1e-6)


def test_gae_matches_brute_force_and_monte_carlo():
    g = torch.Generator().manual_seed(2)
    rewards, values = torch.randn(4, 7, generator=g), torch.randn(4, 7, generator=g)
    mask = _mask([7, 3, 1, 5], 7)
    gamma, lam = 0.9, 0.7
    adv, ret = rlhf.compute_gae(rewards, values, mask, gamma, lam)
    for b, n in enumerate([7, 3, 1, 5]):
        v = [values[b, k].item() for k in range(n)] + [0.0]
        for t in range(7):
            if t >= n:
                assert adv[b, t] == 0 and ret[b, t] == 0
                continue
            want = sum(
                (gamma * lam) ** (k - t) * (rewards[b, k].item() + gamma * v[k + 1] - v[k])
                for k in range(t, n)
            )
            assert adv[b, t].item() == pytest.approx(want, abs=1e-5)
            assert ret[b, t].item() == pytest.approx(want + v[t], abs=1e-5)
    # λ = 1: returns are the discounted Monte-Carlo returns
    _, ret1 = rlhf.compute_gae(rewards, values, mask, gamma, 1.0)
    n = 5
    mc = sum(gamma**k * rewards[3, k].item() for k in range(n))
    assert ret1[3, 0].item() == pytest.approx(mc, abs=1e-5)


def test_ppo_clip_loss_elementwise():
    g = torch.Generator().manual_seed(3)
    old = torch.randn(2, 5, generator=g)
    lp = old + 0.5 * torch.randn(2, 5, generator=g)
    adv = torch.randn(2, 5, generator=g)
    mask = _mask([5, 3], 5)
    terms = []
    for b in range(2):
        for t in range(5):
            if mask[b, t]:
                rho = math.exp(lp[b, t].item() - old[b, t].item())
                a = adv[b, t].item()
                terms.append(-min(rho * a, min(max(rho, 0.8), 1.2) * a))
    got = rlhf.ppo_clip_loss(lp, old, adv, mask, 0.2)
    assert got.item() == pytest.approx(sum(terms) / len(terms), abs=1e-5)
    # the gradient vanishes where the ratio is clipped on the advantage's side
    lp2 = torch.tensor([[math.log(1.5), math.log(0.5)]], requires_grad=True)
    rlhf.ppo_clip_loss(
        lp2, torch.zeros(1, 2), torch.tensor([[1.0, -1.0]]), torch.ones(1, 2)
    ).backward()
    assert torch.equal(lp2.grad, torch.zeros(1, 2))


def test_dpo_loss_is_bradley_terry_on_implicit_rewards():
    g = torch.Generator().manual_seed(4)
    pc, pr, rc, rr = (-5 * torch.rand(6, generator=g) for _ in range(4))
    beta = 0.3
    got = rlhf.dpo_loss(pc, pr, rc, rr, beta)
    torch.testing.assert_close(got, rlhf.bradley_terry_loss(beta * (pc - rc), beta * (pr - rr)))
    assert rlhf.dpo_loss(pc, pr, pc, pr, beta).item() == pytest.approx(math.log(2))


def test_win_rate_counts_ties_half():
    assert (
        rlhf.win_rate(torch.tensor([1.0, 0.0, -1.0, 0.5]), torch.tensor([0.0, 0.0, 0.0, 1.0]))
        == 0.375
    )
    with pytest.raises(ValueError, match="one score per prompt"):
        rlhf.win_rate(torch.zeros(3), torch.zeros(4))


def test_whiten_ignores_padding():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = _mask([3], 4)
    w = rlhf.whiten(x, mask)
    assert w[0, 3] == 0
    assert w[0, :3].mean().abs() < 1e-6 and (w[0, :3].pow(2).mean() - 1).abs() < 1e-4


# --------------------------------------------------------------------------- models and sampling


def test_sample_stops_at_the_end_marker(tokenizer, tiny):
    prompts = rlhf.make_prompts(8, format_prompt, seed=0)
    ids = rlhf.encode_prompts(tokenizer, prompts)
    roll = rlhf.sample(
        tiny, ids, tokenizer.encode(END), 12, generator=torch.Generator().manual_seed(0)
    )
    assert roll.ids.shape[0] == 8 and roll.mask.shape == roll.response.shape
    for text, row in zip(roll.texts(tokenizer), roll.mask, strict=True):
        n = int(row.sum())
        assert torch.all(row[:n] == 1) and torch.all(row[n:] == 0)
        assert END not in text[:-1]  # the end marker, if any, is the last kept token
        assert len(text) == n
    with pytest.raises(ValueError, match="exceeds block_size"):
        rlhf.sample(tiny, ids, tokenizer.encode(END), 40)


def test_prompts_of_different_lengths_are_refused(tokenizer):
    with pytest.raises(ValueError, match="same number of characters"):
        rlhf.encode_prompts(tokenizer, ["Q: a\nA: ", "Q: ab\nA: "])


def test_value_head_keeps_the_language_model(tokenizer, tiny):
    policy = rlhf.CausalLMWithValueHead(copy.deepcopy(tiny))
    ids = torch.randint(tokenizer.vocab_size, (2, 10))
    logits, values = policy(ids)
    torch.testing.assert_close(logits, tiny(ids)[0])
    assert values.shape == (2, 10)


def test_reward_model_ignores_padding_and_checks_pooling(tiny):
    with pytest.raises(ValueError, match="pooling"):
        rlhf.RewardModel(tiny, pooling="mean")
    for pooling in ("sum", "last"):
        rm = rlhf.RewardModel(tiny, pooling=pooling)
        nn_init = torch.Generator().manual_seed(5)
        torch.nn.init.normal_(rm.score_head.weight, generator=nn_init)
        ids = torch.randint(tiny.config.vocab_size, (2, 12), generator=nn_init)
        mask = _mask([4, 6], 6)
        changed = ids.clone()
        changed[0, 6 + 4 :] = (changed[0, 6 + 4 :] + 1) % tiny.config.vocab_size
        torch.testing.assert_close(rm(ids, mask, 6), rm(changed, mask, 6))
    # the reward model's trunk is a copy: training it leaves the policy alone
    assert rm.pretrained_model is not tiny


def test_preference_pairs_and_a_training_step_each(tokenizer, tiny):
    g = torch.Generator().manual_seed(0)
    prompts = rlhf.make_prompts(16, format_prompt, seed=0)
    pairs = rlhf.collect_preferences(tiny, tokenizer, prompts, END, 8, keep_ties=True, generator=g)
    assert len(pairs) == 16  # an untrained model: every answer malformed, all ties kept
    assert torch.equal(
        pairs.chosen.ids[:, : pairs.chosen.prompt_len],
        pairs.rejected.ids[:, : pairs.rejected.prompt_len],
    )
    dropped = rlhf.collect_preferences(tiny, tokenizer, prompts, END, 8, generator=g)
    assert len(dropped) == 0
    with pytest.raises(ValueError, match="no preference pairs"):
        rlhf.train_reward_model(
            rlhf.RewardModel(tiny), dropped, rlhf.RewardConfig(), progress=False
        )

    rm = rlhf.RewardModel(tiny)
    losses = rlhf.train_reward_model(
        rm, pairs, rlhf.RewardConfig(epochs=1, batch_size=8), generator=g, progress=False
    )
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    rm.normalise([pairs.chosen, pairs.rejected])
    assert rlhf.reward_accuracy(rm, pairs) == 0.5  # every pair ties in truth: half credit
    pairs.true_chosen[:] = 1.0  # now the truth prefers "chosen" everywhere
    expected = (rm.score(pairs.chosen) > rm.score(pairs.rejected)).float().mean().item()
    assert rlhf.reward_accuracy(rm, pairs) == pytest.approx(expected)
    pairs.true_chosen[:] = rlhf.MALFORMED_SCORE
    scores = torch.cat([rm.score(pairs.chosen), rm.score(pairs.rejected)])
    assert scores.mean().abs() < 1e-4

    policy = rlhf.CausalLMWithValueHead(copy.deepcopy(tiny))
    config = rlhf.PPOConfig(
        iterations=2, batch_size=8, mini_batch_size=4, ppo_epochs=1, max_new_tokens=8
    )
    stats = rlhf.ppo_train(
        policy,
        copy.deepcopy(tiny),
        rm,
        tokenizer,
        prompts,
        END,
        config,
        generator=g,
        progress=False,
    )
    assert len(stats.history) == 2
    assert all(math.isfinite(v) for row in stats.history for v in row.values())

    dpo_policy = copy.deepcopy(tiny)
    history = rlhf.dpo_train(
        dpo_policy,
        copy.deepcopy(tiny),
        pairs,
        rlhf.DPOConfig(epochs=1, batch_size=8),
        generator=g,
        progress=False,
    )
    assert len(history) == 2 and history[0]["dpo_loss"] == pytest.approx(math.log(2), abs=1e-4)

    ev = rlhf.evaluate_policy(dpo_policy, tiny, rm, tokenizer, prompts, END, 8)
    summary = ev.summary()
    assert set(summary) == {"true", "proxy", "kl", "well_formed"}
    assert len(ev.texts) == 16
