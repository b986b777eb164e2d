"""RLHF on a character-level GPT: preference data, a reward model, PPO and DPO.

Lesson 07 builds the three steps of InstructGPT on lesson 03's pretrained GPT, after the
supervised fine-tuning of lesson 06 (``labs.instruct``):

1. a **reward model** (:class:`RewardModel`: the GPT trunk plus a scalar head) trained
   with the Bradley–Terry loss on pairs of answers labelled by a hidden "human"
   (:func:`true_score`, with annotator noise);
2. **PPO** (:func:`ppo_train`): the policy (:class:`CausalLMWithValueHead`) samples
   answers, the reward model scores them, a per-token KL penalty keeps it close to the
   frozen SFT reference, GAE turns rewards into advantages and a clipped objective
   updates it a few epochs per batch;
3. **DPO** (:func:`dpo_train`): the same pairs, no reward model and no sampling loop.

Names follow Hugging Face TRL (``RewardModel``, ``CausalLMWithValueHead``,
``PPOConfig``, ``DPOConfig``, ``compute_rewards``-style KL penalty) so that the library
reads familiar afterwards. The task: the prompt asks how a dish was; a good answer is a
short, well-formed, positive review that ends properly.

Shapes: ``B`` sequences, ``P`` prompt tokens (all prompts have the same length), ``R``
response tokens (right-padded, with a 0/1 ``mask``), ``T = P + R``, ``C`` channels.
"""

from __future__ import annotations

import copy
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from labs.gpt import GPT
from labs.tokenizers import CharTokenizer

# --------------------------------------------------------------------------- the task

# five letters each, so every prompt has the same number of characters (no padding)
ITEMS = (
    "pasta",
    "pizza",
    "salad",
    "bread",
    "toast",
    "curry",
    "sushi",
    "steak",
    "bagel",
    "fries",
    "melon",
    "mango",
    "crepe",
    "tacos",
    "gravy",
    "donut",
)
# the hidden "human" values each adjective: +1 delighted ... -1 disappointed
VALENCE: dict[str, float] = {
    "great": 1.0,
    "tasty": 1.0,
    "lovely": 1.0,
    "good": 0.6,
    "fresh": 0.6,
    "nice": 0.6,
    "fine": 0.2,
    "ok": 0.0,
    "plain": -0.2,
    "dull": -0.6,
    "cold": -0.6,
    "bland": -0.6,
    "bad": -1.0,
    "awful": -1.0,
    "stale": -1.0,
}
FILLER_WORDS = frozenset({"it", "was", "and", "but", "very", "really", "the", "so", *ITEMS})
TEMPLATES = (
    "{a}.",
    "it was {a}.",
    "it was {a} and {b}.",
    "{a} and {b}.",
    "very {a}.",
    "{a}, but {b}.",
    "the {item} was {a}.",
    "really {a} and {b}.",
    "{a}, {b} and {c}.",
)
MAX_ANSWER_CHARS = 32  # longer answers are not "sensible length"
MALFORMED_SCORE = -1.5
LABEL_TEMPERATURE = (
    4.0  # annotators prefer a over b with probability sigmoid(4 * (true_a - true_b))
)


def question(item: str) -> str:
    """The instruction for one dish, e.g. ``"how was the pasta?"``."""
    return f"how was the {item}?"


def is_well_formed(answer: str, end: str) -> bool:
    """Is ``answer`` (the generated text, end marker included if it was produced) a proper
    review? It must stop with ``end``, be one sentence ending in ``"."`` of known words,
    at most :data:`MAX_ANSWER_CHARS` characters, with 1–3 different adjectives."""
    if end not in answer:
        return False
    text = answer[: answer.index(end)]
    if len(text) > MAX_ANSWER_CHARS or not text.endswith(".") or text.count(".") != 1:
        return False
    words = re.split(r",? ", text[:-1])
    if any(w not in VALENCE and w not in FILLER_WORDS for w in words):
        return False
    adjectives = [w for w in words if w in VALENCE]
    return 1 <= len(adjectives) <= 3 and len(set(adjectives)) == len(adjectives)


def true_score(answer: str, end: str) -> float:
    """The hidden ground-truth preference: mean valence of the adjectives (in [-1, 1]) of a
    well-formed answer, :data:`MALFORMED_SCORE` (-1.5) for anything else.

    Learners may read it; the models never see it — only labels of pairs drawn from it.
    """
    if not is_well_formed(answer, end):
        return MALFORMED_SCORE
    text = answer[: answer.index(end)]
    adjectives = [w for w in re.split(r",? ", text[:-1]) if w in VALENCE]
    return sum(VALENCE[a] for a in adjectives) / len(adjectives)


def make_sft_examples(
    n: int, format_prompt: Callable[[str], str], seed: int = 0
) -> list[tuple[str, str]]:
    """``n`` demonstrations (formatted prompt, answer) from the review templates, with
    adjectives of every valence: the SFT model learns the *form*, not the preference."""
    rng = random.Random(seed)
    adjectives = sorted(VALENCE)
    examples = []
    for _ in range(n):
        item = rng.choice(ITEMS)
        a, b, c = rng.sample(adjectives, 3)
        answer = rng.choice(TEMPLATES).format(a=a, b=b, c=c, item=item)
        examples.append((format_prompt(question(item)), answer))
    return examples


def make_prompts(n: int, format_prompt: Callable[[str], str], seed: int = 0) -> list[str]:
    """``n`` formatted prompts, dishes drawn at random (fixed by ``seed``)."""
    rng = random.Random(seed)
    return [format_prompt(question(rng.choice(ITEMS))) for _ in range(n)]


# --------------------------------------------------------------------------- sampling


def encode_prompts(tokenizer: CharTokenizer, prompts: Sequence[str]) -> torch.Tensor:
    """Prompts of equal length → token ids (B, P)."""
    lengths = {len(p) for p in prompts}
    if len(lengths) != 1:
        raise ValueError(
            f"prompts must all have the same number of characters (got lengths {sorted(lengths)}): "
            "the GPT has absolute positions, so this module does not pad prompts."
        )
    return torch.tensor([tokenizer.encode(p) for p in prompts], dtype=torch.long)


@dataclass
class Rollout:
    """Sampled answers: ``ids`` (B, P + R) prompt and answer tokens, ``mask`` (B, R) 1 on
    answer tokens (the end marker included), 0 on padding after it."""

    ids: torch.Tensor
    mask: torch.Tensor
    prompt_len: int

    @property
    def response(self) -> torch.Tensor:
        return self.ids[:, self.prompt_len :]

    def texts(self, tokenizer: CharTokenizer) -> list[str]:
        out = []
        for row, m in zip(self.response.tolist(), self.mask.tolist(), strict=True):
            out.append(tokenizer.decode([t for t, keep in zip(row, m, strict=True) if keep]))
        return out


def _lm(model: nn.Module) -> GPT:
    return model.pretrained_model if isinstance(model, CausalLMWithValueHead) else model


@torch.no_grad()
def sample(
    model: nn.Module,
    prompt_ids: torch.Tensor,
    stop_ids: Sequence[int],
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Rollout:
    """Sample answers to ``prompt_ids`` (B, P) until each produced ``stop_ids`` (the end
    marker) or ``max_new_tokens``; returns a :class:`Rollout`."""
    gpt = _lm(model)
    if prompt_ids.size(1) + max_new_tokens > gpt.config.block_size:
        raise ValueError(
            f"prompt ({prompt_ids.size(1)} tokens) + max_new_tokens ({max_new_tokens}) exceeds "
            f"block_size {gpt.config.block_size}: shorten the answers."
        )
    was_training = gpt.training
    gpt.eval()
    device = prompt_ids.device
    B = prompt_ids.size(0)
    stop = torch.tensor(list(stop_ids), device=device)
    k = len(stop)
    idx, masks = prompt_ids, []
    done = torch.zeros(B, dtype=torch.bool, device=device)
    for t in range(max_new_tokens):
        active = (~done).nonzero().squeeze(1)  # finished answers need no more forward passes
        logits = gpt(idx[active])[0][:, -1, :]
        probs = F.softmax(logits / temperature, dim=-1)
        drawn = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(device)
        nxt = torch.full((B,), int(stop[-1]), dtype=idx.dtype, device=device)
        nxt[active] = drawn
        masks.append(~done)
        idx = torch.cat([idx, nxt[:, None]], dim=1)
        if t + 1 >= k:
            done = done | (idx[:, -k:] == stop).all(dim=1)
        if bool(done.all()):
            break
    gpt.train(was_training)
    return Rollout(idx, torch.stack(masks, dim=1).float(), prompt_ids.size(1))


def hidden_states(gpt: GPT, idx: torch.Tensor) -> torch.Tensor:
    """The GPT's last hidden states (after the final LayerNorm): (B, T) → (B, T, C)."""
    pos = torch.arange(idx.size(1), device=idx.device)
    x = gpt.transformer.drop(gpt.transformer.wte(idx) + gpt.transformer.wpe(pos))
    for block in gpt.transformer.h:
        x = block(x)
    return gpt.transformer.ln_f(x)


def response_logprobs(logits: torch.Tensor, ids: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """Log-probabilities of the answer tokens: logits (B, T, V), ids (B, T) → (B, R)."""
    logp = F.log_softmax(logits[:, prompt_len - 1 : -1].float(), dim=-1)
    return logp.gather(-1, ids[:, prompt_len:, None]).squeeze(-1)


def sequence_logprobs(model: nn.Module, rollout: Rollout) -> torch.Tensor:
    """Summed log-probability of each answer under ``model``: (B,)."""
    logits = _lm(model)(rollout.ids)[0]
    return (response_logprobs(logits, rollout.ids, rollout.prompt_len) * rollout.mask).sum(1)


# --------------------------------------------------------------------------- exercises' references


def bradley_terry_loss(
    chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor
) -> torch.Tensor:
    """Mean of ``-log σ(r_chosen - r_rejected)`` over pairs; (N,), (N,) → scalar."""
    return F.softplus(-(chosen_rewards - rejected_rewards)).mean()


def kl_penalized_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
) -> torch.Tensor:
    """Per-token rewards (B, R): ``-kl_coef * (logprobs - ref_logprobs)`` on every answer
    token, plus the reward model's ``scores`` (B,) on each answer's last token; 0 on
    padding (``mask`` 0). ``mask`` is right-padded: 1…1 0…0."""
    rewards = -kl_coef * (logprobs - ref_logprobs) * mask
    last = mask.sum(dim=1).long() - 1  # index of each answer's last token
    rows = torch.arange(mask.size(0), device=mask.device)
    rewards[rows, last] += scores
    return rewards


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float = 1.0,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) on right-padded answers.

    rewards, values, mask (B, R) → advantages, returns (B, R), both 0 on padding:
    ``δ_t = r_t + γ V_{t+1} - V_t`` (``V`` is 0 after the last token),
    ``A_t = δ_t + γλ A_{t+1}``, ``returns = A + V``.
    """
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    next_adv = torch.zeros_like(rewards[:, 0])
    next_value = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.size(1))):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_adv = delta + gamma * lam * next_adv
        advantages[:, t] = next_adv
        next_value = values[:, t]
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def ppo_clip_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float = 0.2,
) -> torch.Tensor:
    """PPO's clipped surrogate, to minimise: masked mean over tokens of
    ``-min(ρ A, clip(ρ, 1-ε, 1+ε) A)`` with ``ρ = exp(logprobs - old_logprobs)``. (B, R) → scalar."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range) * advantages
    return -(torch.min(unclipped, clipped) * mask).sum() / mask.sum()


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float = 0.1,
) -> torch.Tensor:
    """DPO (Rafailov et al. 2023): mean of ``-log σ(β[(π_c - ref_c) - (π_r - ref_r)])``
    over pairs of summed answer log-probabilities, each (N,) → scalar."""
    logits = (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)
    return F.softplus(-beta * logits).mean()


# --------------------------------------------------------------------------- preference data


@dataclass
class PreferencePairs:
    """Labelled pairs: ``chosen`` and ``rejected`` rollouts (same prompts, row by row),
    their true scores and whether the annotator's label agrees with the truth."""

    chosen: Rollout
    rejected: Rollout
    true_chosen: torch.Tensor
    true_rejected: torch.Tensor

    def __len__(self) -> int:
        return self.chosen.ids.size(0)

    def subset(self, rows: torch.Tensor | slice) -> PreferencePairs:
        def cut(r: Rollout) -> Rollout:
            ids, mask = r.ids[rows], r.mask[rows]
            width = max(int(mask.sum(1).max().item()), 1) if len(mask) else 1
            return Rollout(ids[:, : r.prompt_len + width], mask[:, :width], r.prompt_len)

        return PreferencePairs(
            cut(self.chosen), cut(self.rejected), self.true_chosen[rows], self.true_rejected[rows]
        )


def _pad_rollouts(a: Rollout, b: Rollout) -> tuple[Rollout, Rollout]:
    R = max(a.mask.size(1), b.mask.size(1))

    def pad(r: Rollout) -> Rollout:
        extra = R - r.mask.size(1)
        fill = r.ids[:, -1:].expand(-1, extra)
        return Rollout(torch.cat([r.ids, fill], 1), F.pad(r.mask, (0, extra)), r.prompt_len)

    return pad(a), pad(b)


def collect_preferences(
    model: nn.Module,
    tokenizer: CharTokenizer,
    prompts: Sequence[str],
    end: str,
    max_new_tokens: int,
    *,
    keep_ties: bool = False,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> PreferencePairs:
    """Two answers per prompt from ``model``, labelled by the hidden :func:`true_score` with
    Bradley–Terry noise: a is preferred with probability ``σ(4 (true_a - true_b))``.

    Ties (equal true scores) are dropped unless ``keep_ties`` (then labelled at random)."""
    stop = tokenizer.encode(end)
    firsts, seconds, score_a, score_b = [], [], [], []
    for i in range(0, len(prompts), batch_size):
        ids = encode_prompts(tokenizer, prompts[i : i + batch_size]).to(device)
        a = sample(model, ids, stop, max_new_tokens, generator=generator)
        b = sample(model, ids, stop, max_new_tokens, generator=generator)
        a, b = _pad_rollouts(a, b)
        firsts.append(a)
        seconds.append(b)
        score_a += [true_score(t, end) for t in a.texts(tokenizer)]
        score_b += [true_score(t, end) for t in b.texts(tokenizer)]
    R = max(r.mask.size(1) for r in firsts)
    a = _cat_rollouts(firsts, R)
    b = _cat_rollouts(seconds, R)
    ta, tb = torch.tensor(score_a), torch.tensor(score_b)
    p_a = torch.sigmoid(LABEL_TEMPERATURE * (ta - tb))
    a_wins = torch.rand(len(ta), generator=generator) < p_a
    keep = torch.ones_like(a_wins) if keep_ties else ta != tb
    rows = keep.nonzero().squeeze(1)
    w = a_wins[:, None].to(a.ids.device)
    wm = a_wins[:, None].to(a.mask.device)
    chosen = Rollout(torch.where(w, a.ids, b.ids), torch.where(wm, a.mask, b.mask), a.prompt_len)
    rejected = Rollout(torch.where(w, b.ids, a.ids), torch.where(wm, b.mask, a.mask), a.prompt_len)
    pairs = PreferencePairs(
        chosen, rejected, torch.where(a_wins, ta, tb), torch.where(a_wins, tb, ta)
    )
    return pairs.subset(rows)


def _cat_rollouts(parts: list[Rollout], R: int) -> Rollout:
    ids, masks = [], []
    for r in parts:
        extra = R - r.mask.size(1)
        ids.append(torch.cat([r.ids, r.ids[:, -1:].expand(-1, extra)], 1))
        masks.append(F.pad(r.mask, (0, extra)))
    return Rollout(torch.cat(ids), torch.cat(masks), parts[0].prompt_len)


# --------------------------------------------------------------------------- reward model


class RewardModel(nn.Module):
    """A GPT trunk with a scalar head: a score for each answer token, summed over the
    answer (``pooling="sum"``) or read at its last token (``"last"``, as in TRL).

    ``forward(ids (B, T), mask (B, R), prompt_len)`` → scores (B,), standardised with
    ``score_mean``/``score_std`` (set by :meth:`normalise` on the SFT policy's answers).
    """

    def __init__(self, gpt: GPT, pooling: str = "sum") -> None:
        super().__init__()
        if pooling not in ("sum", "last"):
            raise ValueError(f"pooling must be 'sum' or 'last', got {pooling!r}")
        self.pretrained_model = copy.deepcopy(gpt)
        self.pooling = pooling
        self.score_head = nn.Linear(gpt.config.n_embd, 1)
        nn.init.normal_(self.score_head.weight, std=0.02)
        nn.init.zeros_(self.score_head.bias)
        self.register_buffer("score_mean", torch.zeros(()))
        self.register_buffer("score_std", torch.ones(()))

    def raw(self, ids: torch.Tensor, mask: torch.Tensor, prompt_len: int) -> torch.Tensor:
        h = hidden_states(self.pretrained_model, ids)[:, prompt_len:]  # (B, R, C)
        token_scores = self.score_head(h).squeeze(-1)  # (B, R)
        if self.pooling == "sum":
            return (token_scores * mask).sum(1)
        last = mask.sum(1).long().clamp(min=1) - 1
        return token_scores[torch.arange(ids.size(0), device=ids.device), last]

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, prompt_len: int) -> torch.Tensor:
        return (self.raw(ids, mask, prompt_len) - self.score_mean) / self.score_std

    def score(self, rollout: Rollout) -> torch.Tensor:
        return self(rollout.ids, rollout.mask, rollout.prompt_len)

    @torch.no_grad()
    def normalise(self, rollouts: Sequence[Rollout]) -> None:
        """Make the scores of these (SFT) answers mean 0, standard deviation 1."""
        raw = torch.cat([self.raw(r.ids, r.mask, r.prompt_len) for r in rollouts])
        self.score_mean.fill_(raw.mean())
        self.score_std.fill_(raw.std().clamp(min=1e-6))


@dataclass
class RewardConfig:
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 3e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0


def train_reward_model(
    model: RewardModel,
    pairs: PreferencePairs,
    config: RewardConfig,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = bradley_terry_loss,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> list[float]:
    """Bradley–Terry training on ``pairs``; returns the loss of each step."""
    from tqdm.auto import tqdm

    if len(pairs) == 0:
        raise ValueError("no preference pairs to train on: collect more prompts (or keep_ties).")
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps = config.epochs * math.ceil(len(pairs) / config.batch_size)
    losses: list[float] = []
    model.train()
    bar = tqdm(total=steps, desc="reward model", disable=not progress, leave=False)
    for _ in range(config.epochs):
        order = torch.randperm(len(pairs), generator=generator)
        for i in range(0, len(pairs), config.batch_size):
            batch = pairs.subset(order[i : i + config.batch_size])
            loss = loss_fn(model.raw(*_args(batch.chosen)), model.raw(*_args(batch.rejected)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(loss.item())
            bar.update(1)
    bar.close()
    model.eval()
    return losses


def _args(r: Rollout) -> tuple[torch.Tensor, torch.Tensor, int]:
    return r.ids, r.mask, r.prompt_len


@torch.no_grad()
def reward_accuracy(model: RewardModel, pairs: PreferencePairs) -> float:
    """Share of ``pairs`` the reward model ranks like the hidden true preference — not
    like the noisy label. A pair the truth scores equal counts half (no preference to get
    right), as in :func:`win_rate`."""
    if len(pairs) == 0:
        raise ValueError("no pairs to measure the accuracy on: hold out more pairs.")
    rm = model.score(pairs.chosen) - model.score(pairs.rejected)
    truth = pairs.true_chosen - pairs.true_rejected
    agree = (torch.sign(rm.cpu()) == torch.sign(truth)).float()
    return torch.where(truth == 0, 0.5, agree).mean().item()


# --------------------------------------------------------------------------- PPO


class CausalLMWithValueHead(nn.Module):
    """The policy: a GPT plus a value head on its last hidden states (TRL's
    ``AutoModelForCausalLMWithValueHead``). ``forward(ids (B, T))`` → logits (B, T, V),
    values (B, T)."""

    def __init__(self, gpt: GPT) -> None:
        super().__init__()
        self.pretrained_model = gpt
        self.v_head = nn.Linear(gpt.config.n_embd, 1)
        nn.init.zeros_(self.v_head.weight)
        nn.init.zeros_(self.v_head.bias)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = hidden_states(self.pretrained_model, ids)
        return self.pretrained_model.lm_head(h), self.v_head(h).squeeze(-1)


@dataclass
class PPOConfig:
    iterations: int = 40
    batch_size: int = 64  # rollouts per iteration
    mini_batch_size: int = 32
    ppo_epochs: int = 4
    learning_rate: float = 3e-5
    kl_coef: float = 0.2  # β of the per-token KL penalty
    gamma: float = 1.0
    lam: float = 0.95
    clip_range: float = 0.2
    clip_range_value: float = 0.2
    vf_coef: float = 0.5
    grad_clip: float = 1.0
    max_new_tokens: int = 32
    temperature: float = 1.0


@dataclass
class PPOStats:
    """One row per iteration: proxy (reward-model) score, true score, KL to the
    reference (nats per answer), losses and a few sample answers."""

    history: list[dict[str, float]] = field(default_factory=list)
    samples: list[list[str]] = field(default_factory=list)


def whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Normalise the masked entries of ``x`` to mean 0, std 1 (0 on padding)."""
    n = mask.sum()
    mean = (x * mask).sum() / n
    var = (((x - mean) * mask) ** 2).sum() / n
    return (x - mean) * torch.rsqrt(var + 1e-8) * mask


def ppo_train(
    policy: CausalLMWithValueHead,
    ref_model: GPT,
    reward_model: RewardModel,
    tokenizer: CharTokenizer,
    prompts: Sequence[str],
    end: str,
    config: PPOConfig,
    *,
    rewards_fn: Callable[..., torch.Tensor] = kl_penalized_rewards,
    gae_fn: Callable[..., tuple[torch.Tensor, torch.Tensor]] = compute_gae,
    policy_loss_fn: Callable[..., torch.Tensor] = ppo_clip_loss,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    on_iteration: Callable[[int, dict[str, float]], None] | None = None,
) -> PPOStats:
    """PPO with a KL penalty to ``ref_model`` (frozen), as in InstructGPT / TRL.

    Each iteration: sample ``batch_size`` answers, score them with ``reward_model``,
    compute per-token KL-penalised rewards, GAE advantages, then ``ppo_epochs`` passes of
    clipped policy and value updates over mini-batches.
    """
    from tqdm.auto import tqdm

    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    stop = tokenizer.encode(end)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)
    stats = PPOStats()
    for p in list(ref_model.parameters()) + list(reward_model.parameters()):
        p.requires_grad_(False)
    ref_model.eval()
    reward_model.eval()
    bar = tqdm(range(config.iterations), desc="PPO", disable=not progress, leave=False)
    for it in bar:
        rows = torch.randint(len(prompts), (config.batch_size,), generator=generator)
        prompt_ids = encode_prompts(tokenizer, [prompts[i] for i in rows.tolist()]).to(device)
        roll = sample(
            policy,
            prompt_ids,
            stop,
            config.max_new_tokens,
            temperature=config.temperature,
            generator=generator,
        )
        P, mask = roll.prompt_len, roll.mask
        with torch.no_grad():
            policy.eval()
            logits, values = policy(roll.ids)
            old_logprobs = response_logprobs(logits, roll.ids, P) * mask
            values = values[:, P - 1 : -1] * mask  # the value of the state before each token
            ref_logprobs = response_logprobs(ref_model(roll.ids)[0], roll.ids, P) * mask
            scores = reward_model.score(roll)
            rewards = rewards_fn(scores, old_logprobs, ref_logprobs, mask, config.kl_coef)
            advantages, returns = gae_fn(rewards, values, mask, config.gamma, config.lam)
            advantages = whiten(advantages, mask)
        texts = roll.texts(tokenizer)
        true = torch.tensor([true_score(t, end) for t in texts])
        kl = ((old_logprobs - ref_logprobs) * mask).sum(1).mean().item()
        policy.train()
        pg_losses, vf_losses = [], []
        for _ in range(config.ppo_epochs):
            order = torch.randperm(config.batch_size, generator=generator)
            for i in range(0, config.batch_size, config.mini_batch_size):
                mb = order[i : i + config.mini_batch_size].to(device)
                m = mask[mb]
                logits, v = policy(roll.ids[mb])
                logprobs = response_logprobs(logits, roll.ids[mb], P)
                v = v[:, P - 1 : -1]
                pg_loss = policy_loss_fn(
                    logprobs, old_logprobs[mb], advantages[mb], m, config.clip_range
                )
                v_clipped = values[mb] + (v - values[mb]).clamp(
                    -config.clip_range_value, config.clip_range_value
                )
                vf = torch.max((v - returns[mb]) ** 2, (v_clipped - returns[mb]) ** 2)
                vf_loss = 0.5 * (vf * m).sum() / m.sum()
                loss = pg_loss + config.vf_coef * vf_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
                optimizer.step()
                pg_losses.append(pg_loss.item())
                vf_losses.append(vf_loss.item())
        row = {
            "iteration": it,
            "proxy": scores.mean().item(),
            "true": true.mean().item(),
            "kl": kl,
            "well_formed": (true > MALFORMED_SCORE).float().mean().item(),
            "pg_loss": sum(pg_losses) / len(pg_losses),
            "vf_loss": sum(vf_losses) / len(vf_losses),
            "length": mask.sum(1).mean().item(),
        }
        stats.history.append(row)
        stats.samples.append(texts[:6])
        bar.set_postfix(proxy=f"{row['proxy']:.2f}", true=f"{row['true']:.2f}", kl=f"{kl:.1f}")
        if on_iteration is not None:
            on_iteration(it, row)
    policy.eval()
    return stats


# --------------------------------------------------------------------------- DPO


@dataclass
class DPOConfig:
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 5e-5
    beta: float = 0.1
    nll_coef: float = 1.0  # RPO-style: + length-normalised NLL of the chosen answer
    grad_clip: float = 1.0


def dpo_train(
    policy: GPT,
    ref_model: GPT,
    pairs: PreferencePairs,
    config: DPOConfig,
    *,
    loss_fn: Callable[..., torch.Tensor] = dpo_loss,
    generator: torch.Generator | None = None,
    progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Direct preference optimisation on ``pairs`` from the SFT start, with an NLL term on
    the chosen answers (Pang et al. 2024) that keeps the text well-formed."""
    from tqdm.auto import tqdm

    if len(pairs) == 0:
        raise ValueError("no preference pairs to train on: collect more prompts (or keep_ties).")
    ref_model.eval()
    for p in ref_model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        ref_c = torch.cat(
            [
                sequence_logprobs(ref_model, pairs.subset(slice(i, i + 256)).chosen)
                for i in range(0, len(pairs), 256)
            ]
        )
        ref_r = torch.cat(
            [
                sequence_logprobs(ref_model, pairs.subset(slice(i, i + 256)).rejected)
                for i in range(0, len(pairs), 256)
            ]
        )
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)
    steps = config.epochs * math.ceil(len(pairs) / config.batch_size)
    bar = tqdm(total=steps, desc="DPO", disable=not progress, leave=False)
    history: list[dict[str, float]] = []
    policy.train()
    step = 0
    for _ in range(config.epochs):
        order = torch.randperm(len(pairs), generator=generator)
        for i in range(0, len(pairs), config.batch_size):
            rows = order[i : i + config.batch_size]
            batch = pairs.subset(rows)
            pc = sequence_logprobs(policy, batch.chosen)
            pr = sequence_logprobs(policy, batch.rejected)
            rc, rr = ref_c[rows.to(ref_c.device)], ref_r[rows.to(ref_r.device)]
            pref = loss_fn(pc, pr, rc, rr, config.beta)
            nll = -(pc / batch.chosen.mask.sum(1)).mean()
            loss = pref + config.nll_coef * nll
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
            optimizer.step()
            margin = config.beta * ((pc - rc) - (pr - rr))
            row = {
                "step": step,
                "dpo_loss": pref.item(),
                "nll": nll.item(),
                "reward_margin": margin.mean().item(),
                "reward_accuracy": (margin > 0).float().mean().item(),
            }
            history.append(row)
            if on_step is not None:
                on_step(step, row)
            step += 1
            bar.update(1)
    bar.close()
    policy.eval()
    return history


# --------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """A policy's answers to fixed prompts: texts, true and proxy scores (B,), KL to the
    reference per answer (B,) in nats."""

    texts: list[str]
    true: torch.Tensor
    proxy: torch.Tensor
    kl: torch.Tensor

    def summary(self) -> dict[str, float]:
        return {
            "true": self.true.mean().item(),
            "proxy": self.proxy.mean().item(),
            "kl": self.kl.mean().item(),
            "well_formed": (self.true > MALFORMED_SCORE).float().mean().item(),
        }


@torch.no_grad()
def evaluate_policy(
    model: nn.Module,
    ref_model: GPT,
    reward_model: RewardModel,
    tokenizer: CharTokenizer,
    prompts: Sequence[str],
    end: str,
    max_new_tokens: int,
    *,
    seed: int = 1234,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> Evaluation:
    """One answer per prompt (sampled at temperature 1 with a fixed seed), scored by the
    truth and by the reward model; KL = Σ_t log π(y_t) − log π_ref(y_t) on those samples
    (an unbiased estimate of KL(π ‖ π_ref) per answer)."""
    g = torch.Generator().manual_seed(seed)
    stop = tokenizer.encode(end)
    texts, proxy, kl = [], [], []
    for i in range(0, len(prompts), batch_size):
        ids = encode_prompts(tokenizer, prompts[i : i + batch_size]).to(device)
        roll = sample(model, ids, stop, max_new_tokens, generator=g)
        texts += roll.texts(tokenizer)
        proxy.append(reward_model.score(roll).cpu())
        kl.append((sequence_logprobs(model, roll) - sequence_logprobs(ref_model, roll)).cpu())
    true = torch.tensor([true_score(t, end) for t in texts])
    return Evaluation(texts, true, torch.cat(proxy), torch.cat(kl))


def win_rate(scores: torch.Tensor, baseline: torch.Tensor) -> float:
    """Share of prompts where ``scores`` beat ``baseline`` (B,), ties counting half."""
    if scores.shape != baseline.shape:
        raise ValueError(
            f"need one score per prompt on both sides, got {scores.shape} and {baseline.shape}"
        )
    return ((scores > baseline).float() + 0.5 * (scores == baseline).float()).mean().item()
