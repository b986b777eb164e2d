"""Instruction tuning: a prompt format, a response-only loss, supervised fine-tuning (SFT).

A pretrained language model continues text; it does not *follow instructions*. SFT
fine-tunes it on (instruction, response) pairs written in one fixed format::

    Q: reverse the word: cat        <- format_prompt(instruction): the prompt
    A: tac                          <- the response ...
                                    <- ... and END_OF_RESPONSE ("\\n") ends it

and computes the loss on the response tokens only (:func:`response_mask`,
:func:`sft_batch`): the model should learn to *answer*, not to predict the questions.
Lesson 06 builds it; lesson 07 (RLHF) starts from a model tuned this way.

The same pieces as TRL's ``SFTTrainer`` with a completion-only collator, at the size of
a character-level GPT with a 64-character context.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from labs.gpt import GPT

# --------------------------------------------------------------------------- the format

INSTRUCTION_MARKER = "Q: "  # starts the prompt
RESPONSE_MARKER = "\nA: "  # ends the prompt: the model answers after it
END_OF_RESPONSE = "\n"  # ends a response; generation stops here
IGNORE_INDEX = -100  # F.cross_entropy's default ignore_index: no loss on this target


def format_prompt(instruction: str) -> str:
    """The prompt for an instruction: ``"Q: {instruction}\\nA: "``.

    The instruction must be one line: a newline is the end-of-response marker.
    """
    if not isinstance(instruction, str):
        raise TypeError(f"instruction must be a str, got {type(instruction).__name__}")
    if END_OF_RESPONSE in instruction:
        raise ValueError(
            f"the instruction {instruction!r} contains the end-of-response marker "
            f"{END_OF_RESPONSE!r}: write it on one line."
        )
    return f"{INSTRUCTION_MARKER}{instruction}{RESPONSE_MARKER}"


def format_example(instruction: str, response: str) -> tuple[str, str]:
    """``(prompt, prompt + response + END_OF_RESPONSE)``: what the model sees in SFT.

    >>> format_example("reverse: ab", "ba")
    ('Q: reverse: ab\\nA: ', 'Q: reverse: ab\\nA: ba\\n')
    """
    if not isinstance(response, str):
        raise TypeError(f"response must be a str, got {type(response).__name__}")
    if END_OF_RESPONSE in response:
        raise ValueError(
            f"the response {response!r} contains the end-of-response marker "
            f"{END_OF_RESPONSE!r}: the model would stop there. Write it on one line."
        )
    prompt = format_prompt(instruction)
    return prompt, prompt + response + END_OF_RESPONSE


# --------------------------------------------------------------------------- the loss


def response_mask(prompt_len: int, total_len: int) -> torch.Tensor:
    """Which next-token targets belong to the response: a bool tensor ``(total_len - 1,)``.

    A sequence of ``total_len`` tokens gives ``total_len - 1`` (input, target) pairs:
    position ``t`` predicts token ``t + 1``. The target is a response token when
    ``t + 1 >= prompt_len``, so the first ``prompt_len - 1`` entries are ``False``.

    >>> response_mask(3, 6)
    tensor([False, False,  True,  True,  True])
    """
    for name, value in (("prompt_len", prompt_len), ("total_len", total_len)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 1 <= prompt_len <= total_len:
        raise ValueError(
            f"need 1 <= prompt_len <= total_len, got prompt_len={prompt_len}, "
            f"total_len={total_len}: the prompt is a non-empty prefix of the sequence."
        )
    return torch.arange(1, total_len) >= prompt_len


def _response_text(response: str) -> str:
    """The response with END_OF_RESPONSE appended (once)."""
    return response if response.endswith(END_OF_RESPONSE) else response + END_OF_RESPONSE


def encode_example(tokenizer, prompt: str, response: str) -> tuple[list[int], int]:
    """Token ids of ``prompt + response + END_OF_RESPONSE`` and the prompt's length.

    ``prompt`` is already formatted (:func:`format_prompt`). A response that already
    ends with ``END_OF_RESPONSE`` does not get a second one.
    """
    try:
        prompt_ids = tokenizer.encode(prompt)
        response_ids = tokenizer.encode(_response_text(response))
    except ValueError as exc:
        raise ValueError(f"cannot encode the example {prompt + response!r}: {exc}") from None
    if not prompt_ids:
        raise ValueError("the prompt is empty: format it with format_prompt(instruction)")
    return prompt_ids + response_ids, len(prompt_ids)


def fits(tokenizer, prompt: str, response: str, block_size: int) -> bool:
    """Whether the example fits the model's context (``len - 1 <= block_size``) and every
    character is in the tokenizer's vocabulary: filter a dataset with it."""
    try:
        ids, _ = encode_example(tokenizer, prompt, response)
    except ValueError:
        return False
    return len(ids) - 1 <= block_size


def sft_batch(
    tokenizer,
    examples: Sequence[tuple[str, str]],
    block_size: int,
    *,
    pad_id: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded SFT batch from ``(prompt, response)`` pairs, prompts already formatted.

    Returns inputs ``x`` (B, T) and targets ``y`` (B, T), ``T`` the longest example minus
    one. ``y`` holds the next token on response positions (END_OF_RESPONSE included) and
    ``IGNORE_INDEX`` (-100) on prompt and padding positions, so
    ``F.cross_entropy(logits.view(-1, V), y.view(-1))`` is the response-only loss.
    Padding goes on the right: with causal attention it cannot affect earlier positions.
    """
    if not examples:
        raise ValueError("sft_batch needs at least one (prompt, response) example")
    encoded = []
    for prompt, response in examples:
        ids, prompt_len = encode_example(tokenizer, prompt, response)
        if len(ids) - 1 > block_size:
            raise ValueError(
                f"the example {prompt + response!r} has {len(ids)} tokens, more than "
                f"block_size + 1 = {block_size + 1}: shorten it, or drop it with "
                "labs.instruct.fits()."
            )
        encoded.append((ids, prompt_len))
    T = max(len(ids) for ids, _ in encoded) - 1
    x = torch.full((len(encoded), T), pad_id, dtype=torch.long)
    y = torch.full((len(encoded), T), IGNORE_INDEX, dtype=torch.long)
    for i, (ids, prompt_len) in enumerate(encoded):
        seq = torch.tensor(ids, dtype=torch.long)
        n = len(ids) - 1
        x[i, :n] = seq[:-1]
        y[i, :n] = seq[1:].masked_fill(~response_mask(prompt_len, len(ids)), IGNORE_INDEX)
    return x, y


def sft_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the targets that are not ``IGNORE_INDEX``.

    ``logits`` (B, T, V), ``targets`` (B, T) → a scalar.
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(
            f"expected logits (B, T, V) and targets (B, T), got {tuple(logits.shape)} "
            f"and {tuple(targets.shape)}"
        )
    if not bool((targets != IGNORE_INDEX).any()):
        raise ValueError("every target is masked: the batch has no response tokens")
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX
    )


# --------------------------------------------------------------------------- training


@dataclass
class SFTConfig:
    """How to fine-tune: AdamW, linear warmup then cosine decay to ``min_lr``."""

    steps: int = 600
    batch_size: int = 32
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 30
    grad_clip: float = 1.0
    betas: tuple[float, float] = (0.9, 0.99)

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"SFTConfig.steps must be an int >= 0, got {self.steps!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(
                f"SFTConfig.batch_size must be a positive int, got {self.batch_size!r}"
            )
        if self.learning_rate <= 0 or self.min_lr < 0:
            raise ValueError("SFTConfig.learning_rate must be > 0 and min_lr >= 0")


def sft_lr(step: int, config: SFTConfig) -> float:
    """Learning rate at ``step``: linear warmup, then cosine decay to ``min_lr``."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / (config.warmup_steps + 1)
    ratio = (step - config.warmup_steps) / max(config.steps - config.warmup_steps, 1)
    coeff = 0.5 * (1.0 + math.cos(math.pi * min(max(ratio, 0.0), 1.0)))
    return config.min_lr + coeff * (config.learning_rate - config.min_lr)


def train_sft(
    model: GPT,
    tokenizer,
    examples: Sequence[tuple[str, str]],
    config: SFTConfig,
    *,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    progress: bool = True,
    on_step=None,
) -> list[float]:
    """Fine-tune ``model`` in place on ``(prompt, response)`` pairs (prompts formatted).

    Each step draws ``batch_size`` examples at random (``generator``), builds an
    :func:`sft_batch` and takes one AdamW step on the response-only loss. Returns the
    loss of every step. ``on_step(step, loss)`` is called after each step (live plots).
    """
    from tqdm.auto import tqdm

    if not examples:
        raise ValueError("train_sft needs at least one (prompt, response) example")
    block_size = model.config.block_size
    for prompt, response in examples:  # fail before training, with the culprit named
        if not fits(tokenizer, prompt, response, block_size):
            sft_batch(tokenizer, [(prompt, response)], block_size)  # raises the clear error
    optimizer = model.configure_optimizers(config.weight_decay, config.learning_rate, config.betas)
    history: list[float] = []
    model.train()
    bar = tqdm(total=config.steps, desc="SFT", disable=not progress, leave=False)
    for step in range(config.steps):
        lr = sft_lr(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        picks = torch.randint(len(examples), (config.batch_size,), generator=generator)
        x, y = sft_batch(tokenizer, [examples[i] for i in picks.tolist()], block_size)
        x, y = x.to(device), y.to(device)
        logits, _ = model(x)
        loss = sft_loss(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        history.append(loss.item())
        if on_step is not None:
            on_step(step, history[-1])
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{history[-1]:.3f}", lr=f"{lr:.1e}")
    bar.close()
    model.eval()
    return history


# --------------------------------------------------------------------------- generation


@torch.no_grad()
def generate_responses(
    model: GPT,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> list[str]:
    """The model's response to each (formatted) prompt, cut at ``END_OF_RESPONSE``.

    Prompts of equal length are decoded together in one batch (no padding, so a batch
    gives exactly what one prompt alone would). ``temperature=0`` is greedy; otherwise
    tokens are sampled with ``generator``. Decoding stops at ``max_new_tokens`` or when
    every prompt of the batch has produced the end marker. A response that never ends
    is returned as generated (``max_new_tokens`` characters).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    block_size = model.config.block_size
    device = next(model.parameters()).device
    end_ids = tokenizer.encode(END_OF_RESPONSE)
    encoded = []
    for prompt in prompts:
        try:
            ids = tokenizer.encode(prompt)
        except ValueError as exc:
            raise ValueError(f"cannot encode the prompt {prompt!r}: {exc}") from None
        if not 1 <= len(ids) <= block_size:
            raise ValueError(
                f"the prompt {prompt!r} has {len(ids)} tokens; it needs 1 to block_size = "
                f"{block_size}: shorten it."
            )
        encoded.append(ids)
    by_length: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(i)
    was_training = model.training
    model.eval()
    outputs: list[str] = [""] * len(prompts)
    for length in sorted(by_length):
        group = by_length[length]
        for start in range(0, len(group), batch_size):
            chunk = group[start : start + batch_size]
            idx = torch.tensor([encoded[i] for i in chunk], dtype=torch.long, device=device)
            new = _decode(model, idx, max_new_tokens, temperature, generator, end_ids)
            for i, row in zip(chunk, new.tolist(), strict=True):
                text = tokenizer.decode(row)
                cut = text.find(END_OF_RESPONSE)
                outputs[i] = text if cut < 0 else text[:cut]
    model.train(was_training)
    return outputs


def _decode(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    generator: torch.Generator | None,
    end_ids: list[int],
) -> torch.Tensor:
    """Continue ``idx`` (B, T) → the new tokens (B, ≤ max_new_tokens); stops early once
    every row contains the end marker."""
    block_size = model.config.block_size
    start = idx.size(1)
    done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    end = torch.tensor(end_ids, device=idx.device)
    for _ in range(max_new_tokens):
        logits, _ = model(idx[:, -block_size:])
        logits = logits[:, -1, :]
        if temperature == 0:
            next_id = logits.argmax(dim=-1, keepdim=True)
        else:
            probs = F.softmax(logits / temperature, dim=-1)
            next_id = torch.multinomial(probs.cpu(), 1, generator=generator).to(idx.device)
        idx = torch.cat([idx, next_id], dim=1)
        if idx.size(1) - start >= len(end_ids):
            done |= (idx[:, -len(end_ids) :] == end).all(dim=1)
        if bool(done.all()):
            break
    return idx[:, start:]


# --------------------------------------------------------------------------- the dataset

LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Task:
    """A task family: how to draw one item, and the phrasings that ask for it.

    ``make(rng)`` returns ``(fields, response)``; each phrasing is a ``str.format``
    template over ``fields``. ``heldout`` phrasings never appear in training.
    """

    name: str
    phrasings: tuple[str, ...]
    heldout: tuple[str, ...]
    make: object  # Callable[[random.Random], tuple[dict[str, str], str]]


def _word(rng) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(3, 5)))


def _quoted(word: str) -> str:
    """Random words are quoted ('cat'): the quotes tell the model which word is the
    argument, whatever the other words of the instruction."""
    return f"'{word}'"


def _reverse(rng):
    w = _word(rng)
    return {"w": _quoted(w)}, w[::-1]


def _upper(rng):
    w = _word(rng)
    return {"w": _quoted(w)}, w.upper()


def _count(rng):
    w = _word(rng)
    return {"w": _quoted(w)}, str(len(w))


def _parity(rng):
    n = rng.randint(0, 9999)
    return {"n": str(n)}, "even" if n % 2 == 0 else "odd"


def _lookup(rng):
    # Two variables, x and y, in either order, and the question names one of them. With
    # eight possible names ("xyzpqmnk") this model stays at chance (50 %) after the whole SFT
    # budget: matching a name to an earlier one needs an induction-style circuit that takes
    # it far longer to learn (lesson 06, "Going further").
    a, b = rng.sample("xy", 2)
    x, y = rng.randint(0, 99), rng.randint(0, 99)
    if rng.random() < 0.5:
        return {"a": a, "x": str(x), "b": b, "y": str(y), "q": a}, str(x)
    return {"a": a, "x": str(x), "b": b, "y": str(y), "q": b}, str(y)


def _first(rng):
    w = _word(rng)
    return {"w": _quoted(w)}, w[0]


# Training families: six phrasings seen in training, two held out (new wordings built from
# familiar words). Each family puts its argument first in some phrasings and last in others:
# when every count phrasing ended with the word, "'dsu': how many letters?" got 'usd' back,
# since a word at the start meant "reverse". The held-out family ("first letter") is never
# trained on at all.
TASKS: tuple[Task, ...] = (
    Task(
        "reverse",
        (
            "reverse {w}",
            "reverse the word {w}",
            "{w} reversed",
            "spell {w} backwards",
            "write {w} backwards",
            "flip {w}",
        ),
        ("{w} backwards", "reverse this: {w}"),
        _reverse,
    ),
    Task(
        "uppercase",
        (
            "uppercase {w}",
            "{w} in uppercase",
            "capitalise {w}",
            "make {w} uppercase",
            "write {w} in capitals",
            "{w} in capitals",
        ),
        ("uppercase this: {w}", "{w} to uppercase"),
        _upper,
    ),
    Task(
        "count",
        (
            "count the letters: {w}",
            "length of {w}?",
            "how many letters in {w}?",
            "{w}: count the letters",
            "{w}: letter count?",
            "{w} is how long?",
        ),
        ("length of the word {w}?", "{w}: how many letters?"),
        _count,
    ),
    Task(
        "parity",
        (
            "is {n} even or odd?",
            "{n}: even or odd?",
            "parity of {n}?",
            "{n} even or odd",
            "{n}: parity?",
            "even or odd: {n}",
        ),
        ("{n}: odd or even?", "parity: {n}"),
        _parity,
    ),
    Task(
        "lookup",
        (
            "{a}={x}, {b}={y}. {q}?",
            "{a} is {x}, {b} is {y}. {q}?",
            "if {a}={x}, {b}={y}: {q}",
            "{a}={x} and {b}={y}. {q}?",
            "given {a}={x}, {b}={y}, {q}?",
            "{a}={x}; {b}={y}; {q}=?",
        ),
        ("{a} is {x} and {b} is {y}. {q}?", "let {a}={x}, {b}={y}. {q}?"),
        _lookup,
    ),
)
HELDOUT_TASK = Task(
    "first letter",
    ("first letter of {w}",),
    ("first letter of {w}", "{w}: first letter?", "initial of {w}"),
    _first,
)


# Training instructions sometimes get a filler word before or after them, so that the
# model learns the tasks wherever the word stands, not at one fixed position.
PREFIXES = ("now ", "ok, ", "hey, ", "quick: ")
SUFFIXES = (" now", " thanks", "!")


def make_examples(
    task: Task, phrasings: Sequence[str], n: int, seed: int, *, fillers: bool = False
) -> list[tuple[str, str]]:
    """``n`` random ``(instruction, response)`` pairs of ``task``, cycling through
    ``phrasings`` (seeded: the same seed gives the same list). ``fillers=True`` adds a
    random :data:`PREFIXES` or :data:`SUFFIXES` filler to half of them."""
    import random

    if not phrasings:
        raise ValueError(f"task {task.name!r}: need at least one phrasing")
    rng = random.Random(f"{task.name}/{seed}")
    out = []
    for i in range(n):
        fields, response = task.make(rng)
        instruction = phrasings[i % len(phrasings)].format(**fields)
        if fillers and rng.random() < 0.5:
            if rng.random() < 0.5:
                instruction = rng.choice(PREFIXES) + instruction
            else:
                instruction = instruction + rng.choice(SUFFIXES)
        out.append((instruction, response))
    return out


SPLITS = ("train", "seen", "heldout_phrasing", "heldout_family")


@dataclass
class InstructionData:
    """The lesson's data, ``family -> split -> [(instruction, response), ...]``.

    Splits: ``train`` (seen phrasings of the training families), ``seen`` (new items,
    seen phrasings), ``heldout_phrasing`` (the training families asked in phrasings
    never trained on) and ``heldout_family`` (a task family never trained on).
    """

    by_family: dict[str, dict[str, list[tuple[str, str]]]]

    def split(self, name: str) -> list[tuple[str, str]]:
        """All the pairs of one split, family after family."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}: choose one of {', '.join(SPLITS)}")
        return [ex for splits in self.by_family.values() for ex in splits.get(name, [])]

    @property
    def train(self) -> list[tuple[str, str]]:
        return self.split("train")

    def eval_splits(self) -> dict[str, list[tuple[str, str]]]:
        """The three evaluation splits by name."""
        return {name: self.split(name) for name in SPLITS[1:]}

    def keep_fitting(self, tokenizer, block_size: int) -> InstructionData:
        """A copy without the pairs that do not fit ``block_size`` or the vocabulary."""
        return InstructionData(
            {
                family: {k: keep_fitting(tokenizer, v, block_size) for k, v in splits.items()}
                for family, splits in self.by_family.items()
            }
        )


def build_dataset(
    n_train: int, n_eval: int, *, seed: int = 0, tasks: Sequence[Task] = TASKS
) -> InstructionData:
    """``n_train`` training pairs per family and ``n_eval`` per family in each eval split.

    Training and evaluation items are drawn with different seeds, and an eval item that
    also occurs in training is dropped: "seen" means a seen *phrasing*, not a memorised
    answer.
    """
    if n_train < 1 or n_eval < 1:
        raise ValueError(f"need n_train >= 1 and n_eval >= 1, got {n_train} and {n_eval}")
    by_family = {
        t.name: {"train": make_examples(t, t.phrasings, n_train, seed, fillers=True)} for t in tasks
    }
    known = {ex for splits in by_family.values() for ex in splits["train"]}

    def fresh(task: Task, phrasings: Sequence[str], offset: int) -> list[tuple[str, str]]:
        items = make_examples(task, phrasings, 2 * n_eval, seed + offset)
        new = [ex for ex in items if ex not in known][:n_eval]
        if len(new) < n_eval:
            raise ValueError(
                f"task {task.name!r}: only {len(new)} of {n_eval} evaluation items are not "
                f"already in the training data ({n_train} pairs cover most of its items): "
                "use a smaller n_train or n_eval, or give the task more possible items"
            )
        return new

    for t in tasks:
        by_family[t.name]["seen"] = fresh(t, t.phrasings, 1000)
        by_family[t.name]["heldout_phrasing"] = fresh(t, t.heldout, 2000)
    by_family[HELDOUT_TASK.name] = {
        "heldout_family": fresh(HELDOUT_TASK, HELDOUT_TASK.heldout, 3000)
    }
    return InstructionData(by_family)


def keep_fitting(
    tokenizer, examples: Sequence[tuple[str, str]], block_size: int
) -> list[tuple[str, str]]:
    """The ``(instruction, response)`` pairs whose formatted text fits the context and
    the vocabulary (see :func:`fits`); the rest are dropped."""
    return [ex for ex in examples if fits(tokenizer, format_prompt(ex[0]), ex[1], block_size)]


def as_sft(examples: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(instruction, response)`` → ``(formatted prompt, response)``, what :func:`sft_batch`
    and :func:`train_sft` take."""
    return [(format_prompt(instruction), response) for instruction, response in examples]


def responder(
    model: GPT,
    tokenizer,
    *,
    max_new_tokens: int = 8,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> Callable[[list[str]], list[str]]:
    """``respond(prompts) -> responses``: the model behind a plain function (greedy by
    default), what :func:`exact_match_accuracy` asks."""

    def respond(prompts: list[str]) -> list[str]:
        return generate_responses(
            model,
            tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            generator=generator,
        )

    return respond


def exact_match_accuracy(
    respond: Callable[[list[str]], list[str]], examples: Sequence[tuple[str, str]]
) -> float:
    """Fraction of ``(instruction, response)`` pairs answered exactly.

    Each instruction is formatted with :func:`format_prompt`; ``respond`` gets all the
    prompts in one list and returns one response per prompt. A response counts only
    when it equals the reference character for character.
    """
    if not examples:
        raise ValueError("exact_match_accuracy needs at least one (instruction, response) pair")
    prompts = [format_prompt(instruction) for instruction, _ in examples]
    answers = respond(prompts)
    if len(answers) != len(prompts):
        raise ValueError(f"respond returned {len(answers)} responses for {len(prompts)} prompts")
    correct = sum(
        answer == reference for answer, (_, reference) in zip(answers, examples, strict=True)
    )
    return correct / len(examples)


# --------------------------------------------------------------------------- the lesson's model

SFT_NAME = "gpt06_sft"


def lesson_recipe(smoke: bool) -> tuple[int, int, SFTConfig]:
    """Lesson 06's sizes: ``(n_train, n_eval, config)`` — training pairs per family,
    evaluation pairs per family and split, and the SFT recipe."""
    if smoke:
        return 100, 12, SFTConfig(steps=400, batch_size=16, learning_rate=3e-3, warmup_steps=5)
    return 12000, 100, SFTConfig(steps=2000, batch_size=32, learning_rate=1e-3, warmup_steps=30)


def base_fingerprint(model: torch.nn.Module) -> str:
    """A short sha256 of a model's weights: names the exact starting point of a fine-tune
    in a checkpoint's config."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def sft_checkpoint_config(base: GPT, n_train: int, config: SFTConfig, seed: int) -> dict:
    """What identifies a tuned model in the checkpoint cache."""
    return {"base": base_fingerprint(base), "sft": asdict(config), "n_train": n_train, "seed": seed}


def tuned(
    *,
    smoke: bool,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> tuple[GPT, object]:
    """Lesson 06's instruction-tuned GPT and its tokenizer.

    Lesson 03's model (:func:`labs.gpt.pretrained`) fine-tuned on the lesson's
    instruction data; loaded from the checkpoint cache when lesson 06 (or an earlier
    call) tuned it with the same recipe, otherwise tuned now (a few minutes in full mode).
    """
    from labs import checkpoints
    from labs.gpt import pretrained

    model, tokenizer = pretrained(smoke=smoke, device=device, seed=seed, progress=progress)
    n_train, n_eval, config = lesson_recipe(smoke)
    data = build_dataset(n_train, n_eval, seed=seed).keep_fitting(
        tokenizer, model.config.block_size
    )

    def finetune(model: GPT) -> None:
        train_sft(
            model,
            tokenizer,
            as_sft(data.train),
            config,
            generator=torch.Generator().manual_seed(seed),
            device=device,
            progress=progress,
        )

    checkpoints.load_or_train(
        SFT_NAME,
        model,
        sft_checkpoint_config(model, n_train, config, seed),
        finetune,
        how="lesson 06 section 6, or labs.instruct.tuned()",
    )
    return model.eval(), tokenizer
