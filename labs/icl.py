"""In-context learning: a transformer that learns a new task from the examples in its prompt.

Two small experiments, both on data generated here (lesson 04):

1. **Linear regression in context** (Garg et al., 2022). Every prompt is a fresh task
   ``f(x) = w·x`` with a new random ``w``, given as ``(x_1, y_1, x_2, y_2, …)``. A GPT-2-style
   trunk (``labs.gpt.Block``) with a linear read-in and read-out is meta-trained to predict
   each ``y_i`` from the pairs before it, then compared with least squares, ridge, nearest
   neighbour and averaging on tasks it never saw.
2. **Induction heads** (Olsson et al., 2022). A two-layer attention-only transformer on
   random token sequences repeated twice learns to copy: "the token after the previous
   occurrence of the current token". Its attention patterns show the mechanism.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from labs.gpt import Block, CausalSelfAttention, GPTConfig, TrainConfig, lr_at

# --------------------------------------------------------------------------- text prompts


def format_prompt(
    examples: list[tuple[str, str]],
    query: str,
    instruction: str | None = None,
    *,
    input_prefix: str = "Input: ",
    output_prefix: str = "Output: ",
) -> str:
    """A text prompt in the GPT-3 style: an optional instruction, ``k`` demonstrations, the query.

    ``examples=[]`` is zero-shot, one pair one-shot, several few-shot. The prompt ends with
    the output prefix, so the model's continuation is its answer.
    """
    lines = [instruction] if instruction else []
    for x, y in examples:
        lines.append(f"{input_prefix}{x}\n{output_prefix}{y}")
    lines.append(f"{input_prefix}{query}\n{output_prefix}".rstrip())
    return "\n\n".join(lines)


# --------------------------------------------------------------------------- regression tasks


@dataclass
class RegressionTasks:
    """A batch of linear-regression prompts: ``xs`` (B, K, D), ``ys`` (B, K), ``w`` (B, D).

    ``ys = xs @ w + noise``; ``clean`` (B, K) is ``xs @ w`` without the noise.
    """

    xs: torch.Tensor
    ys: torch.Tensor
    w: torch.Tensor
    clean: torch.Tensor


def sample_linear_tasks(
    batch_size: int,
    n_points: int,
    dim: int,
    *,
    noise_std: float = 0.0,
    active_dims: int | None = None,
    generator: torch.Generator | None = None,
) -> RegressionTasks:
    """``batch_size`` fresh tasks, each with ``n_points`` examples ``x ~ N(0, I_dim)``,
    ``w ~ N(0, I)`` and ``y = w·x + noise_std·ε``.

    ``active_dims < dim`` zeroes the last coordinates of every ``x`` (and ``w``): a
    ``dim``-wide model input that carries a lower-dimensional task.
    """
    if batch_size < 1 or n_points < 1 or dim < 1:
        raise ValueError(
            f"batch_size, n_points and dim must be >= 1, got {batch_size}, {n_points}, {dim}"
        )
    active = dim if active_dims is None else active_dims
    if not 1 <= active <= dim:
        raise ValueError(f"active_dims must be in [1, dim={dim}], got {active_dims}")
    xs = torch.randn(batch_size, n_points, dim, generator=generator)
    w = torch.randn(batch_size, dim, generator=generator)
    xs[..., active:] = 0.0
    w[..., active:] = 0.0
    clean = (xs @ w.unsqueeze(-1)).squeeze(-1)
    ys = clean + noise_std * torch.randn(batch_size, n_points, generator=generator)
    return RegressionTasks(xs, ys, w, clean)


def build_prompt(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Interleave examples into one sequence of vectors: ``x_1, y_1, x_2, y_2, …``.

    ``xs`` (B, K, D), ``ys`` (B, K) → (B, 2K, D + 1). An x token is ``[x_i, 0]``; a y token
    is ``[x_i, y_i]``: it carries its own input, so one attention step can relate a query to
    whole examples. (Garg et al. use ``[0, …, 0, y_i]``; then the model must first learn to
    copy ``x_i`` onto its label's token, which makes training much slower.)
    """
    if xs.dim() != 3 or ys.dim() != 2 or xs.shape[:2] != ys.shape:
        raise ValueError(
            f"expected xs (B, K, D) and ys (B, K) with the same B and K, got {tuple(xs.shape)} "
            f"and {tuple(ys.shape)}"
        )
    B, K, D = xs.shape
    x_tokens = torch.cat([xs, xs.new_zeros(B, K, 1)], dim=-1)
    y_tokens = torch.cat([xs, ys.unsqueeze(-1)], dim=-1)
    return torch.stack([x_tokens, y_tokens], dim=2).reshape(B, 2 * K, D + 1)


# --------------------------------------------------------------------------- baselines


def _check_xy(xs: torch.Tensor, ys: torch.Tensor) -> None:
    if xs.dim() != 3 or ys.dim() != 2 or xs.shape[:2] != ys.shape:
        raise ValueError(
            f"expected xs (B, K, D) and ys (B, K) with the same B and K, got {tuple(xs.shape)} "
            f"and {tuple(ys.shape)}"
        )


def least_squares_predict(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Least squares in context: predict each ``y_i`` from the examples before it.

    ``xs`` (B, K, D), ``ys`` (B, K) → (B, K). Position ``i`` fits ``ŵ`` to examples
    ``0 … i-1`` (the minimum-norm solution ``pinv(X) y`` when fewer than ``D`` examples
    leave it underdetermined) and predicts ``ŵ·x_i``; position 0 has no examples and
    predicts 0.
    """
    _check_xy(xs, ys)
    preds = torch.zeros_like(ys)
    for i in range(1, xs.shape[1]):
        w_hat = torch.linalg.pinv(xs[:, :i]) @ ys[:, :i].unsqueeze(-1)  # (B, D, 1)
        preds[:, i] = (xs[:, i : i + 1] @ w_hat).squeeze(-1).squeeze(-1)
    return preds


def ridge_predict(xs: torch.Tensor, ys: torch.Tensor, lam: float) -> torch.Tensor:
    """Ridge regression in context: like :func:`least_squares_predict` with
    ``ŵ = (XᵀX + λI)⁻¹ Xᵀy``. With ``w ~ N(0, I)`` and noise variance ``σ²``, ``λ = σ²``
    gives the posterior mean: the Bayes-optimal prediction. (B, K, D), (B, K) → (B, K)."""
    _check_xy(xs, ys)
    if lam <= 0:
        raise ValueError(f"lam must be > 0 (use least_squares_predict for λ = 0), got {lam}")
    K, D = xs.shape[1:]
    preds = torch.zeros_like(ys)
    eye = torch.eye(D, dtype=xs.dtype, device=xs.device)
    for i in range(1, K):
        X, y = xs[:, :i], ys[:, :i].unsqueeze(-1)
        w_hat = torch.linalg.solve(X.transpose(1, 2) @ X + lam * eye, X.transpose(1, 2) @ y)
        preds[:, i] = (xs[:, i : i + 1] @ w_hat).squeeze(-1).squeeze(-1)
    return preds


def nearest_neighbour_predict(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Predict ``y_i`` as the label of the closest earlier ``x`` (0 at position 0).
    (B, K, D), (B, K) → (B, K)."""
    _check_xy(xs, ys)
    preds = torch.zeros_like(ys)
    for i in range(1, xs.shape[1]):
        dist = (xs[:, :i] - xs[:, i : i + 1]).pow(2).sum(-1)  # (B, i)
        preds[:, i] = ys[:, :i].gather(1, dist.argmin(1, keepdim=True)).squeeze(1)
    return preds


def averaging_predict(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Garg et al.'s "averaging" estimator ``ŵ = mean_j(y_j x_j)`` over the earlier examples
    (unbiased for ``x ~ N(0, I)``, but noisy). (B, K, D), (B, K) → (B, K)."""
    _check_xy(xs, ys)
    sums = (ys.unsqueeze(-1) * xs).cumsum(1)  # (B, K, D): Σ_{j<=i} y_j x_j
    counts = torch.arange(1, xs.shape[1] + 1, dtype=xs.dtype, device=xs.device)
    w_hat = sums / counts[None, :, None]
    preds = torch.zeros_like(ys)
    preds[:, 1:] = (w_hat[:, :-1] * xs[:, 1:]).sum(-1)
    return preds


# --------------------------------------------------------------------------- the model


@dataclass
class ICLConfig:
    """A GPT-2-style trunk on vectors: ``dim``-wide inputs, ``n_points`` examples per prompt."""

    dim: int = 5
    n_points: int = 12
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 64

    def gpt_config(self) -> GPTConfig:
        return GPTConfig(
            vocab_size=1,
            block_size=2 * self.n_points,
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            dropout=0.0,
        )


class ICLRegressor(nn.Module):
    """``labs.gpt`` blocks between a linear read-in and a linear read-out.

    The prompt ``x_1, y_1, …, x_K, y_K`` (see :func:`build_prompt`) goes in; the output at
    each *x* position is the prediction of the ``y`` that follows it — made from the
    examples before it only (causal attention). No weights change between tasks: whatever
    adapts to the task happens in the forward pass.
    """

    def __init__(self, config: ICLConfig) -> None:
        super().__init__()
        self.config = config
        gpt_config = config.gpt_config()
        self.read_in = nn.Linear(config.dim + 1, config.n_embd)
        self.wpe = nn.Embedding(gpt_config.block_size, config.n_embd)
        self.h = nn.ModuleList(Block(gpt_config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.read_out = nn.Linear(config.n_embd, 1)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = (
                    0.02 / math.sqrt(2 * config.n_layer) if name.endswith("c_proj.weight") else 0.02
                )
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        """``xs`` (B, K, D), ``ys`` (B, K) → predictions (B, K): entry ``i`` uses examples ``< i``."""
        n_points, dim = xs.shape[1:]
        if dim != self.config.dim:
            raise ValueError(
                f"xs has {dim} dimensions but the model reads {self.config.dim}: pad xs with "
                "zeros (active_dims in sample_linear_tasks) or build a model with that dim."
            )
        if n_points > self.config.n_points:
            raise ValueError(
                f"{n_points} examples but the model was built for at most {self.config.n_points}"
            )
        tokens = build_prompt(xs, ys)
        x = self.read_in(tokens) + self.wpe(torch.arange(2 * n_points, device=xs.device))
        for block in self.h:
            x = block(x)
        return self.read_out(self.ln_f(x))[:, ::2, 0]  # outputs at the x positions


def icl_loss(model: ICLRegressor, tasks: RegressionTasks) -> torch.Tensor:
    """Mean squared error of the model's in-context predictions over all positions."""
    return F.mse_loss(model(tasks.xs, tasks.ys), tasks.ys)


def train_icl(
    model: ICLRegressor,
    config: TrainConfig,
    *,
    noise_std: float,
    generator: torch.Generator,
    task_dims: int | None = None,
    curriculum_steps: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Meta-train on fresh random tasks every step (AdamW, warmup + cosine from ``lr_at``).

    Tasks use the first ``task_dims`` of the model's ``dim`` input coordinates (default:
    all). A curriculum (Garg et al.) starts with 1-dimensional tasks and adds a dimension at
    regular intervals until step ``curriculum_steps``, then trains on ``task_dims``: easy
    tasks first get the model off its initial plateau sooner. Returns the training loss of
    every step (per active dimension, so the stages compare). ``on_step(step, loss)`` is
    called every 25 steps.
    """
    from tqdm.auto import tqdm

    cfg = model.config
    task_dims = cfg.dim if task_dims is None else task_dims
    if not 1 <= task_dims <= cfg.dim:
        raise ValueError(f"task_dims must be in [1, dim={cfg.dim}], got {task_dims}")
    opt = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    losses = []
    model.train()
    for step in tqdm(range(config.max_steps), desc="meta-training", disable=not progress):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, config)
        active = task_dims
        if step < curriculum_steps:
            active = 1 + step * task_dims // curriculum_steps
        tasks = sample_linear_tasks(
            config.batch_size,
            cfg.n_points,
            cfg.dim,
            noise_std=noise_std,
            active_dims=active,
            generator=generator,
        )
        loss = icl_loss(model, _to(tasks, device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        losses.append(loss.item() / active)
        if on_step is not None and step % 25 == 0:
            on_step(step, sum(losses[-25:]) / len(losses[-25:]))
    model.eval()
    return losses


def _to(tasks: RegressionTasks, device: torch.device | str) -> RegressionTasks:
    return RegressionTasks(*(t.to(device) for t in (tasks.xs, tasks.ys, tasks.w, tasks.clean)))


def error_by_k(preds: torch.Tensor, target: torch.Tensor, dim: int) -> torch.Tensor:
    """Squared error per number of examples seen, normalised by ``dim`` (as Garg et al.).

    ``preds``, ``target`` (B, K) → (K,): entry ``k`` is the mean error of predictions made
    after ``k`` examples. Predicting 0 (zero-shot) scores ``E[(w·x)²] / dim = 1``.
    """
    return (preds - target).pow(2).mean(0) / dim


# --------------------------------------------------------------------------- induction heads


def repeated_tokens(
    batch_size: int, seq_len: int, vocab_size: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random token sequences shown twice: (B, 2·seq_len), ``out[:, seq_len:] == out[:, :seq_len]``.

    The first half is unpredictable (chance accuracy ``1/vocab_size``); the second half is
    predictable for a model that can look back and copy.
    """
    if seq_len < 2 or vocab_size < 2:
        raise ValueError(f"need seq_len >= 2 and vocab_size >= 2, got {seq_len}, {vocab_size}")
    first = torch.randint(vocab_size, (batch_size, seq_len), generator=generator)
    return torch.cat([first, first], dim=1)


class PatternAttention(CausalSelfAttention):
    """``labs.gpt.CausalSelfAttention`` written out, so its attention pattern can be kept.

    After a forward pass, ``self.pattern`` holds the weights (B, n_head, T, T).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        pattern = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        self.pattern = pattern.detach()
        y = (pattern @ v).transpose(1, 2).reshape(B, T, C)
        return self.c_proj(y)


class AttentionOnly(nn.Module):
    """A transformer with attention layers only (no MLPs, no LayerNorm): token + position
    embeddings, ``n_layer`` residual attention layers, an unembedding. Small enough to read
    its circuits (Elhage et al., 2021)."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int = 2, n_head: int = 4,
                 n_embd: int = 64) -> None:  # fmt: skip
        super().__init__()
        config = GPTConfig(
            vocab_size=vocab_size,
            block_size=block_size,
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
        )
        self.config = config
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.layers = nn.ModuleList(PatternAttention(config) for _ in range(n_layer))
        self.unembed = nn.Linear(n_embd, vocab_size, bias=False)
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02)
            else:
                nn.init.zeros_(p)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """``idx`` (B, T) → next-token logits (B, T, vocab_size)."""
        length = idx.shape[1]
        if length > self.config.block_size:
            raise ValueError(
                f"sequence length {length} exceeds block_size {self.config.block_size}"
            )
        x = self.wte(idx) + self.wpe(torch.arange(length, device=idx.device))
        for layer in self.layers:
            x = x + layer(x)
        return self.unembed(x)

    def patterns(self) -> list[torch.Tensor]:
        """The attention patterns of the last forward pass, one (B, n_head, T, T) per layer."""
        return [layer.pattern for layer in self.layers]


def per_token_loss(model: AttentionOnly, idx: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of predicting ``idx[:, t+1]`` at each position: (B, T) → (B, T-1)."""
    logits = model(idx)[:, :-1]
    return F.cross_entropy(logits.transpose(1, 2), idx[:, 1:], reduction="none")


def induction_score(pattern: torch.Tensor, seq_len: int) -> torch.Tensor:
    """How much each head attends like an induction head, on a sequence repeated twice.

    ``pattern`` (B, H, T, T) attention weights on inputs of :func:`repeated_tokens` with
    ``T = 2·seq_len``. In the second copy, the query at position ``t`` holds the token
    last seen at ``t - seq_len``; an induction head looks at the token *after* it,
    ``t - seq_len + 1``. Returns (H,): that weight averaged over the batch and over the
    queries ``t = seq_len … 2·seq_len - 1``. 1 is a perfect induction head.
    """
    if pattern.dim() != 4 or pattern.shape[-1] != pattern.shape[-2]:
        raise ValueError(f"pattern must be (B, H, T, T), got {tuple(pattern.shape)}")
    length = pattern.shape[-1]
    if length != 2 * seq_len:
        raise ValueError(
            f"pattern covers T={length} positions, expected 2 * seq_len = {2 * seq_len}"
        )
    queries = torch.arange(seq_len, 2 * seq_len, device=pattern.device)
    return pattern[:, :, queries, queries - seq_len + 1].mean(dim=(0, 2))


def previous_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Mean weight each head puts on the previous position: (B, H, T, T) → (H,)."""
    t = torch.arange(1, pattern.shape[-1], device=pattern.device)
    return pattern[:, :, t, t - 1].mean(dim=(0, 2))
