"""labs.gpt against independent references: brute-force attention, hand-counted
parameters, sorted-probability nucleus sampling, nanoGPT's schedule, and training that
really lowers the loss."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from labs import gpt
from labs.gpt import GPT, GPTConfig, TrainConfig


def tiny(**overrides) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=8)
    return GPT(replace(config, **overrides))


def test_forward_shapes_and_loss_at_init_is_ln_vocab():
    model = tiny(vocab_size=50, n_embd=32)
    g = torch.Generator().manual_seed(1)
    idx, targets = torch.randint(50, (2, 4, 16), generator=g)
    logits, loss = model(idx, targets)
    assert logits.shape == (4, 16, 50)
    assert abs(loss.item() - math.log(50)) < 0.05  # small init: near-uniform predictions
    logits_only, no_loss = model(idx)
    assert no_loss is None and torch.equal(logits_only, logits)


def test_attention_matches_brute_force_masked_softmax():
    model = tiny()
    attn = model.transformer.h[0].attn
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(2))
    q, k, v = attn.c_attn(x).split(8, dim=2)
    out = torch.zeros(2, 5, 8)
    head = 4
    for b in range(2):
        for h in range(2):
            cols = slice(h * head, (h + 1) * head)
            for t in range(5):
                scores = torch.stack(
                    [(q[b, t, cols] @ k[b, s, cols]) / math.sqrt(head) for s in range(t + 1)]
                )
                weights = scores.softmax(0)
                out[b, t, cols] = sum(weights[s] * v[b, s, cols] for s in range(t + 1))
    expected = attn.c_proj(out)
    torch.testing.assert_close(attn(x), expected, atol=1e-6, rtol=1e-5)


def test_causal_future_tokens_do_not_change_past_logits():
    model = tiny()
    a = torch.randint(11, (1, 12), generator=torch.Generator().manual_seed(3))
    b = a.clone()
    b[0, 7:] = (b[0, 7:] + 1) % 11
    la, _ = model(a)
    lb, _ = model(b)
    torch.testing.assert_close(la[:, :7], lb[:, :7])
    assert not torch.allclose(la[:, 7:], lb[:, 7:])


def test_parameter_count_by_hand_and_weight_tying():
    V, T, L, C = 11, 16, 2, 8
    model = tiny()
    per_block = (
        2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    )
    by_hand = V * C + T * C + L * per_block + 2 * C
    assert model.num_params(non_embedding=False) == by_hand
    assert model.num_params() == by_hand - T * C
    assert model.lm_head.weight is model.transformer.wte.weight


def test_optimizer_groups_cover_every_parameter_once_and_decay_only_matrices():
    model = tiny()
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])


def test_config_errors_say_what_to_do():
    with pytest.raises(ValueError, match="divisible by n_head"):
        GPTConfig(n_embd=10, n_head=4)
    with pytest.raises(ValueError, match="positive int"):
        GPTConfig(n_layer=0)
    model = tiny()
    with pytest.raises(ValueError, match="exceeds block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.zeros(17, dtype=torch.long))


# --------------------------------------------------------------------------- sampling


def _nucleus_brute_force(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    probs = logits.softmax(-1).tolist()
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    keep, total = [], 0.0
    for i in order:
        keep.append(i)
        total += probs[i]
        if total >= top_p:
            break
    out = torch.full_like(logits, float("-inf"))
    out[keep] = logits[keep]
    return out


@pytest.mark.parametrize("top_p", [0.05, 0.3, 0.5, 0.9, 0.999, 1.0])
def test_top_p_matches_brute_force(top_p):
    g = torch.Generator().manual_seed(4)
    for _ in range(20):
        logits = 3 * torch.randn(13, generator=g)
        expected = _nucleus_brute_force(logits, top_p)
        assert torch.equal(gpt.filter_logits(logits[None], top_p=top_p)[0], expected)


def test_top_k_keeps_the_k_largest_and_batches_independently():
    logits = torch.tensor([[1.0, 5.0, 3.0, 2.0], [4.0, 0.0, -1.0, 9.0]])
    out = gpt.filter_logits(logits, top_k=2)
    assert torch.isfinite(out).sum(dim=1).tolist() == [2, 2]
    assert torch.isfinite(out[0]).tolist() == [False, True, True, False]
    assert torch.isfinite(out[1]).tolist() == [True, False, False, True]
    assert torch.equal(gpt.filter_logits(logits, top_k=100), logits)
    assert torch.equal(gpt.filter_logits(logits), logits)
    with pytest.raises(ValueError, match="top_k"):
        gpt.filter_logits(logits, top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        gpt.filter_logits(logits, top_p=0.0)


def test_greedy_generate_is_the_argmax_loop_and_sampling_is_seeded():
    model = tiny()
    start = torch.tensor([[1, 2, 3]])
    greedy = model.generate(start, 20, temperature=0)
    idx = start
    for _ in range(20):
        logits, _ = model(idx[:, -16:])
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(greedy, idx)
    a = model.generate(start, 10, generator=torch.Generator().manual_seed(5), top_k=3)
    b = model.generate(start, 10, generator=torch.Generator().manual_seed(5), top_k=3)
    assert torch.equal(a, b) and a.shape == (1, 13)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(start, 1, temperature=-1)


# --------------------------------------------------------------------------- training


def test_lr_schedule_matches_nanogpt():
    config = TrainConfig(max_steps=2000, learning_rate=1e-3, min_lr=1e-4, warmup_steps=100)

    def nanogpt_lr(it):  # nanoGPT's train.py get_lr, with lr_decay_iters = max_iters
        if it < 100:
            return 1e-3 * (it + 1) / (100 + 1)
        ratio = (it - 100) / (2000 - 100)
        return 1e-4 + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (1e-3 - 1e-4)

    for it in (0, 50, 99, 100, 101, 500, 1000, 1999, 2000):
        assert gpt.lr_at(it, config) == pytest.approx(nanogpt_lr(it))


def test_time_budget_schedule_warms_up_by_steps_and_ends_at_min_lr():
    config = TrainConfig(learning_rate=1e-3, min_lr=1e-4, warmup_steps=10, seconds=60.0)
    assert gpt.lr_at(0, config, progress=0.5) == pytest.approx(1e-3 / 11)  # still warming up
    assert gpt.lr_at(10, config, progress=0.0) == pytest.approx(1e-3)
    assert gpt.lr_at(500, config, progress=0.5) == pytest.approx(5.5e-4)
    assert gpt.lr_at(900, config, progress=1.0) == pytest.approx(1e-4)
    assert gpt.lr_at(999, config, progress=1.3) == pytest.approx(1e-4)  # the last step runs over


def test_get_batch_targets_are_inputs_shifted_by_one():
    data = torch.arange(100)
    x, y = gpt.get_batch(data, 8, 10, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 10)
    assert torch.equal(y, x + 1)
    with pytest.raises(ValueError, match="need more than block_size"):
        gpt.get_batch(torch.arange(10), 2, 10)


def test_evaluate_is_the_mean_loss_over_every_window():
    model = tiny()
    data = torch.randint(11, (16 * 5 + 3,), generator=torch.Generator().manual_seed(6))
    losses = []
    for w in range(5):
        x = data[w * 16 : (w + 1) * 16][None]
        y = data[w * 16 + 1 : (w + 1) * 16 + 1][None]
        losses.append(F.cross_entropy(model(x)[0][0], y[0]).item())
    assert gpt.evaluate(model, data, batch_size=2) == pytest.approx(sum(losses) / 5, rel=1e-5)


def test_training_learns_a_repeating_text_and_is_deterministic():
    data = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 60)
    config = TrainConfig(batch_size=8, max_steps=150, learning_rate=1e-2, warmup_steps=10)
    config = replace(config, eval_interval=50, eval_batches=2)
    results = []
    for _ in range(2):
        model = tiny()
        seen = []
        result = gpt.train(
            model,
            data,
            data,
            config,
            generator=torch.Generator().manual_seed(0),
            progress=False,
            on_eval=lambda step, train, val, seen=seen: seen.append(step),
        )
        results.append((gpt.evaluate(model, data), result))
    (loss_a, result_a), (loss_b, _) = results
    assert loss_a < 0.1 < math.log(11)  # the sequence is deterministic: near-zero loss
    assert loss_a == loss_b
    assert result_a.steps == 150 and result_a.tokens == 150 * 8 * 16
    assert [h["step"] for h in result_a.history] == [50, 100, 150]


def test_preset_baseline_is_nanogpts_cpu_recipe():
    model_config, train_config = gpt.preset("nanogpt-cpu", vocab_size=65)
    assert (model_config.n_layer, model_config.n_head, model_config.n_embd) == (4, 4, 128)
    assert model_config.block_size == 64 and model_config.dropout == 0.0
    assert (train_config.batch_size, train_config.max_steps) == (12, 2000)
    assert (train_config.learning_rate, train_config.min_lr) == (1e-3, 1e-4)
    assert train_config.warmup_steps == 100 and train_config.betas == (0.9, 0.99)
    assert (train_config.eval_interval, train_config.eval_batches) == (250, 20)
    with pytest.raises(ValueError, match="unknown config"):
        gpt.preset("huge", 65)


def test_command_line_prints_one_json_line(tmp_path, capsys):
    text = tmp_path / "tiny.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. 我是人类 🙂\n" * 200)
    assert gpt.main(["train", "--text", str(text), "--seconds", "1.5", "--config", "small"]) == 0
    report = json.loads(capsys.readouterr().out.strip())
    for key in ("val_loss", "train_tokens", "tokens_per_s", "seconds", "params"):
        assert key in report
    assert 0 < report["val_loss"] < math.log(report["vocab_size"]) + 0.5
    assert report["train_tokens"] > 0 and report["tokens_per_s"] > 0
    assert report["seconds"] >= 1.5  # the budget is used, not cut short


def test_command_line_reports_a_missing_file_clearly(tmp_path, capsys):
    assert gpt.main(["train", "--text", str(tmp_path / "nope.txt"), "--seconds", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_pretrained_trains_once_then_loads_from_the_cache(capsys):
    """Later lessons call gpt.pretrained(): the first call trains (smoke recipe), the next loads."""
    first, tokenizer = gpt.pretrained(smoke=True, progress=False)
    assert "training it now" in capsys.readouterr().out
    second, _ = gpt.pretrained(smoke=True, progress=False)
    assert "loaded" in capsys.readouterr().out
    second_state = second.state_dict()
    for name, a in first.state_dict().items():
        b = second_state[name]
        assert torch.equal(a, b), name
    assert first.config.vocab_size == tokenizer.vocab_size
    text = "The return statement leaves a function. " * 4
    data = torch.tensor(tokenizer.encode(text))
    assert gpt.evaluate(first, data) < math.log(tokenizer.vocab_size) - 1.0  # it learned


def test_generate_uses_the_logits_filter_it_is_given():
    """Lesson 03 plugs the learner's filter into GPT.generate."""
    model = tiny()
    start = torch.tensor([[1, 2, 3]])

    def sample(**kwargs):
        g = torch.Generator().manual_seed(7)
        return model.generate(start, 15, top_k=3, top_p=0.9, generator=g, **kwargs)

    assert torch.equal(sample(), sample(logits_filter=gpt.filter_logits))

    def only_the_best(logits, top_k=None, top_p=None):  # a filter that makes sampling greedy
        return gpt.filter_logits(logits, top_k=1)

    assert torch.equal(
        sample(logits_filter=only_the_best), model.generate(start, 15, temperature=0)
    )
