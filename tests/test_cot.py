"""Tests for labs.cot: formats against brute force, the safe evaluator, the cached sampler
against GPT.generate, and the clear errors."""

from __future__ import annotations

import random

import pytest
import torch

from labs import cot
from labs.gpt import GPT, GPTConfig, TrainConfig


@pytest.fixture(scope="module")
def tokenizer():
    return cot.make_tokenizer()


@pytest.fixture(scope="module")
def tiny_model(tokenizer):
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size, block_size=48, n_layer=2, n_head=2, n_embd=32
    )
    return GPT(config).eval()


# --------------------------------------------------------------------------- problems and formats


def test_problem_prompt_and_answer():
    p = cot.Problem(345, 978, "+")
    assert p.prompt() == " " * (cot.WIDTH - 3) + "345 plus " + " " * (cot.WIDTH - 3) + "978:"
    assert p.prompt(trigger=True) == p.prompt() + cot.TRIGGER
    with pytest.raises(ValueError, match="WIDTH"):
        cot.Problem(10**cot.WIDTH, 1, "+").prompt()
    assert (p.answer, p.n_digits) == (1323, 3)
    assert cot.Problem(3456, 7, "*").answer == 24192


@pytest.mark.parametrize("bad", [dict(a=1, b=2, op="/"), dict(a=-1, b=2, op="+")])
def test_problem_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        cot.Problem(**bad)


def test_make_problem_digit_counts():
    rng = random.Random(0)
    for n in range(1, 7):
        for op in "+*":
            p = cot.make_problem(n, op, rng)
            assert len(str(p.a)) == n
            assert len(str(p.b)) == (n if op == "+" else 1)
    with pytest.raises(ValueError, match="n_digits"):
        cot.make_problem(0, "+", rng)


def test_held_out_problems_are_fixed_and_alternate_ops():
    a = cot.held_out_problems(10, 4, seed=0)
    assert a == cot.held_out_problems(10, 4, seed=0)
    assert [p.op for p in a[:4]] == ["+", "*", "+", "*"]
    assert all(p.n_digits == 4 for p in a)


def test_format_scratchpad_examples():
    assert cot.format_scratchpad(345, 978, "+") == "5+8+0=13,4+7+1=12,3+9+1=13#1323"
    assert cot.format_scratchpad(3456, 7, "*") == "6*7+0=42,5*7+4=39,4*7+3=31,3*7+3=24#24192"
    assert cot.format_scratchpad(9999, 1, "+") == "9+1+0=10,9+0+1=10,9+0+1=10,9+0+1=10#10000"


def test_scratchpad_steps_reconstruct_the_answer():
    """Brute force: the unit digits of the steps, plus the last value, spell the answer."""
    rng = random.Random(1)
    for _ in range(300):
        p = cot.make_problem(rng.randint(1, 7), rng.choice("+*"), rng)
        steps = cot.scratchpad_steps(p.a, p.b, p.op)
        units = "".join(str(v % 10) for *_, v in steps[:-1])
        assert int(str(steps[-1][3]) + units[::-1]) == p.answer
        assert cot.extract_answer(cot.format_scratchpad(p.a, p.b, p.op)) == p.answer


def test_scratchpad_rejects_bad_input():
    with pytest.raises(ValueError, match="longer number first"):
        cot.scratchpad_steps(1, 99, "+")
    with pytest.raises(ValueError, match="op must be"):
        cot.scratchpad_steps(1, 2, "-")
    with pytest.raises(ValueError, match="one digit"):
        cot.scratchpad_steps(123, 45, "*")


def test_format_completion_every_format():
    p = cot.Problem(12, 34, "+")
    assert cot.format_completion(p, "direct") == "#46\n"
    assert cot.format_completion(p, "scratchpad") == "2+4+0=06,1+3+0=04#46\n"
    assert (
        cot.format_completion(p, "pal")
        == " " * (cot.WIDTH - 2) + "12+" + " " * (cot.WIDTH - 2) + "34\n"
    )
    assert cot.answer_of(cot.format_completion(p, "pal"), "pal") == 46
    with pytest.raises(ValueError, match="unknown format"):
        cot.format_completion(p, "poem")


def test_trigger_mixture_pairs_the_marker_with_worked_solutions():
    rng = random.Random(0)
    p = cot.Problem(12, 34, "+")
    examples = [cot.make_example(p, "trigger", rng) for _ in range(50)]
    assert {c for _, c in examples} == {"#46\n", "2+4+0=06,1+3+0=04#46\n"}
    for prompt, completion in examples:
        assert prompt.endswith(cot.TRIGGER) == (completion != "#46\n")
    with pytest.raises(ValueError, match="rng"):
        cot.make_example(p, "trigger")


def test_every_character_is_in_the_vocabulary(tokenizer):
    p = cot.Problem(98765, 43210, "+")
    for fmt in cot.FORMATS:
        tokenizer.encode(p.prompt(trigger=True) + cot.format_completion(p, fmt))


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a#12", 12),
        ("#1#2", 2),
        ("12", None),
        ("#", None),
        ("#1x", None),
        ("#7\n#8", 7),
        ("#²", None),
    ],
)
def test_extract_answer(text, expected):
    assert cot.extract_answer(text) == expected


def test_majority_vote():
    assert cot.majority_vote([1, 2, 2]) == 2
    assert cot.majority_vote([None, None, 3]) == 3
    assert cot.majority_vote([5, 6, 6, 5]) == 5
    assert cot.majority_vote([]) is None
    assert cot.majority_vote(iter([None])) is None


def test_safe_eval_matches_python_arithmetic():
    rng = random.Random(0)
    for _ in range(200):
        x, y, z = (rng.randint(0, 10**6) for _ in range(3))
        o1, o2 = rng.choice("+-*"), rng.choice("+-*")
        program = f"({x}{o1}{y}){o2}{z}"
        expected = {"+": x + y, "-": x - y, "*": x * y}[o1]
        expected = {"+": expected + z, "-": expected - z, "*": expected * z}[o2]
        assert cot.safe_eval(program) == expected
    assert cot.safe_eval(" -3 * 4 ") == -12


@pytest.mark.parametrize(
    "program",
    [
        "__import__('os')",
        "x+1",
        "2**10",
        "7/2",
        "1.5+1",
        "abs(-1)",
        "(1).real",
        "1 if 1 else 2",
        "",
        "1+",
        "9" * 300,
    ],
)
def test_safe_eval_rejects_everything_else(program):
    with pytest.raises(ValueError):
        cot.safe_eval(program)


def test_answer_of_runs_programs_and_reads_chains():
    assert cot.answer_of("345+978", "pal") == 1323
    assert cot.answer_of("345+", "pal") is None
    assert cot.answer_of("3+4+0=7#7", "scratchpad") == 7


def test_accuracy():
    problems = [cot.Problem(1, 2, "+"), cot.Problem(3, 4, "*")]
    assert cot.accuracy(problems, [3, 11]) == 0.5
    with pytest.raises(ValueError, match="as many answers"):
        cot.accuracy(problems, [3])


# --------------------------------------------------------------------------- batches, training, generation


def test_encode_batch_masks_the_prompt(tokenizer):
    examples = [("1 plus 2:", "#3\n"), ("12 times 3:", "2*3+0=06,1*3+0=03#36\n")]
    x, y = cot.encode_batch(examples, tokenizer, block_size=64)
    assert x.shape == y.shape == (2, len("12 times 3:2*3+0=06,1*3+0=03#36\n") - 1)
    for row, (prompt, completion) in enumerate(examples):
        kept = y[row][y[row] >= 0].tolist()
        assert tokenizer.decode(kept) == completion
        assert (y[row, : len(prompt) - 1] == -1).all()
        assert tokenizer.decode(x[row, : len(prompt)].tolist()) == prompt
    with pytest.raises(ValueError, match="block_size"):
        cot.encode_batch(examples, tokenizer, block_size=8)


def test_cached_forward_matches_the_model(tiny_model, tokenizer):
    idx = torch.tensor([tokenizer.encode("345 plus 978:5+8+0")] * 2)
    full, _ = tiny_model(idx)
    logits, cache = cot._forward_cached(tiny_model, idx[:, :10], None)
    for t in range(10, idx.size(1)):
        logits, cache = cot._forward_cached(tiny_model, idx[:, t : t + 1], cache)
    torch.testing.assert_close(logits, full[:, -1], atol=1e-5, rtol=1e-5)


def test_greedy_generate_matches_gpt_generate(tiny_model, tokenizer):
    prompts = ["345 plus 978:", "7 times 3:", "12 plus 34:", "345 plus 111:"]
    got = cot.generate(tiny_model, tokenizer, prompts, max_new_tokens=12)
    for prompt, completion in zip(prompts, got, strict=True):
        idx = torch.tensor([tokenizer.encode(prompt)])
        ref = tokenizer.decode(
            tiny_model.generate(idx, 12, temperature=0)[0, idx.size(1) :].tolist()
        )
        assert completion == ref.split(cot.END, 1)[0]


def test_sampling_is_seeded(tiny_model, tokenizer):
    prompts = ["345 plus 978:"] * 3

    def sample(seed):
        g = torch.Generator().manual_seed(seed)
        return cot.generate(tiny_model, tokenizer, prompts, 10, temperature=1.0, generator=g)

    assert sample(0) == sample(0)
    assert sample(0) != sample(1)
    with pytest.raises(ValueError, match="temperature"):
        cot.generate(tiny_model, tokenizer, prompts, 10, temperature=-1.0)


def test_training_learns_and_self_consistency_runs(tokenizer):
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size, block_size=48, n_layer=2, n_head=2, n_embd=32
    )
    model = GPT(config)
    recipe = TrainConfig(
        batch_size=16, max_steps=60, learning_rate=1e-2, min_lr=1e-3, warmup_steps=5
    )
    losses = cot.train_format(model, tokenizer, "direct", [1], recipe, progress=False)
    assert len(losses) == 60
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:5]) / 5
    problems = cot.held_out_problems(6, 1, seed=0)
    curve = cot.self_consistency(model, tokenizer, problems, "direct", 3, temperature=1.0)
    assert len(curve) == 3 and all(0.0 <= a <= 1.0 for a in curve)
    assert curve == cot.self_consistency(model, tokenizer, problems, "direct", 3, temperature=1.0)


def test_train_format_rejects_an_unknown_format(tiny_model, tokenizer):
    with pytest.raises(ValueError, match="unknown format"):
        cot.train_format(tiny_model, tokenizer, "poem", [1], TrainConfig(max_steps=1))


def test_max_completion_chars_fits_every_completion():
    rng = random.Random(0)
    for n in range(1, cot.WIDTH + 1):
        for op in "+*":
            p = cot.make_problem(n, op, rng)
            for fmt in cot.FORMATS:
                assert len(cot.format_completion(p, fmt)) <= cot.max_completion_chars(n, fmt)
