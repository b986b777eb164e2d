"""Planted bugs for lesson 08's checks (CLIP): see tests/test_check_exercises.py."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from planted import Bug, as_typed

from labs import clip

# --------------------------------------------------------------------------- clip_loss


def _logits(i, t, s):
    return s * F.normalize(i, dim=-1) @ F.normalize(t, dim=-1).T


def _loss_image_to_text_only(i, t, s):
    logits = _logits(i, t, s)
    return F.cross_entropy(logits, torch.arange(len(logits)))


def _loss_no_normalisation(i, t, s):
    logits = s * i @ t.T
    labels = torch.arange(len(logits))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _loss_sum_not_mean(i, t, s):
    logits = _logits(i, t, s)
    labels = torch.arange(len(logits))
    return F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)


def _loss_exponentiates_scale(i, t, s):
    logits = s.exp() * F.normalize(i, dim=-1) @ F.normalize(t, dim=-1).T
    labels = torch.arange(len(logits))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _loss_divides_by_scale(i, t, s):
    return clip.clip_loss(i, t, 1 / s)


def _loss_no_scale(i, t, s):
    return clip.clip_loss(i, t, 1.0)


def _loss_normalise_wrong_dim(i, t, s):
    logits = s * F.normalize(i, dim=0) @ F.normalize(t, dim=0).T
    labels = torch.arange(len(logits))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _loss_binary_targets(i, t, s):
    logits = _logits(i, t, s)
    return F.binary_cross_entropy_with_logits(logits, torch.eye(len(logits)))


def _loss_logsumexp_over_all(i, t, s):
    logits = _logits(i, t, s)  # one softmax over the whole N×N matrix
    return -(logits.diagonal() - logits.flatten().logsumexp(0)).mean()


def _loss_correct_manual(i, t, s):
    logits = _logits(i, t, s)
    log_rows = logits.log_softmax(dim=1).diagonal()
    log_cols = logits.log_softmax(dim=0).diagonal()
    return -(log_rows.mean() + log_cols.mean()) / 2


def _loss_correct_both_products(i, t, s):
    i, t = F.normalize(i, dim=-1), F.normalize(t, dim=-1)
    labels = torch.arange(len(i))
    return (F.cross_entropy(s * i @ t.T, labels) + F.cross_entropy(s * t @ i.T, labels)) / 2


# --------------------------------------------------------------------------- zero_shot_classify


def _zs_prepare(t):
    return t.unsqueeze(1) if t.dim() == 2 else t


def _zs_no_prompt_normalisation(images, texts):
    classes = F.normalize(_zs_prepare(texts).mean(dim=1), dim=-1)
    return (F.normalize(images, dim=-1) @ classes.T).argmax(dim=1)


def _zs_dot_product(images, texts):
    classes = _zs_prepare(texts).mean(dim=1)
    return (images @ classes.T).argmax(dim=1)


def _zs_first_prompt_only(images, texts):
    classes = F.normalize(_zs_prepare(texts)[:, 0], dim=-1)
    return (F.normalize(images, dim=-1) @ classes.T).argmax(dim=1)


def _zs_argmax_over_images(images, texts):
    classes = F.normalize(F.normalize(_zs_prepare(texts), dim=-1).mean(dim=1), dim=-1)
    return (F.normalize(images, dim=-1) @ classes.T).argmax(dim=0)


def _zs_returns_probabilities(images, texts):
    classes = F.normalize(F.normalize(_zs_prepare(texts), dim=-1).mean(dim=1), dim=-1)
    return (F.normalize(images, dim=-1) @ classes.T).softmax(dim=1)


def _zs_argmin(images, texts):
    classes = F.normalize(F.normalize(_zs_prepare(texts), dim=-1).mean(dim=1), dim=-1)
    return (F.normalize(images, dim=-1) @ classes.T).argmin(dim=1)


def _zs_no_2d_support(images, texts):
    classes = F.normalize(F.normalize(texts, dim=-1).mean(dim=1), dim=-1)
    return (F.normalize(images, dim=-1) @ classes.transpose(-1, -2)).argmax(dim=1)


def _zs_correct_einsum(images, texts):
    t = F.normalize(_zs_prepare(texts), dim=-1).sum(dim=1)  # the sum points where the mean does
    scores = torch.einsum("nd,cd->nc", F.normalize(images, dim=-1), F.normalize(t, dim=-1))
    return scores.max(dim=1).indices


# --------------------------------------------------------------------------- recall_at_k


def _recall_argmax_only(sim, k):
    return (sim.argmax(dim=1) == torch.arange(len(sim))).float().mean().item()


def _recall_columns(sim, k):
    match = sim.diagonal().unsqueeze(0)
    return ((sim > match).sum(dim=0) < k).float().mean().item()


def _recall_off_by_one(sim, k):
    match = sim.diagonal().unsqueeze(1)
    return ((sim > match).sum(dim=1) <= k).float().mean().item()


def _recall_ties_against(sim, k):
    match = sim.diagonal().unsqueeze(1)
    return ((sim >= match).sum(dim=1) - 1 < k).float().mean().item()  # others >= match


def _recall_lowest_scores(sim, k):
    top = sim.topk(k, dim=1, largest=False).indices
    return (top == torch.arange(len(sim)).unsqueeze(1)).any(dim=1).float().mean().item()


def _recall_exactly_kth(sim, k):
    match = sim.diagonal().unsqueeze(1)
    return ((sim > match).sum(dim=1) == k - 1).float().mean().item()


def _recall_count_not_fraction(sim, k):
    match = sim.diagonal().unsqueeze(1)
    return float(((sim > match).sum(dim=1) < k).sum())


def _recall_correct_sort(sim, k):
    hits = 0
    for i, row in enumerate(sim.tolist()):
        better = sum(1 for v in row if v > row[i])
        hits += better < k
    return hits / len(sim)


PLANTED_BUGS: dict[str, list[Bug]] = {
    "clip_loss": [
        (
            "image → text direction only",
            _loss_image_to_text_only,
            "(N=4, D=8, unit-norm random features, logit_scale = 10): output",
        ),
        (
            "no normalisation: dot products instead of cosines",
            _loss_no_normalisation,
            "(N=5, D=6, features of very different norms, logit_scale = 3): output",
        ),
        (
            "sum of the two directions, not their mean",
            _loss_sum_not_mean,
            "(3 perfect pairs (features = identity), logit_scale = 1): output",
        ),
        (
            "exponentiates logit_scale again",
            _loss_exponentiates_scale,
            "(3 perfect pairs (features = identity), logit_scale = 1): output",
        ),
        (
            "divides by the scale (temperature confusion)",
            _loss_divides_by_scale,
            "(N=4, D=8, unit-norm random features, logit_scale = 10): output",
        ),
        ("forgets the scale", _loss_no_scale, "(N=4, D=8, unit-norm random features"),
        (
            "normalises over the batch (dim=0)",
            _loss_normalise_wrong_dim,
            "(N=4, D=8, unit-norm random features, logit_scale = 10): output",
        ),
        (
            "binary cross-entropy per pair",
            _loss_binary_targets,
            "(3 perfect pairs (features = identity), logit_scale = 1): output",
        ),
        (
            "one softmax over the whole N×N matrix",
            _loss_logsumexp_over_all,
            "(3 perfect pairs (features = identity), logit_scale = 1): output",
        ),
    ],
    "zero_shot_classify": [
        (
            "averages the prompts without normalising each",
            _zs_no_prompt_normalisation,
            "(2 prompts per class, of very different norms): output",
        ),
        (
            "dot product instead of cosine",
            _zs_dot_product,
            "(2 prompts per class, of very different norms): output",
        ),
        (
            "uses the first prompt only (no ensembling)",
            _zs_first_prompt_only,
            "(2 prompts per class, of very different norms): output",
        ),
        (
            "argmax over the images (dim=0)",
            _zs_argmax_over_images,
            "(one prompt per class (C, D): 3 images, 3 classes): output",
        ),
        (
            "returns probabilities, not class indices",
            _zs_returns_probabilities,
            "expected shape (3,), got (3, 3)",
        ),
        ("argmin", _zs_argmin, "(one prompt per class (C, D): 3 images, 3 classes): output"),
        (
            "does not accept (C, D) text features",
            _zs_no_2d_support,
            "(one prompt per class (C, D): 3 images, 3 classes)",
        ),
    ],
    "recall_at_k": [
        (
            "ignores k (recall@1 always)",
            _recall_argmax_only,
            "(the same, k = 2): output",
        ),
        (
            "ranks within columns instead of rows",
            _recall_columns,
            "(the same, k = 2): output",
        ),
        (
            "off by one: rank <= k",
            _recall_off_by_one,
            "(4×4, the match ranks 1st, 2nd, 3rd, 4th in its row; k = 1): output",
        ),
        (
            "ties count against the match",
            _recall_ties_against,
            "(ties with the match count for it; k = 1): output",
        ),
        (
            "looks at the lowest scores",
            _recall_lowest_scores,
            "(the same, transposed (text → image), k = 2): output",
        ),
        (
            "counts a hit only at rank exactly k",
            _recall_exactly_kth,
            "(the same, k = 2): output",
        ),
        (
            "returns the count of hits, not the fraction",
            _recall_count_not_fraction,
            "(4×4, the match ranks 1st, 2nd, 3rd, 4th in its row; k = 1): output",
        ),
    ],
}

CORRECT_IMPLEMENTATIONS = {
    "clip_loss": [
        ("the reference, as typed", as_typed(clip.clip_loss)),
        ("log_softmax over rows and columns", _loss_correct_manual),
        ("t @ i.T for the text → image direction", _loss_correct_both_products),
    ],
    "zero_shot_classify": [
        ("the reference, as typed", as_typed(clip.zero_shot_classify)),
        ("einsum, summed prompts", _zs_correct_einsum),
    ],
    "recall_at_k": [
        ("the reference, as typed", as_typed(clip.recall_at_k)),
        ("a Python loop", _recall_correct_sort),
    ],
}
