"""A small CLIP for captioned shapes (lesson 08), reused by lesson 10.

Two encoders map an image and a caption into one embedding space, where matching pairs
have a high cosine similarity (Radford et al., 2021). The names follow open_clip:
``model.encode_image(images)``, ``model.encode_text(tokens)``, ``model.logit_scale`` (the
log of the inverse temperature) and ``tokenizer(texts)``.

- the **image encoder** is a small CNN over ``(B, 3, 16, 16)`` images in [-1, 1];
- the **text encoder** is lesson 03's transformer (:class:`labs.gpt.Block`, causal
  attention) over word tokens; like CLIP, it reads the feature at the end-of-text token;
- training minimises the symmetric InfoNCE loss (:func:`clip_loss`), optionally with
  **hard negatives**: captions that change one attribute of the true one, added to every
  image's candidate list (:func:`hard_negative_tokens`).

>>> model, tokenizer = pretrained(smoke=True)                   # doctest: +SKIP
>>> model.encode_text(tokenizer(["a small red circle at the top left"])).shape  # doctest: +SKIP
torch.Size([1, 64])
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from labs import checkpoints, shapes
from labs.gpt import Block, GPTConfig

__all__ = [
    "CLIP",
    "CLIPConfig",
    "ClipTrainConfig",
    "Tokenizer",
    "clip_loss",
    "hard_negative_tokens",
    "pretrained",
    "recall_at_k",
    "template_tokens",
    "train_clip",
    "zero_shot_classify",
]

# --------------------------------------------------------------------------- tokenizer


class Tokenizer:
    """Word-level tokenizer over :data:`labs.shapes.WORDS`, open_clip style.

    ``tokenizer(["a red circle"])`` → ``(1, context_length)`` int64: the word ids, then
    ``<eot>`` (end of text, where the text encoder reads its feature), then ``<pad>`` (0).
    """

    PAD, EOT = "<pad>", "<eot>"

    def __init__(self, words: Sequence[str] = shapes.WORDS, context_length: int = 12) -> None:
        self.vocab = [self.PAD, self.EOT, *words]
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.context_length = context_length
        self.pad_id, self.eot_id = 0, 1

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise ValueError(f"expected a caption string, got {type(text).__name__}")
        words = re.findall(r"[^\W_]+", text.lower())
        unknown = [w for w in words if w not in self.index or w in (self.PAD, self.EOT)]
        if unknown:
            raise ValueError(
                f"unknown word {unknown[0]!r} in {text!r}: the tokenizer knows only "
                f"{self.vocab[2:]}"
            )
        if len(words) + 1 > self.context_length:
            raise ValueError(
                f"{text!r} has {len(words)} words; at most {self.context_length - 1} fit "
                "(one position is the end-of-text token)"
            )
        return [self.index[w] for w in words] + [self.eot_id]

    def __call__(self, texts: str | Iterable[str]) -> torch.Tensor:
        """``texts`` (a string or B strings) → ``(B, context_length)`` int64 tokens."""
        if isinstance(texts, str):
            texts = [texts]
        rows = [self.encode(t) for t in texts]
        out = torch.zeros(len(rows), self.context_length, dtype=torch.int64)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row)
        return out

    def decode(self, tokens: torch.Tensor) -> str:
        words = []
        for t in tokens.tolist():
            if t == self.eot_id:
                break
            words.append(self.vocab[t])
        return " ".join(words)


# --------------------------------------------------------------------------- model


@dataclass
class CLIPConfig:
    embed_dim: int = 64  # the shared embedding space
    image_size: int = 16
    vision_width: int = 16  # channels of the first conv layer (then 2x, 4x)
    vocab_size: int = len(shapes.WORDS) + 2
    context_length: int = 12
    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 4
    init_temperature: float = 0.07  # CLIP's: logit_scale starts at log(1 / 0.07)
    colour_blind_shapes: bool = False  # the image encoder's shape pathway sees no colour

    def __post_init__(self) -> None:
        for name in ("embed_dim", "vision_width", "vocab_size", "context_length", "text_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"CLIPConfig.{name} must be a positive int, got {value!r}")
        if not isinstance(self.image_size, int) or self.image_size % 4 or self.image_size < 8:
            raise ValueError(
                f"CLIPConfig.image_size must be a multiple of 4 and >= 8, got {self.image_size!r}"
            )
        if self.text_width % self.text_heads:
            raise ValueError(
                f"text_width ({self.text_width}) must be divisible by text_heads ({self.text_heads})"
            )


class ImageEncoder(nn.Module):
    """CNN: ``(B, 3, S, S)`` → ``(B, embed_dim)``. Three 3×3 convs (the last two halve
    the resolution), then a Linear over the flattened ``(4w, S/4, S/4)`` map: no global
    pooling, so *where* the object is survives (captions name the position).

    With ``colour_blind_shapes`` the convs see only the brightness ``max_c x`` (one
    channel: where the object is, not its colour), and a second, tiny pathway reads the
    object's mean colour; the two are concatenated before the projection. Shape features
    are then the same for every colour by construction.
    """

    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        w, s = config.vision_width, config.image_size // 4
        self.colour_blind = config.colour_blind_shapes
        self.net = nn.Sequential(
            nn.Conv2d(1 if self.colour_blind else 3, w, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Flatten(),
        )
        n_colour = 2 * w if self.colour_blind else 0
        if self.colour_blind:
            self.colour = nn.Sequential(nn.Linear(3, n_colour), nn.GELU())
        self.proj = nn.Linear(4 * w * s * s + n_colour, config.embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.colour_blind:
            return self.proj(self.net(images))
        rgb = (images + 1) / 2  # (B, 3, S, S) in [0, 1], black background
        brightness = rgb.amax(dim=1, keepdim=True)  # (B, 1, S, S)
        mean_colour = (rgb * brightness).sum(dim=(2, 3)) / (
            brightness.square().sum(dim=(2, 3)) + 1e-6
        )  # (B, 3): the object's colour, whatever its size
        return self.proj(torch.cat([self.net(brightness * 2 - 1), self.colour(mean_colour)], dim=1))


class TextEncoder(nn.Module):
    """Transformer: tokens ``(B, T)`` → ``(B, embed_dim)``, the feature at ``<eot>``.

    Token + position embeddings, ``text_layers`` GPT blocks (causal, as in CLIP: the
    end-of-text position has read the whole caption; the padding after it is never
    read), a final LayerNorm and a Linear projection.
    """

    def __init__(self, config: CLIPConfig, eot_id: int = 1) -> None:
        super().__init__()
        gpt_config = GPTConfig(
            vocab_size=config.vocab_size,
            block_size=config.context_length,
            n_layer=config.text_layers,
            n_head=config.text_heads,
            n_embd=config.text_width,
        )
        self.eot_id = eot_id
        self.token_embedding = nn.Embedding(config.vocab_size, config.text_width)
        self.positional_embedding = nn.Parameter(
            0.01 * torch.randn(config.context_length, config.text_width)
        )
        self.blocks = nn.ModuleList(Block(gpt_config) for _ in range(config.text_layers))
        self.ln_final = nn.LayerNorm(config.text_width)
        self.text_projection = nn.Linear(config.text_width, config.embed_dim, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        B, T = tokens.shape
        if self.positional_embedding.shape[0] < T:
            raise ValueError(
                f"tokens have {T} positions, the text encoder at most "
                f"{self.positional_embedding.shape[0]}: use the model's tokenizer"
            )
        is_eot = tokens == self.eot_id
        if not bool(is_eot.any(dim=1).all()):
            raise ValueError(
                "every row of tokens needs an end-of-text token: make them with the "
                "model's tokenizer (labs.clip.Tokenizer)"
            )
        x = self.token_embedding(tokens) + self.positional_embedding[:T]
        for block in self.blocks:
            x = block(x)
        x = self.ln_final(x)
        eot = is_eot.int().argmax(dim=1)  # the first <eot> of each row
        return self.text_projection(x[torch.arange(B, device=x.device), eot])


class CLIP(nn.Module):
    """Image and text encoders into one ``embed_dim`` space, plus ``logit_scale``.

    ``forward(images, tokens)`` returns ``(image_features, text_features, scale)`` like
    open_clip: L2-normalised features ``(B, D)`` and ``scale = logit_scale.exp()``, so
    that ``scale * image_features @ text_features.T`` are the logits.
    """

    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.config = config
        self.visual = ImageEncoder(config)
        self.transformer = TextEncoder(config)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / config.init_temperature)))

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """``(B, 3, S, S)`` in [-1, 1] → ``(B, embed_dim)``."""
        S = self.config.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, S, S):
            raise ValueError(
                f"expected images of shape (B, 3, {S}, {S}), got {tuple(images.shape)}"
            )
        features = self.visual(images)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """``(B, T)`` int64 tokens (from the tokenizer) → ``(B, embed_dim)``."""
        if tokens.dim() != 2 or tokens.dtype != torch.int64:
            raise ValueError(
                f"expected (B, T) int64 tokens from the tokenizer, got "
                f"{tuple(tokens.shape)} {tokens.dtype}"
            )
        features = self.transformer(tokens)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(
        self, images: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            self.encode_image(images, normalize=True),
            self.encode_text(tokens, normalize=True),
            self.logit_scale.exp(),
        )


# --------------------------------------------------------------------------- the three exercises


def clip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor | float,
    hard_negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE: image i's caption is text i, and text i's image is image i.

    ``image_features``, ``text_features`` ``(N, D)`` (normalised here), ``logit_scale``
    the multiplier ``exp(model.logit_scale)``. The logits ``scale · cos`` form an
    ``(N, N)`` matrix; the loss is the mean of the cross-entropy over its rows
    (image → text) and over its columns (text → image), with the diagonal as targets.
    ``hard_negatives`` ``(M, D)``: extra captions, appended as wrong answers to every
    image's row only (image → text).
    """
    if image_features.shape != text_features.shape or image_features.dim() != 2:
        raise ValueError(
            f"expected image and text features of the same shape (N, D), got "
            f"{tuple(image_features.shape)} and {tuple(text_features.shape)}"
        )
    image_features = F.normalize(image_features, dim=-1)
    text_features = F.normalize(text_features, dim=-1)
    logits = logit_scale * image_features @ text_features.T  # (N, N)
    labels = torch.arange(len(logits), device=logits.device)
    loss_t2i = F.cross_entropy(logits.T, labels)
    if hard_negatives is not None:
        extra = logit_scale * image_features @ F.normalize(hard_negatives, dim=-1).T
        logits = torch.cat([logits, extra], dim=1)  # (N, N + M)
    return (F.cross_entropy(logits, labels) + loss_t2i) / 2


def zero_shot_classify(
    image_features: torch.Tensor, class_text_features: torch.Tensor
) -> torch.Tensor:
    """Zero-shot classification with prompt ensembling.

    ``image_features`` ``(N, D)``; ``class_text_features`` ``(C, M, D)``: M prompts per
    class (or ``(C, D)``: one). Normalise every prompt, average a class's prompts,
    normalise again (the class embedding), and return the index of the class with the
    highest cosine similarity, ``(N,)`` int64.
    """
    if class_text_features.dim() == 2:
        class_text_features = class_text_features.unsqueeze(1)
    if image_features.dim() != 2 or class_text_features.dim() != 3:
        raise ValueError(
            f"expected image features (N, D) and class text features (C, M, D) or (C, D), "
            f"got {tuple(image_features.shape)} and {tuple(class_text_features.shape)}"
        )
    classes = F.normalize(F.normalize(class_text_features, dim=-1).mean(dim=1), dim=-1)
    return (F.normalize(image_features, dim=-1) @ classes.T).argmax(dim=1)


def recall_at_k(similarity: torch.Tensor, k: int) -> float:
    """Retrieval recall@k: ``similarity`` ``(N, N)``, row i's match is column i.

    The fraction of rows whose match is among the ``k`` highest scores of the row; a
    tie counts against it only if the other score is strictly higher. For text → image,
    pass ``similarity.T``.
    """
    if similarity.dim() != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"expected a square (N, N) similarity, got {tuple(similarity.shape)}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    match = similarity.diagonal().unsqueeze(1)  # (N, 1)
    rank = (similarity > match).sum(dim=1)  # how many beat the match
    return (rank < k).float().mean().item()


# --------------------------------------------------------------------------- captions as tokens


def template_tokens(
    tokenizer: Tokenizer, templates: Sequence[str] = shapes.CAPTION_TEMPLATES
) -> torch.Tensor:
    """Every shape's caption under every template, tokenised: ``(96, len(templates), T)``,
    in :func:`labs.shapes.all_shapes` order."""
    return torch.stack(
        [tokenizer([shapes.caption(s, t) for t in templates]) for s in shapes.all_shapes()]
    )


_SIZES = {name: len(values) for name, values in shapes.ATTRIBUTES.items()}


def _swap(index: torch.Tensor, attribute: str, shift: torch.Tensor) -> torch.Tensor:
    """Caption indices with one attribute changed by ``shift`` (mod its count)."""
    names = list(shapes.ATTRIBUTES)
    stride = math.prod(_SIZES[n] for n in names[names.index(attribute) + 1 :])
    value = (index // stride) % _SIZES[attribute]
    return index + ((value + shift) % _SIZES[attribute] - value) * stride


def hard_negative_tokens(
    captions: torch.Tensor,
    template: torch.Tensor,
    table: torch.Tensor,
    allowed: torch.Tensor,
    generator: torch.Generator | None = None,
    attributes: Sequence[str] = ("shape", "colour"),
) -> torch.Tensor:
    """Hard negatives: for each caption index ``(N,)``, one caption per attribute in
    ``attributes`` with that attribute changed (at random) and everything else — the
    template included — kept. ``allowed`` ``(96,)`` bool marks the captions that may be
    used (the seen combinations: held-out combinations are never shown, not even as
    text). Returns tokens ``(N * len(attributes), T)``."""
    out = []
    for attribute in attributes:
        n_values = _SIZES[attribute]
        shift = torch.randint(1, n_values, captions.shape, generator=generator)
        swapped = _swap(captions, attribute, shift)
        for _ in range(n_values - 2):  # try the other values when the swap is not allowed
            bad = ~allowed[swapped]
            shift = torch.where(bad, shift % (n_values - 1) + 1, shift)
            swapped = torch.where(bad, _swap(captions, attribute, shift), swapped)
        out.append(table[swapped, template])
    return torch.cat(out)


# --------------------------------------------------------------------------- training


@dataclass
class ClipTrainConfig:
    steps: int = 600
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50  # at most a fifth of the steps
    hard_negatives: bool = True
    negative_combos: str = "seen"  # "seen": hard negatives use seen combos only; "all": any
    negative_attributes: tuple[str, ...] = ("shape",)  # one hard negative per attribute
    n_images: int = 20_000  # the training pool (seen combinations only)
    held_out: float = 0.25  # fraction of colour–shape pairs never shown (split_combos)
    seed: int = 0


def train_clip(
    model: CLIP,
    tokenizer: Tokenizer,
    config: ClipTrainConfig,
    *,
    device: torch.device | str = "cpu",
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` in place on captioned shapes of the seen combinations; return
    the loss per step. Each image gets its caption under a random template of
    :data:`labs.shapes.CAPTION_TEMPLATES`; with ``hard_negatives`` every batch also
    carries, per image, its caption with one attribute changed for each of
    ``negative_attributes`` (by default a shape-swapped caption)."""
    seen, _ = shapes.split_combos(config.held_out, seed=config.seed)
    images, _, labels = shapes.make_dataset(
        config.n_images, combos=seen, seed=config.seed, image_size=model.config.image_size
    )
    table = template_tokens(tokenizer)
    if config.negative_combos not in ("seen", "all"):
        raise ValueError(f"negative_combos must be 'seen' or 'all', got {config.negative_combos!r}")
    allowed = torch.tensor(
        [config.negative_combos == "all" or s.combo in seen for s in shapes.all_shapes()]
    )
    g = torch.Generator().manual_seed(config.seed)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": other, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )
    warmup = min(config.warmup_steps, config.steps // 5)  # short runs warm up for 20 %
    model.train()
    losses = []
    for step in range(config.steps):
        if step < warmup:
            lr = config.learning_rate * (step + 1) / warmup
        else:
            progress = (step - warmup) / max(config.steps - warmup, 1)
            lr = 0.1 * config.learning_rate + 0.9 * config.learning_rate * 0.5 * (
                1 + math.cos(math.pi * progress)
            )
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = torch.randint(len(images), (config.batch_size,), generator=g)
        caps = labels["caption"][idx]
        template = torch.randint(table.shape[1], (config.batch_size,), generator=g)
        tokens = table[caps, template]
        negatives = None
        if config.hard_negatives:
            negatives = hard_negative_tokens(
                caps, template, table, allowed, g, attributes=config.negative_attributes
            )
            tokens = torch.cat([tokens, negatives])
        image_features = model.encode_image(images[idx].to(device))
        text_features = model.encode_text(tokens.to(device))
        n = config.batch_size
        loss = clip_loss(
            image_features,
            text_features[:n],
            model.logit_scale.exp(),
            hard_negatives=text_features[n:] if negatives is not None else None,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))  # CLIP caps the scale at 100
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    return losses


# --------------------------------------------------------------------------- the cached model


def pretrained_configs(smoke: bool) -> tuple[CLIPConfig, ClipTrainConfig]:
    """The model and training recipe lesson 08 trains (and caches) in each mode."""
    train = ClipTrainConfig(steps=40, n_images=2000) if smoke else ClipTrainConfig(steps=600)
    return CLIPConfig(colour_blind_shapes=True), train


def pretrained(
    smoke: bool = False,
    device: torch.device | str = "cpu",
    *,
    on_step: Callable[[int, float], None] | None = None,
    retrain: bool = False,
) -> tuple[CLIP, Tokenizer]:
    """Lesson 08's trained CLIP and its tokenizer, from the checkpoint cache (trained and
    cached on first use: a few seconds in smoke mode, a few minutes in full mode)."""
    config, train_config = pretrained_configs(smoke)
    tokenizer = Tokenizer(context_length=config.context_length)
    torch.manual_seed(train_config.seed)
    model = CLIP(config)
    manifest = {"model": asdict(config), "train": asdict(train_config)}
    checkpoints.load_or_train(
        "clip_shapes",
        model,
        manifest,
        lambda m: train_clip(m.to(device), tokenizer, train_config, device=device, on_step=on_step),
        how=f"lesson 08 ({'smoke' if smoke else 'full'} mode): labs.clip.pretrained",
        retrain=retrain,
    )
    return model.to(device).eval(), tokenizer
