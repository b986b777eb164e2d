"""A GPT in one readable file, its sampler and a training loop that is quick on a laptop CPU.

The model follows GPT-2 (and nanoGPT's ``model.py``): token + position embeddings, a
stack of pre-LayerNorm blocks (causal self-attention, then an MLP, each added to the
residual stream), a final LayerNorm and a language-model head that shares its weights
with the token embedding. Lesson 03 builds it piece by piece; from lesson 04 on,
``labs.gpt.GPT`` is the model you built.

Benchmark from a terminal (one JSON line, see :func:`main`)::

    python -m labs.gpt train --text data/corpus/python_docs.txt --seconds 120
    python -m labs.gpt train --text FILE --config nanogpt-cpu     # the baseline recipe
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from labs.tokenizers import CharTokenizer

# --------------------------------------------------------------------------- model


@dataclass
class GPTConfig:
    vocab_size: int = 128
    block_size: int = 128  # the longest context the model sees
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0  # on embeddings and residual branches (0 for short CPU runs)
    bias: bool = True  # biases in Linear layers and LayerNorms, like GPT-2

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive int, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                "each head gets n_embd // n_head dimensions."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions <= t only.

    One Linear makes queries, keys and values for all heads at once (``c_attn``);
    ``c_proj`` mixes the heads' outputs back into the residual stream.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, C) → (B, T, C)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_size)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # fused softmax(QKᵀ/√d)V
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # merge the heads again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: C → 4C → GELU → C."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """A decoder-only transformer language model."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(config.vocab_size, config.n_embd),
                "wpe": nn.Embedding(config.block_size, config.n_embd),
                "drop": nn.Dropout(config.dropout),
                "h": nn.ModuleList(Block(config) for _ in range(config.n_layer)),
                "ln_f": nn.LayerNorm(config.n_embd, bias=config.bias),
            }
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying (Press & Wolf, 2017)
        self.apply(self._init_weights)
        # GPT-2: scale the residual projections by 1/sqrt(2 * n_layer) so the residual
        # stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embeddings (as in Kaplan et al.).

        The token embedding is counted once: the LM head shares it.
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``idx`` (B, T) token ids → logits (B, T, vocab_size), and the mean cross-entropy
        against ``targets`` (B, T) when given (else ``None``)."""
        if idx.dim() != 2:
            raise ValueError(f"idx must be (B, T) token ids, got shape {tuple(idx.shape)}")
        B, T = idx.shape
        if idx.size(1) > self.config.block_size:
            raise ValueError(
                f"sequence length {T} exceeds block_size {self.config.block_size}: "
                "crop the context to the last block_size tokens."
            )
        pos = torch.arange(T, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T))
        return logits, loss

    def configure_optimizers(
        self,
        weight_decay: float,
        learning_rate: float,
        betas: tuple[float, float] = (0.9, 0.99),
    ) -> torch.optim.AdamW:
        """AdamW with two groups: matrices decay, biases and LayerNorm gains do not."""
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        # the fused kernel updates all parameters in one pass: faster than a loop per tensor
        fused = all(p.device.type in ("cpu", "cuda") for p in params)
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=fused)

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        logits_filter: Callable[..., torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Continue ``idx`` (B, T) by ``max_new_tokens`` sampled tokens → (B, T + new).

        ``temperature=0`` is greedy decoding. ``top_k`` keeps the k most likely tokens,
        ``top_p`` the smallest set whose probability reaches p (nucleus sampling).
        ``logits_filter(logits, top_k=, top_p=)`` does that filtering: :func:`filter_logits`
        unless you pass your own (lesson 03 plugs in the learner's).
        """
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
        was_training = self.training
        self.eval()
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size :]
            logits, _ = self(context)
            logits = logits[:, -1, :]
            if temperature == 0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                apply_filter = logits_filter or filter_logits
                logits = apply_filter(logits / temperature, top_k=top_k, top_p=top_p)
                probs = F.softmax(logits, dim=-1)
                next_id = torch.multinomial(probs.cpu(), 1, generator=generator).to(idx.device)
            idx = torch.cat([idx, next_id], dim=1)
        self.train(was_training)
        return idx


def filter_logits(
    logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Set to ``-inf`` every logit outside the top-k and outside the top-p nucleus.

    ``logits`` (..., V) → same shape. ``top_p`` keeps the smallest set of most likely
    tokens whose probabilities sum to at least ``top_p`` (the most likely token always
    stays). ``None`` disables a filter.
    """
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1 (or None), got {top_k}")
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # drop a token when the tokens before it already reach top_p
        drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


# --------------------------------------------------------------------------- training


@dataclass
class TrainConfig:
    """How to train. Set ``max_steps`` for a step budget or ``seconds`` for a time budget.

    With a time budget the cosine decay follows the clock: the learning rate reaches
    ``min_lr`` exactly when the time is up. Warmup always counts steps, so a slow first
    step (a GPU starting up) cannot skip it.
    """

    batch_size: int = 32
    max_steps: int = 2000
    seconds: float | None = None
    learning_rate: float = 2e-3
    min_lr: float = 2e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    eval_interval: int = 250  # steps between evaluations (0: only at the end)
    eval_batches: int = 20


def lr_at(step: int, config: TrainConfig, progress: float | None = None) -> float:
    """Learning rate at ``step``: linear warmup over ``warmup_steps``, then cosine decay to
    ``min_lr`` at ``max_steps`` — or, when ``progress`` (the fraction of a time budget
    used) is given, at ``progress = 1``."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / (config.warmup_steps + 1)
    if progress is None:
        ratio = (step - config.warmup_steps) / max(config.max_steps - config.warmup_steps, 1)
    else:
        ratio = progress
    coeff = 0.5 * (1.0 + math.cos(math.pi * min(max(ratio, 0.0), 1.0)))
    return config.min_lr + coeff * (config.learning_rate - config.min_lr)


def get_batch(
    data: torch.Tensor,
    batch_size: int,
    block_size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of ``data`` (N,) → inputs ``x`` and next-token targets ``y``, (B, T)."""
    if data.dim() != 1:
        raise ValueError(f"data must be a 1-D tensor of token ids, got shape {tuple(data.shape)}")
    if len(data) <= block_size:
        raise ValueError(
            f"the text has {len(data)} tokens, need more than block_size={block_size}: "
            "use a longer text or a smaller block_size."
        )
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size)
    x = data[starts[:, None] + offsets]
    y = data[starts[:, None] + offsets + 1]
    return x.to(device), y.to(device)


@torch.no_grad()
def estimate_loss(
    model: GPT,
    data: torch.Tensor,
    batch_size: int,
    batches: int,
    seed: int = 1234,
    device: torch.device | str = "cpu",
) -> float:
    """Mean next-token loss (nats/token) on ``batches`` random windows (fixed by ``seed``)."""
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(batches):
        x, y = get_batch(data, batch_size, model.config.block_size, g, device)
        total += model(x, y)[1].item()
    model.train(was_training)
    return total / batches


@torch.no_grad()
def evaluate(
    model: GPT, data: torch.Tensor, batch_size: int = 64, device: torch.device | str = "cpu"
) -> float:
    """Mean next-token loss over ALL of ``data`` (N,), in non-overlapping windows of
    ``block_size`` tokens: a deterministic held-out number, nats/token."""
    T = model.config.block_size
    n_windows = (len(data) - 1) // T
    if n_windows < 1:
        raise ValueError(f"need more than block_size={T} held-out tokens, got {len(data)}")
    x_all = data[: n_windows * T].view(n_windows, T)
    y_all = data[1 : n_windows * T + 1].view(n_windows, T)
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, n_windows, batch_size):
        x, y = x_all[i : i + batch_size].to(device), y_all[i : i + batch_size].to(device)
        total += model(x, y)[1].item() * len(x)
    model.train(was_training)
    return total / n_windows


@dataclass
class TrainResult:
    steps: int
    tokens: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)


def train(
    model: GPT,
    train_data: torch.Tensor,
    val_data: torch.Tensor,
    config: TrainConfig,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    on_eval: Callable[[int, float, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` on the token ids ``train_data`` (N,) with AdamW, warmup + cosine,
    gradient clipping and periodic evaluation on ``val_data``.

    ``on_eval(step, train_loss, val_loss)`` is called at each evaluation (for a live
    plot). Returns steps, tokens seen, wall-clock seconds (training and periodic
    evaluations; the final evaluation is not counted) and the evaluation history.
    """
    from tqdm.auto import tqdm

    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    optimizer = model.configure_optimizers(config.weight_decay, config.learning_rate, config.betas)
    block_size = model.config.block_size
    timed = config.seconds is not None
    total = None if timed else config.max_steps
    bar = tqdm(total=total, desc="training", disable=not progress, leave=False)
    result = TrainResult(steps=0, tokens=0, seconds=0.0)
    model.train()
    start = time.perf_counter()
    step = 0
    while True:
        elapsed = time.perf_counter() - start
        done = elapsed >= config.seconds if timed else step >= config.max_steps
        if done:  # the wall time covers training and periodic evaluations, not the last one
            result.seconds = elapsed
        evaluate_now = done or (config.eval_interval and step % config.eval_interval == 0)
        if evaluate_now and step > 0:
            train_loss = estimate_loss(
                model, train_data, config.batch_size, config.eval_batches, device=device
            )
            val_loss = estimate_loss(
                model, val_data, config.batch_size, config.eval_batches, device=device
            )
            result.history.append(
                {"step": step, "seconds": elapsed, "train": train_loss, "val": val_loss}
            )
            if on_eval is not None:
                on_eval(step, train_loss, val_loss)
        if done:
            break
        lr = lr_at(step, config, elapsed / config.seconds if timed else None)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = get_batch(train_data, config.batch_size, block_size, generator, device)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.1e}")
    bar.close()
    result.steps = step
    result.tokens = step * config.batch_size * block_size
    return result


# --------------------------------------------------------------------------- presets

# name -> (model shape, training recipe); vocab_size comes from the text's tokenizer.
PRESETS: dict[str, tuple[GPTConfig, TrainConfig]] = {
    # nanoGPT's documented CPU recipe (README, "I only have a macbook"): the baseline.
    "nanogpt-cpu": (
        GPTConfig(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0),
        TrainConfig(
            batch_size=12,
            max_steps=2000,
            learning_rate=1e-3,
            min_lr=1e-4,
            warmup_steps=100,
            weight_decay=0.1,
            betas=(0.9, 0.99),
            grad_clip=1.0,
            eval_interval=250,
            eval_batches=20,
        ),
    ),
    # the lesson's default, tuned for a fixed time on a CPU: narrower (more tokens per second)
    # and a 6x higher learning rate, which a small model tolerates (lesson 03, section 8)
    "small": (
        GPTConfig(block_size=64, n_layer=4, n_head=4, n_embd=96, dropout=0.0),
        TrainConfig(
            batch_size=16,
            max_steps=2000,
            learning_rate=6e-3,
            min_lr=6e-4,
            warmup_steps=50,
            weight_decay=0.1,
            betas=(0.9, 0.99),
            grad_clip=1.0,
            eval_interval=0,
            eval_batches=20,
        ),
    ),
}


def preset(name: str, vocab_size: int) -> tuple[GPTConfig, TrainConfig]:
    """A named (model, training) recipe with the tokenizer's ``vocab_size`` filled in."""
    if name not in PRESETS:
        raise ValueError(f"unknown config {name!r}: choose one of {', '.join(PRESETS)}")
    model_config, train_config = PRESETS[name]
    return replace(model_config, vocab_size=vocab_size), replace(train_config)


# --------------------------------------------------------------------------- the lesson's model

PRETRAINED_NAME = "gpt03_char_pretrain"
LESSON_STEPS = 6000  # full mode: about 4 minutes on a 2-core CPU


def lesson_recipe(smoke: bool) -> tuple[GPTConfig, TrainConfig]:
    """Lesson 03's model and training recipe: the ``small`` preset for a fixed number of
    steps (deterministic), or a tiny version in smoke mode. ``vocab_size`` is a
    placeholder: set it from the tokenizer."""
    model_config, train_config = preset("small", vocab_size=1)
    if smoke:
        model_config = replace(model_config, n_layer=2, n_head=2, n_embd=32, block_size=32)
        train_config = replace(
            train_config, batch_size=16, max_steps=150, warmup_steps=10, eval_batches=4
        )
    else:
        train_config = replace(train_config, max_steps=LESSON_STEPS)
    return model_config, replace(train_config, eval_interval=max(train_config.max_steps // 10, 1))


def pretrained_config(
    model_config: GPTConfig, train_config: TrainConfig, text: str, seed: int
) -> dict:
    """What identifies a pretrained checkpoint in the cache (see ``labs.checkpoints``)."""
    return {
        "model": asdict(model_config),
        "train": asdict(train_config),
        "tokenizer": "char",
        "corpus_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "seed": seed,
    }


def pretrained(
    *,
    smoke: bool,
    device: torch.device | str = "cpu",
    corpus_path: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[GPT, CharTokenizer]:
    """Lesson 03's pretrained character-level GPT and its tokenizer.

    Loads it from the checkpoint cache when lesson 03 (or an earlier call) trained it
    with the same recipe, corpus and seed; otherwise trains it now (a few minutes in
    full mode, with a progress bar). Later lessons start from here.
    """
    from labs import checkpoints
    from labs.data import load_corpus, train_val_split

    text = load_corpus(corpus_path)
    tokenizer = CharTokenizer.from_text(text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_ids, val_ids = train_val_split(ids, 0.1)
    model_config, train_config = lesson_recipe(smoke)
    model_config = replace(model_config, vocab_size=tokenizer.vocab_size)
    torch.manual_seed(seed)
    model = GPT(model_config).to(device)

    def pretrain(model: GPT) -> None:
        train(
            model,
            train_ids,
            val_ids,
            train_config,
            generator=torch.Generator().manual_seed(seed),
            device=device,
            progress=progress,
        )

    checkpoints.load_or_train(
        PRETRAINED_NAME,
        model,
        pretrained_config(model_config, train_config, text, seed),
        pretrain,
        how="lesson 03 section 4, or labs.gpt.pretrained()",
    )
    return model.eval(), tokenizer


# --------------------------------------------------------------------------- command line


def benchmark(
    text: str,
    config_name: str = "small",
    seconds: float | None = None,
    device: str = "auto",
    seed: int = 0,
    val_fraction: float = 0.1,
    threads: int | None = None,
    progress: bool = False,
) -> dict[str, float | int | str]:
    """Train a character-level GPT on ``text`` and measure it (see :func:`main`)."""
    from labs import runtime
    from labs.data import train_val_split

    if threads:
        torch.set_num_threads(threads)
    resolved = runtime.get_device(device)
    runtime.seed_everything(seed)
    tokenizer = CharTokenizer.from_text(text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_ids, val_ids = train_val_split(ids, val_fraction)
    model_config, train_config = preset(config_name, tokenizer.vocab_size)
    if seconds is not None:
        train_config = replace(train_config, seconds=float(seconds))
    model = GPT(model_config).to(resolved)
    result = train(
        model,
        train_ids,
        val_ids,
        train_config,
        generator=torch.Generator().manual_seed(seed),
        device=resolved,
        progress=progress,
    )
    eval_start = time.perf_counter()
    val_loss = evaluate(model, val_ids, device=resolved)
    return {
        "config": config_name,
        "val_loss": round(val_loss, 4),
        "train_tokens": result.tokens,
        "tokens_per_s": round(result.tokens_per_s, 1),
        "seconds": round(result.seconds, 2),
        "params": model.num_params(),
        "steps": result.steps,
        "vocab_size": tokenizer.vocab_size,
        "device": str(resolved),
        "threads": torch.get_num_threads(),
        "eval_seconds": round(time.perf_counter() - eval_start, 2),
        "model": asdict(model_config),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m labs.gpt train --text FILE [--seconds S] [--config NAME] [--device D]``.

    Prints one JSON line: ``val_loss`` (nats/char on the last 10 % of the file, every
    window of it), ``train_tokens``, ``tokens_per_s``, ``seconds`` (training wall time,
    periodic evaluations included), ``params`` and the details of the run.
    """
    parser = argparse.ArgumentParser(prog="python -m labs.gpt", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a character-level GPT on a text file and measure it")
    p.add_argument("--text", required=True, help="any UTF-8 text file")
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="wall-clock budget (default: the recipe's step count)",
    )
    p.add_argument("--config", default="small", choices=sorted(PRESETS))
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    args = parser.parse_args(argv)
    from labs.data import load_corpus

    try:
        text = load_corpus(Path(args.text))
        report = benchmark(
            text,
            config_name=args.config,
            seconds=args.seconds,
            device=args.device,
            seed=args.seed,
            threads=args.threads,
            progress=args.progress,
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
