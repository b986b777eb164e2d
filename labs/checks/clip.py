"""Checks for lesson 08 (CLIP).

Three exercises, compared with :mod:`labs.clip`: ``clip_loss`` (the symmetric InfoNCE
loss), ``zero_shot_classify`` (classes from prompt embeddings, with ensembling) and
``recall_at_k`` (retrieval).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from labs import clip
from labs.checks.core import Case, FunctionCheck

# --------------------------------------------------------------------------- clip_loss


def _loss_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    eye = torch.eye(3)
    return [
        Case(
            "3 perfect pairs (features = identity), logit_scale = 1",
            (eye, eye.clone(), torch.tensor(1.0)),
            hint="logits = scale · cos: here the identity; each row's cross-entropy is "
            "log(e + 2) - 1 ≈ 0.551.",
        ),
        Case(
            "N=4, D=8, unit-norm random features, logit_scale = 10",
            (
                F.normalize(torch.randn(4, 8, generator=g), dim=-1),
                F.normalize(torch.randn(4, 8, generator=g), dim=-1),
                torch.tensor(10.0),
            ),
            hint="average the two directions: cross_entropy(logits, arange(N)) for "
            "image → text (rows) and cross_entropy(logits.T, arange(N)) for text → image "
            "(columns).",
        ),
        Case(
            "N=5, D=6, features of very different norms, logit_scale = 3",
            (
                torch.randn(5, 6, generator=g) * torch.arange(1.0, 6.0).unsqueeze(1),
                torch.randn(5, 6, generator=g) * 0.1,
                torch.tensor(3.0),
            ),
            hint="normalise both feature sets (F.normalize(x, dim=-1)) before the product: "
            "the logits are scaled COSINE similarities.",
        ),
        Case(
            "N=16, D=32, logit_scale = 100 (CLIP's maximum)",
            (
                torch.randn(16, 32, generator=g),
                torch.randn(16, 32, generator=g),
                torch.tensor(100.0),
            ),
            hint="logit_scale is already the multiplier exp(model.logit_scale): do not exponentiate it.",
        ),
    ]


check_clip_loss = FunctionCheck(
    "clip_loss",
    clip.clip_loss,
    _loss_cases,
    hint=(
        "i, t = F.normalize(image_features, dim=-1), F.normalize(text_features, dim=-1); "
        "logits = logit_scale * i @ t.T; labels = arange(N); "
        "(cross_entropy(logits, labels) + cross_entropy(logits.T, labels)) / 2."
    ),
    atol=1e-5,
)


# --------------------------------------------------------------------------- zero_shot_classify


def _zero_shot_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)
    # ensembling matters: class 0's prompts disagree; their mean points elsewhere than
    # either prompt alone, and one prompt has a large norm (normalise each prompt first)
    prompts = torch.tensor(
        [
            [[10.0, 0.0, 0.0], [0.0, 1.0, 0.0]],  # class 0: e_x (long) and e_y
            [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]],  # class 1: e_z
            [[1.0, 1.0, -1.0], [1.0, 1.0, -1.0]],  # class 2
        ]
    )
    images = torch.tensor([[1.0, 0.2, 0.0], [0.6, 0.6, 0.5], [0.1, 1.0, 0.0], [0.2, 0.2, 1.0]])
    return [
        Case(
            "one prompt per class (C, D): 3 images, 3 classes",
            (torch.eye(3)[[2, 0, 1]] * 5, torch.eye(3)),
            hint="the prediction is the argmax over classes of the cosine similarity, (N,) int64.",
        ),
        Case(
            "2 prompts per class, of very different norms",
            (images, prompts),
            hint="normalise every prompt BEFORE averaging a class's prompts, then normalise "
            "the mean (a long prompt must not outvote the others).",
        ),
        Case(
            "N=20 images, C=6 classes, M=4 prompts, D=16",
            (torch.randn(20, 16, generator=g), torch.randn(6, 4, 16, generator=g)),
            hint="average over the prompt dimension (dim=1) of the (C, M, D) tensor.",
        ),
        Case(
            "image features of different norms (cosine, not dot product)",
            (
                torch.randn(12, 8, generator=g) * torch.linspace(0.1, 10, 12).unsqueeze(1),
                torch.randn(5, 3, 8, generator=g),
            ),
        ),
    ]


check_zero_shot_classify = FunctionCheck(
    "zero_shot_classify",
    clip.zero_shot_classify,
    _zero_shot_cases,
    hint=(
        "if class_text_features is (C, D), unsqueeze(1); classes = normalize(normalize(t, dim=-1)"
        ".mean(1), dim=-1); return (normalize(image_features, dim=-1) @ classes.T).argmax(1)."
    ),
)


# --------------------------------------------------------------------------- recall_at_k


def _recall_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    ranked = torch.tensor(
        [
            [0.9, 0.1, 0.2, 0.0],  # match first
            [0.5, 0.4, 0.3, 0.2],  # match second
            [0.95, 0.8, 0.1, 0.0],  # match third
            [0.99, 0.85, 0.7, 0.6],  # match last
        ]
    )
    tied = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.5, 0.5], [0.2, 0.2, 0.2]])
    return [
        Case(
            "4×4, the match ranks 1st, 2nd, 3rd, 4th in its row; k = 1",
            (ranked, 1),
            hint="row i's match is column i: count how many scores in row i are HIGHER than "
            "similarity[i, i]; a hit when that count is < k.",
        ),
        Case("the same, k = 2", (ranked, 2)),
        Case(
            "the same, transposed (text → image), k = 2",
            (ranked.T.contiguous(), 2),
            hint="rows are the queries: use similarity as given, do not transpose it.",
        ),
        Case(
            "ties with the match count for it; k = 1",
            (tied, 1),
            hint="only strictly higher scores push the match down (similarity > match).",
        ),
        Case("random 30×30, k = 5", (torch.randn(30, 30, generator=g), 5)),
    ]


check_recall_at_k = FunctionCheck(
    "recall_at_k",
    clip.recall_at_k,
    _recall_cases,
    hint=(
        "match = similarity.diagonal().unsqueeze(1); rank = (similarity > match).sum(1); "
        "return (rank < k).float().mean().item()  (a Python float)."
    ),
)
