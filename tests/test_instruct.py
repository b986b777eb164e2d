"""labs.instruct against independent references: a hand-written template, brute-force
masks, a per-token loss loop, one-prompt-at-a-time greedy decoding, and SFT that really
teaches a tiny model a task."""

from __future__ import annotations

import itertools
import re

import pytest
import torch
import torch.nn.functional as F

from labs import instruct
from labs.gpt import GPT, GPTConfig
from labs.instruct import (
    END_OF_RESPONSE,
    IGNORE_INDEX,
    SFTConfig,
    format_example,
    format_prompt,
    generate_responses,
    response_mask,
    sft_batch,
    sft_loss,
    train_sft,
)
from labs.tokenizers import CharTokenizer

TOK = CharTokenizer("\n :;!?=,.'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def tiny(block_size: int = 48) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=TOK.vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=32
    )
    return GPT(config)


# --------------------------------------------------------------------------- format


def test_format_prompt_and_example():
    assert format_prompt("reverse ab") == "Q: reverse ab\nA: "
    prompt, full = format_example("reverse ab", "ba")
    assert prompt == "Q: reverse ab\nA: "
    assert full == "Q: reverse ab\nA: ba" + END_OF_RESPONSE
    assert full.startswith(prompt) and full.endswith(END_OF_RESPONSE)
    assert all(c in TOK.stoi for c in full)


def test_format_rejects_the_end_marker_inside():
    with pytest.raises(ValueError, match="one line"):
        format_prompt("two\nlines")
    with pytest.raises(ValueError, match="one line"):
        format_example("ok", "two\nlines")
    with pytest.raises(TypeError, match="str"):
        format_prompt(3)


# --------------------------------------------------------------------------- mask and batch


@pytest.mark.parametrize(("prompt_len", "total_len"), [(1, 2), (3, 6), (5, 5), (1, 9), (8, 9)])
def test_response_mask_matches_brute_force(prompt_len, total_len):
    expected = torch.tensor([t + 1 >= prompt_len for t in range(total_len - 1)], dtype=torch.bool)
    got = response_mask(prompt_len, total_len)
    assert got.dtype == torch.bool and got.shape == (total_len - 1,)
    assert torch.equal(got, expected)


def test_response_mask_clear_errors():
    with pytest.raises(ValueError, match="prompt_len <= total_len"):
        response_mask(7, 6)
    with pytest.raises(ValueError, match="non-empty"):
        response_mask(0, 6)
    with pytest.raises(TypeError, match="int"):
        response_mask(2.0, 6)


def test_sft_batch_targets_are_the_response_only():
    examples = [(format_prompt("reverse abc"), "cba"), (format_prompt("up ab"), "AB")]
    x, y = sft_batch(TOK, examples, block_size=48)
    longest = max(len(p) + len(r) + len(END_OF_RESPONSE) for p, r in examples)
    assert x.shape == y.shape == (2, longest - 1)
    for row, (prompt, response) in enumerate(examples):
        text = prompt + response + END_OF_RESPONSE
        ids = TOK.encode(text)
        n = len(ids) - 1
        assert x[row, :n].tolist() == ids[:-1]
        kept = [t for t in y[row].tolist() if t != IGNORE_INDEX]
        assert TOK.decode(kept) == response + END_OF_RESPONSE  # every response token, in order
        assert (y[row, : len(prompt) - 1] == IGNORE_INDEX).all()
        assert (y[row, n:] == IGNORE_INDEX).all()  # padding


def test_sft_batch_does_not_double_the_end_marker():
    a = sft_batch(TOK, [(format_prompt("x"), "y")], 48)
    b = sft_batch(TOK, [(format_prompt("x"), "y" + END_OF_RESPONSE)], 48)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_sft_batch_clear_errors():
    with pytest.raises(ValueError, match="block_size"):
        sft_batch(TOK, [(format_prompt("a" * 40), "b" * 10)], block_size=48)
    with pytest.raises(ValueError, match="not in this CharTokenizer"):
        sft_batch(TOK, [(format_prompt("ünïcode"), "x")], block_size=48)
    with pytest.raises(ValueError, match="at least one"):
        sft_batch(TOK, [], block_size=48)
    assert instruct.fits(TOK, format_prompt("abc"), "cba", 48)
    assert not instruct.fits(TOK, format_prompt("a" * 40), "b" * 10, 48)
    assert not instruct.fits(TOK, format_prompt("ü"), "b", 48)


def test_sft_loss_equals_a_per_token_loop():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g)
    targets = torch.tensor([[IGNORE_INDEX, 3, 1, IGNORE_INDEX, 0], [6, IGNORE_INDEX] * 2 + [2]])
    terms = [
        -F.log_softmax(logits[b, t], -1)[targets[b, t]]
        for b in range(2)
        for t in range(5)
        if targets[b, t] != IGNORE_INDEX
    ]
    torch.testing.assert_close(sft_loss(logits, targets), torch.stack(terms).mean())
    with pytest.raises(ValueError, match="no response tokens"):
        sft_loss(logits, torch.full((2, 5), IGNORE_INDEX))


def test_prompt_tokens_get_no_gradient_signal():
    """Changing a prompt's *targets* cannot change the loss: only responses count."""
    model = tiny()
    x, y = sft_batch(TOK, [(format_prompt("reverse abc"), "cba")], 48)
    y2 = y.clone()
    logits, _ = model(x)
    assert sft_loss(logits, y).item() == sft_loss(logits, y2).item()
    prompt_len = len(format_prompt("reverse abc"))
    assert (y[0, : prompt_len - 1] == IGNORE_INDEX).all()


# --------------------------------------------------------------------------- generation and SFT


def _greedy_one(model: GPT, prompt: str, max_new_tokens: int) -> str:
    idx = torch.tensor([TOK.encode(prompt)])
    out = TOK.decode(model.generate(idx, max_new_tokens, temperature=0.0)[0].tolist())
    response = out[len(prompt) :]
    cut = response.find(END_OF_RESPONSE)
    return response if cut < 0 else response[:cut]


def test_batched_greedy_generation_equals_one_prompt_at_a_time():
    model = tiny()
    prompts = [format_prompt(p) for p in ("abc", "reverse xy", "hello", "a", "up dog")]
    got = generate_responses(model, TOK, prompts, max_new_tokens=6, batch_size=2)
    assert got == [_greedy_one(model, p, 6) for p in prompts]
    assert all(END_OF_RESPONSE not in r and len(r) <= 6 for r in got)


def test_sampling_is_seeded_and_errors_are_clear():
    model = tiny()
    prompts = [format_prompt("abc")] * 3
    a = generate_responses(
        model,
        TOK,
        prompts,
        max_new_tokens=5,
        temperature=1.0,
        generator=torch.Generator().manual_seed(0),
    )
    b = generate_responses(
        model,
        TOK,
        prompts,
        max_new_tokens=5,
        temperature=1.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert a == b
    with pytest.raises(ValueError, match="temperature"):
        generate_responses(model, TOK, prompts, max_new_tokens=5, temperature=-1)
    with pytest.raises(ValueError, match="block_size"):
        generate_responses(model, TOK, ["x" * 60], max_new_tokens=5)
    with pytest.raises(ValueError, match="not in this CharTokenizer"):
        generate_responses(model, TOK, ["ü"], max_new_tokens=5)


def test_train_sft_teaches_a_tiny_model_to_reverse():
    words = ["abc", "dog", "cat", "xyz", "pqr", "sun", "map", "key"]
    examples = instruct.as_sft([(f"reverse {w}", w[::-1]) for w in words])
    model = tiny()
    config = SFTConfig(steps=150, batch_size=8, learning_rate=3e-3, warmup_steps=10)
    history = train_sft(
        model, TOK, examples, config, generator=torch.Generator().manual_seed(0), progress=False
    )
    assert len(history) == 150 and history[-1] < 0.3 * history[0]
    respond = instruct.responder(model, TOK, max_new_tokens=5)
    accuracy = instruct.exact_match_accuracy(respond, [(f"reverse {w}", w[::-1]) for w in words])
    assert accuracy >= 0.75  # memorised its training set
    with pytest.raises(ValueError, match="block_size"):
        train_sft(model, TOK, [(format_prompt("a" * 45), "b")], config, generator=torch.Generator())


def test_lr_schedule_warms_up_then_decays_to_min():
    config = SFTConfig(steps=100, learning_rate=1e-3, min_lr=1e-4, warmup_steps=10)
    lrs = [instruct.sft_lr(s, config) for s in range(101)]
    assert lrs[0] < lrs[9] < lrs[10] == pytest.approx(1e-3)
    assert lrs[100] == pytest.approx(1e-4)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))


# --------------------------------------------------------------------------- the dataset


def _template_regex(template: str) -> re.Pattern:
    """The template's instructions, with or without one of the training fillers."""
    pattern = re.escape(template)
    for field in ("w", "n", "a", "b", "q", "x", "y"):
        pattern = pattern.replace(re.escape("{" + field + "}"), "[a-z0-9']+")
    prefix = "|".join(re.escape(p) for p in instruct.PREFIXES)
    suffix = "|".join(re.escape(p) for p in instruct.SUFFIXES)
    return re.compile(f"(?:{prefix})?{pattern}(?:{suffix})?")


def test_dataset_is_seeded_and_holds_out_whole_phrasings_and_a_family():
    data = instruct.build_dataset(50, 20, seed=0)
    assert data.by_family == instruct.build_dataset(50, 20, seed=0).by_family
    assert data.by_family != instruct.build_dataset(50, 20, seed=1).by_family
    train = set(data.train)
    for task in instruct.TASKS:
        splits = data.by_family[task.name]
        assert len(splits["train"]) == 50 and len(splits["seen"]) == 20
        heldout = [_template_regex(t) for t in task.heldout]
        seen = [_template_regex(t) for t in task.phrasings]
        for instruction, _response in splits["train"]:
            assert not any(r.fullmatch(instruction) for r in heldout), instruction
            assert any(r.fullmatch(instruction) for r in seen), instruction
        for instruction, _ in splits["heldout_phrasing"]:
            assert any(r.fullmatch(instruction) for r in heldout), instruction
        for name in ("seen", "heldout_phrasing"):
            assert not train & set(splits[name]), f"{task.name}/{name} overlaps training"
    family = data.by_family[instruct.HELDOUT_TASK.name]
    assert set(family) == {"heldout_family"} and len(family["heldout_family"]) == 20
    assert all(task.name != instruct.HELDOUT_TASK.name for task in instruct.TASKS)


def test_responses_are_right():
    data = instruct.build_dataset(30, 10, seed=3)
    for instruction, response in data.by_family["reverse"]["train"]:
        assert f"'{response[::-1]}'" in instruction
    for instruction, response in data.by_family["uppercase"]["train"]:
        assert response.isupper() and response.lower() in instruction
    for instruction, response in data.by_family["parity"]["train"]:
        n = int(re.search(r"\d+", instruction).group())
        assert response == ("even" if n % 2 == 0 else "odd")
    for instruction, response in data.by_family["first letter"]["heldout_family"]:
        assert len(response) == 1 and response in instruction
    for instruction, response in data.by_family["count"]["train"]:
        assert response == str(len(re.search(r"'([a-z]+)'", instruction).group(1)))
    for instruction, response in data.by_family["lookup"]["train"]:
        values = dict(re.findall(r"([xy])(?:=| is )(\d+)", instruction))
        asked = re.findall(r"[xy]", instruction)[-1]  # the question comes last (fillers: no x, y)
        assert set(values) == {"x", "y"} and response == values[asked], instruction


def test_dataset_refuses_evaluation_splits_it_cannot_fill():
    """A task with few possible items: its evaluation items would all be training items."""
    tiny = instruct.Task("coin", ("toss {c}",), ("flip {c}",), lambda rng: ({"c": "a"}, "a"))
    with pytest.raises(ValueError, match="only 0 of 5 evaluation items"):
        instruct.build_dataset(20, 5, tasks=(tiny,))


def test_keep_fitting_drops_what_does_not_fit():
    data = instruct.build_dataset(40, 10, seed=0)
    small = data.keep_fitting(TOK, 24)
    for pairs in small.eval_splits().values():
        for instruction, response in pairs:
            assert len(format_prompt(instruction) + response + END_OF_RESPONSE) - 1 <= 24
    assert 0 < len(small.train) < len(data.train)
    assert len(data.keep_fitting(TOK, 64).train) == len(data.train)
    with pytest.raises(ValueError, match="unknown split"):
        data.split("test")


def test_tuned_model_is_cached():
    model, tok = instruct.tuned(smoke=True, progress=False)
    again, _ = instruct.tuned(smoke=True, progress=False)
    for (name, a), (_, b) in zip(
        model.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert tok.vocab_size == model.config.vocab_size
