"""Chain-of-thought on arithmetic: direct answers, scratchpads and program-aided answers.

Lesson 05 trains lesson 03's small GPT (:class:`labs.gpt.GPT`) from scratch on
multi-digit arithmetic written in three formats and compares them:

- ``direct``: ``"345 plus 978:" -> "#1323"`` — the whole carry chain in the forward pass
  that writes the first answer digit;
- ``scratchpad``: ``"345 plus 978:" -> "5+8+0=13,4+7+1=12,3+9+1=13#1323"`` — one small
  step per digit, least significant first, each reading the carry the previous step
  wrote down (Nye et al., 2021; Wei et al., 2022);
- ``pal``: ``"345 plus 978:" -> "     345+     978"`` — the model writes a program (here a
  Python expression, columns kept) and :func:`safe_eval` runs it (Gao et al., 2022).

Every completion ends with :data:`END`. Answers are read back with :func:`extract_answer`
(after the last :data:`ANSWER` mark) and combined over samples with :func:`majority_vote`
(self-consistency, Wang et al., 2022). Generation here keeps a key/value cache and
batches prompts of equal length, so evaluating hundreds of chains is quick on a CPU.
"""

from __future__ import annotations

import ast
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from labs.gpt import GPT, TrainConfig, lr_at
from labs.tokenizers import CharTokenizer

OPS: dict[str, str] = {"+": "plus", "*": "times"}  # operator -> how the question says it
FORMATS: tuple[str, ...] = ("direct", "scratchpad", "pal")
END = "\n"  # ends every completion
ANSWER = "#"  # the final answer follows the last '#' (GSM8K writes '####')
STEP_SEP = ","  # between scratchpad steps
TRIGGER = " Let's think step by step."  # Kojima et al. (2022)
WIDTH = 8  # questions right-align both numbers in columns of this width, as on paper
ALPHABET = "".join(sorted(set("0123456789+*=,#: \n" + "".join(OPS.values()) + TRIGGER)))


def make_tokenizer() -> CharTokenizer:
    """The character tokenizer for every format of this lesson (a fixed alphabet)."""
    return CharTokenizer.from_text(ALPHABET)


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """``a op b`` with ``op`` in :data:`OPS`; ``a`` has :attr:`n_digits` digits."""

    a: int
    b: int
    op: str

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"op must be one of {sorted(OPS)}, got {self.op!r}")
        if self.a < 0 or self.b < 0:
            raise ValueError(f"operands must be non-negative ints, got a={self.a}, b={self.b}")

    @property
    def n_digits(self) -> int:
        return len(str(self.a))

    @property
    def answer(self) -> int:
        return self.a + self.b if self.op == "+" else self.a * self.b

    def prompt(self, trigger: bool = False) -> str:
        """The question with both numbers right-aligned in :data:`WIDTH` columns, e.g.
        ``"     345 plus      978:"`` (with :data:`TRIGGER` appended if asked).

        Aligned columns put digit i of every number at the same position whatever its
        length, as when you add on paper: the model's position embeddings can find it.
        """
        if max(len(str(self.a)), len(str(self.b))) > WIDTH:
            raise ValueError(f"numbers longer than WIDTH={WIDTH} digits do not fit the question")
        question = f"{self.a:>{WIDTH}} {OPS[self.op]} {self.b:>{WIDTH}}:"
        return question + (TRIGGER if trigger else "")


def make_problem(n_digits: int, op: str, rng: random.Random) -> Problem:
    """A random problem: ``a`` with exactly ``n_digits`` digits; for ``+`` so has ``b``,
    for ``*`` ``b`` is one digit from 2 to 9 (n-digit times 1-digit multiplication)."""
    if not isinstance(n_digits, int) or n_digits < 1:
        raise ValueError(f"n_digits must be a positive int, got {n_digits!r}")
    low, high = 10 ** (n_digits - 1), 10**n_digits - 1
    a = rng.randint(low, high)
    b = rng.randint(low, high) if op == "+" else rng.randint(2, 9)
    return Problem(a, b, op)


def sample_problems(
    count: int,
    digits: Sequence[int],
    rng: random.Random,
    ops: Sequence[str] = tuple(OPS),
    weights: Sequence[float] | None = None,
) -> list[Problem]:
    """``count`` problems, each with a digit count drawn from ``digits`` (with ``weights``,
    default uniform) and an op drawn from ``ops``."""
    if not digits or not ops:
        raise ValueError("digits and ops must be non-empty, e.g. digits=[1, 2, 3], ops=['+']")
    ns = rng.choices(list(digits), weights=weights, k=count)
    return [make_problem(n, rng.choice(list(ops)), rng) for n in ns]


def held_out_problems(
    count: int, n_digits: int, seed: int, ops: Sequence[str] = tuple(OPS)
) -> list[Problem]:
    """A fixed test set: ``count`` problems of ``n_digits`` digits, ops alternating.

    Drawn from a different stream than training (``seed`` + 10_000 + n_digits); with 5
    digits a repeat of a training problem is very unlikely (about 10^9 possible sums).
    """
    rng = random.Random(seed + 10_000 + n_digits)
    return [make_problem(n_digits, ops[i % len(ops)], rng) for i in range(count)]


# --------------------------------------------------------------------------- formats


def scratchpad_steps(a: int, b: int, op: str) -> list[tuple[int, int, int, int]]:
    """Grade-school steps, least significant digit first: ``(digit, other, carry_in, value)``.

    For ``+``: ``value = a_i + b_i + carry`` over the digits of ``a`` (``b`` padded with 0);
    for ``*`` (``b`` one digit): ``value = a_i * b + carry``. The next carry is ``value // 10``.
    """
    if op not in OPS:
        raise ValueError(f"op must be one of {sorted(OPS)}, got {op!r}")
    digits_a = [int(d) for d in reversed(str(a))]
    digits_b = [int(d) for d in reversed(str(b))]
    if op == "+" and len(digits_b) > len(digits_a):
        raise ValueError(f"for '+' write the longer number first, got {a} + {b}")
    if op == "*" and not 0 <= b <= 9:
        raise ValueError(f"for '*' the second number must be one digit, got {b}")
    steps, carry = [], 0
    for i, x in enumerate(digits_a):
        y = (digits_b[i] if i < len(digits_b) else 0) if op == "+" else b
        value = x + y + carry if op == "+" else x * y + carry
        steps.append((x, y, carry, value))
        carry = value // 10
    return steps


def format_scratchpad(a: int, b: int, op: str) -> str:
    """The worked solution, e.g. ``format_scratchpad(345, 978, "+")`` →
    ``"5+8+0=13,4+7+1=12,3+9+1=13#1323"`` and ``(3456, 7, "*")`` →
    ``"6*7+0=42,5*7+4=39,4*7+3=31,3*7+3=24#24192"``. Every step has the same width: the
    value is written with two digits (``"2+4+0=06"``)."""
    steps = [f"{x}{op}{y}+{c}={v:02d}" for x, y, c, v in scratchpad_steps(a, b, op)]
    answer = a + b if op == "+" else a * b
    return STEP_SEP.join(steps) + ANSWER + str(answer)


def format_completion(problem: Problem, fmt: str) -> str:
    """What the model should write after the prompt, :data:`END` included."""
    if fmt == "direct":
        body = ANSWER + str(problem.answer)
    elif fmt == "scratchpad":
        body = format_scratchpad(problem.a, problem.b, problem.op)
    elif fmt == "pal":  # the question in Python's syntax, columns kept (Python ignores spaces)
        body = f"{problem.a:>{WIDTH}}{problem.op}{problem.b:>{WIDTH}}"
    else:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return body + END


def make_example(problem: Problem, fmt: str, rng: random.Random | None = None) -> tuple[str, str]:
    """``(prompt, completion)`` for training. ``fmt="trigger"`` is the mixture of the
    trigger experiment: half direct answers, half scratchpads preceded by :data:`TRIGGER`
    in the prompt (``rng`` picks which)."""
    if fmt == "trigger":
        if rng is None:
            raise ValueError("fmt='trigger' needs rng to choose between the two halves")
        worked = rng.random() < 0.5
        return problem.prompt(trigger=worked), format_completion(
            problem, "scratchpad" if worked else "direct"
        )
    return problem.prompt(), format_completion(problem, fmt)


# --------------------------------------------------------------------------- reading answers


def extract_answer(text: str) -> int | None:
    """The integer after the last :data:`ANSWER` mark (up to :data:`END`), else ``None``.

    ``"5+8+0=13,...#1323"`` → ``1323``; no mark, nothing or a non-digit after it → ``None``.
    """
    text = text.split(END, 1)[0]
    if ANSWER not in text:
        return None
    tail = text.rsplit(ANSWER, 1)[1].strip()
    return int(tail) if tail.isascii() and tail.isdigit() else None


def majority_vote(answers: Iterable[int | None]) -> int | None:
    """The most common answer, ignoring ``None`` (unreadable chains); ties go to the
    answer seen first; ``None`` when there is no readable answer at all."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    return counts.most_common(1)[0][0]  # Counter keeps first-seen order among ties


_AST_OPS: dict[type, Callable[[int, int], int]] = {
    ast.Add: lambda x, y: x + y,
    ast.Sub: lambda x, y: x - y,
    ast.Mult: lambda x, y: x * y,
}
MAX_PROGRAM_CHARS = 200


def safe_eval(program: str) -> int:
    """Evaluate an integer expression with ``+``, ``-``, ``*`` and parentheses, safely.

    Parses with :mod:`ast` and walks the tree; anything else (names, calls, ``**``,
    division, floats, attributes) is a ``ValueError`` — never ``eval``.
    """
    if not isinstance(program, str) or not program.strip():
        raise ValueError("the program is empty: expected an expression such as '345+978'")
    if len(program) > MAX_PROGRAM_CHARS:
        raise ValueError(f"the program is {len(program)} characters, at most {MAX_PROGRAM_CHARS}")
    try:
        tree = ast.parse(program.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid expression: {program!r} ({exc.msg})") from None

    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _AST_OPS:
            return _AST_OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError(
            f"only integers, +, -, * and parentheses are allowed; found {type(node).__name__} "
            f"in {program!r}"
        )

    return walk(tree)


def answer_of(completion: str, fmt: str) -> int | None:
    """The answer a completion gives: run the program for ``pal``, else :func:`extract_answer`."""
    if fmt == "pal":
        try:
            return safe_eval(completion.split(END, 1)[0])
        except ValueError:
            return None
    return extract_answer(completion)


# --------------------------------------------------------------------------- model + training


def encode_batch(
    examples: Sequence[tuple[str, str]], tokenizer: CharTokenizer, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prompt, completion)`` pairs → inputs ``x`` and targets ``y``, both (B, T).

    Sequences are padded with :data:`END`; ``y`` is the next token on the completion and
    ``-1`` (ignored by the loss) on the prompt and the padding: the model learns to
    answer, not to predict the random question.
    """
    pad = tokenizer.encode(END)[0]
    rows = [(tokenizer.encode(p), tokenizer.encode(c)) for p, c in examples]
    length = max(len(p) + len(c) for p, c in rows) - 1
    if length > block_size:
        raise ValueError(
            f"an example has {length + 1} tokens, more than block_size={block_size} + 1: "
            "use fewer digits or a larger block_size."
        )
    x = torch.full((len(rows), length), pad, dtype=torch.long)
    y = torch.full((len(rows), length), -1, dtype=torch.long)
    for i, (p, c) in enumerate(rows):
        seq = torch.tensor(p + c)
        x[i, : len(seq) - 1] = seq[:-1]
        y[i, len(p) - 1 : len(seq) - 1] = seq[len(p) :]
    return x, y


def train_format(
    model: GPT,
    tokenizer: CharTokenizer,
    fmt: str,
    digits: Sequence[int],
    config: TrainConfig,
    *,
    ops: Sequence[str] = tuple(OPS),
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` for ``config.max_steps`` steps on fresh random problems in ``fmt``.

    Same optimiser and schedule as :func:`labs.gpt.train` (AdamW, warmup + cosine, clipping),
    but every batch is ``config.batch_size`` new problems with the loss on the completion
    only. A problem with n digits is drawn with weight n²: long problems hold the late
    steps, which short ones never reach. ``fmt`` is one of :data:`FORMATS` or ``"trigger"``
    (see :func:`make_example`). Returns the training loss of every step;
    ``on_step(step, loss)`` is called every 25 steps (for a live plot).
    """
    from tqdm.auto import tqdm

    if fmt not in (*FORMATS, "trigger"):
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)} or 'trigger'")
    rng = random.Random(seed)
    weights = [n * n for n in digits]
    optimizer = model.configure_optimizers(config.weight_decay, config.learning_rate, config.betas)
    model.train()
    losses = []
    bar = tqdm(range(config.max_steps), desc=f"training ({fmt})", disable=not progress, leave=False)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        problems = sample_problems(config.batch_size, digits, rng, ops, weights=weights)
        x, y = encode_batch(
            [make_example(p, fmt, rng) for p in problems], tokenizer, model.config.block_size
        )
        logits, _ = model(x.to(device))
        loss = F.cross_entropy(logits.flatten(0, 1), y.to(device).flatten(), ignore_index=-1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % 25 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if on_step is not None:
                on_step(step + 1, losses[-1])
    model.eval()
    return losses


# --------------------------------------------------------------------------- generation


def _forward_cached(
    model: GPT, idx: torch.Tensor, cache: list[tuple[torch.Tensor, torch.Tensor]] | None
) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Run ``idx`` (B, T_new) after the cached keys/values; return last logits (B, V) and
    the grown cache. Same maths as ``GPT.forward`` in eval mode."""
    tr = model.transformer
    past = 0 if cache is None else cache[0][0].size(2)
    B, T = idx.shape
    if past + T > model.config.block_size:
        raise ValueError(
            f"generation reached {past + T} tokens, more than block_size={model.config.block_size}"
        )
    x = tr.wte(idx) + tr.wpe(torch.arange(past, past + T, device=idx.device))
    new_cache = []
    for i, block in enumerate(tr.h):
        attn = block.attn
        C, H = x.size(-1), attn.n_head
        q, k, v = attn.c_attn(block.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            k = torch.cat([cache[i][0], k], dim=2)
            v = torch.cat([cache[i][1], v], dim=2)
        new_cache.append((k, v))
        # the prompt attends causally; a single new token sees everything before it
        y = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None and T > 1)
        x = x + attn.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(tr.ln_f(x[:, -1])), new_cache


@torch.no_grad()
def generate(
    model: GPT,
    tokenizer: CharTokenizer,
    prompts: Sequence[str],
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    batch_size: int = 512,
) -> list[str]:
    """Complete each prompt until :data:`END` (or ``max_new_tokens``); returns the
    completions without :data:`END`, in the order of ``prompts``.

    ``temperature=0`` is greedy decoding. Prompts of the same length run together in
    batches with a key/value cache (greedy gives what ``GPT.generate`` gives, faster).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    device = next(model.parameters()).device
    end_id = tokenizer.encode(END)[0]
    was_training = model.training
    model.eval()
    out: list[str] = [""] * len(prompts)
    by_length: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_length.setdefault(len(p), []).append(i)
    for length in sorted(by_length):
        order = by_length[length]
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            idx = torch.tensor([tokenizer.encode(prompts[i]) for i in chunk], device=device)
            steps = min(max_new_tokens, model.config.block_size - idx.size(1) + 1)
            logits, cache = _forward_cached(model, idx, None)
            new = []
            done = torch.zeros(len(chunk), dtype=torch.bool, device=device)
            for t in range(steps):
                if temperature == 0:
                    nxt = logits.argmax(dim=-1)
                else:
                    probs = F.softmax(logits / temperature, dim=-1)
                    nxt = torch.multinomial(probs.cpu(), 1, generator=generator).view(-1)
                    nxt = nxt.to(device)
                new.append(nxt)
                done |= nxt == end_id
                if bool(done.all()) or t == steps - 1:
                    break
                logits, cache = _forward_cached(model, nxt[:, None], cache)
            ids = torch.stack(new, dim=1).tolist()
            for i, row in zip(chunk, ids, strict=True):
                text = tokenizer.decode(row)
                out[i] = text.split(END, 1)[0]
    model.train(was_training)
    return out


def max_completion_chars(n_digits: int, fmt: str) -> int:
    """Enough new tokens for a completion of an ``n_digits`` problem in ``fmt``."""
    answer = ANSWER + "9" * (n_digits + 2) + END  # the longest answer, '*' included
    if fmt == "pal":
        return 2 * WIDTH + 2  # both columns, the operator and END
    if fmt in ("scratchpad", "trigger"):
        return n_digits * 9 + len(answer)  # "x+y+c=vv," per digit
    return len(answer)


def solve(
    model: GPT,
    tokenizer: CharTokenizer,
    problems: Sequence[Problem],
    fmt: str,
    *,
    trigger: bool = False,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[list[str], list[int | None]]:
    """Ask the model every problem; returns its completions and the answers read from them."""
    if not problems:
        raise ValueError("problems is empty: pass at least one Problem")
    longest = max(p.n_digits for p in problems)
    completions = generate(
        model,
        tokenizer,
        [p.prompt(trigger=trigger) for p in problems],
        max_completion_chars(longest, "scratchpad" if trigger else fmt),
        temperature=temperature,
        generator=generator,
    )
    read = "pal" if fmt == "pal" else "scratchpad"
    return completions, [answer_of(c, read) for c in completions]


def accuracy(problems: Sequence[Problem], answers: Sequence[int | None]) -> float:
    """Exact-match accuracy: the fraction of answers equal to the true ones."""
    if len(problems) != len(answers) or not problems:
        raise ValueError(
            f"need as many answers as problems (and at least one), got {len(answers)} "
            f"answers for {len(problems)} problems"
        )
    return sum(p.answer == a for p, a in zip(problems, answers, strict=True)) / len(problems)


def self_consistency(
    model: GPT,
    tokenizer: CharTokenizer,
    problems: Sequence[Problem],
    fmt: str,
    n_samples: int,
    *,
    temperature: float = 0.7,
    seed: int = 0,
    vote: Callable[[Iterable[int | None]], int | None] = majority_vote,
) -> list[float]:
    """Accuracy of the majority answer over the first k samples, for k = 1..``n_samples``.

    Each problem gets ``n_samples`` chains sampled at ``temperature`` (one seeded
    ``torch.Generator``); ``vote`` combines the answers.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    g = torch.Generator().manual_seed(seed)
    repeated = [p for p in problems for _ in range(n_samples)]
    _, answers = solve(model, tokenizer, repeated, fmt, temperature=temperature, generator=g)
    per_problem = [answers[i * n_samples : (i + 1) * n_samples] for i in range(len(problems))]
    return [accuracy(problems, [vote(a[:k]) for a in per_problem]) for k in range(1, n_samples + 1)]
