"""labs.clip against independent references: per-row loops for the loss, brute-force
ranking for recall@k, a loop for zero-shot classification, the shapes parser for the
hard negatives, and causality (padding is never read) by perturbation."""

from __future__ import annotations

import math

import pytest
import torch

from labs import clip, shapes


def _feats(seed: int, n: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)


def _loop_loss(i, t, scale, negatives=None):
    i = [v / v.norm() for v in i]
    t = [v / v.norm() for v in t]
    extra = [v / v.norm() for v in negatives] if negatives is not None else []
    n = len(i)
    rows, cols = 0.0, 0.0
    for a in range(n):
        scores = [scale * float(i[a] @ b) for b in t + extra]
        rows += -scores[a] + math.log(sum(math.exp(s) for s in scores))
        scores = [scale * float(c @ t[a]) for c in i]
        cols += -scores[a] + math.log(sum(math.exp(s) for s in scores))
    return (rows / n + cols / n) / 2


def test_clip_loss_matches_a_loop_with_and_without_hard_negatives():
    i, t = _feats(0, 6, 5)
    assert clip.clip_loss(i, t, 7.0).item() == pytest.approx(_loop_loss(i, t, 7.0), rel=1e-5)
    neg = _feats(1, 4, 5)[0]
    got = clip.clip_loss(i, t, torch.tensor(3.0), hard_negatives=neg).item()
    assert got == pytest.approx(_loop_loss(i, t, 3.0, neg), rel=1e-5)
    # perfect, well-separated pairs at a large scale: the loss goes to 0
    eye = torch.eye(4)
    assert clip.clip_loss(eye, eye, 100.0).item() < 1e-6
    with pytest.raises(ValueError, match="same shape"):
        clip.clip_loss(torch.zeros(3, 4), torch.zeros(2, 4), 1.0)


def test_zero_shot_classify_matches_a_loop():
    g = torch.Generator().manual_seed(2)
    images, texts = torch.randn(30, 8, generator=g), torch.randn(5, 3, 8, generator=g)
    expected = []
    for image in images:
        scores = []
        for prompts in texts:
            mean = torch.stack([p / p.norm() for p in prompts]).mean(0)
            scores.append(float(image @ mean) / (image.norm() * mean.norm()))
        expected.append(max(range(len(scores)), key=scores.__getitem__))
    got = clip.zero_shot_classify(images, texts)
    assert got.dtype == torch.int64 and got.tolist() == expected
    assert (
        clip.zero_shot_classify(images, texts[:, 0]).tolist()
        == clip.zero_shot_classify(images, texts[:, :1]).tolist()
    )
    with pytest.raises(ValueError, match=r"\(C, M, D\)"):
        clip.zero_shot_classify(images[0], texts)


def test_recall_at_k_matches_brute_force_ranking():
    g = torch.Generator().manual_seed(3)
    sim = torch.randn(25, 25, generator=g)
    for k in (1, 3, 10, 25):
        hits = [i in sorted(range(25), key=lambda j: -sim[i, j].item())[:k] for i in range(25)]
        assert clip.recall_at_k(sim, k) == pytest.approx(sum(hits) / 25)
    assert clip.recall_at_k(torch.ones(3, 3), 1) == 1.0  # ties count for the match
    with pytest.raises(ValueError, match="square"):
        clip.recall_at_k(torch.zeros(2, 3), 1)
    with pytest.raises(ValueError, match="positive int"):
        clip.recall_at_k(sim, 0)


def test_tokenizer_round_trip_padding_and_errors():
    tok = clip.Tokenizer()
    tokens = tok(["a small red circle at the top left", "a blue square"])
    assert tokens.shape == (2, tok.context_length) and tokens.dtype == torch.int64
    assert tok.decode(tokens[0]) == "a small red circle at the top left"
    assert tokens[1].tolist()[3] == tok.eot_id and tokens[1, 4:].eq(tok.pad_id).all()
    assert torch.equal(tok("A Blue, square."), tok("a blue square"))
    with pytest.raises(ValueError, match="unknown word 'purple'"):
        tok("a purple circle")
    with pytest.raises(ValueError, match="at most 11 fit"):
        tok(" ".join(["red"] * 12))
    longest = max(
        (shapes.caption(s, t) for s in shapes.all_shapes() for t in shapes.CAPTION_TEMPLATES),
        key=len,
    )
    tok(longest)  # every template fits


def test_model_shapes_normalisation_and_padding_never_read():
    torch.manual_seed(0)
    model = clip.CLIP(clip.CLIPConfig()).eval()
    tok = clip.Tokenizer()
    images = shapes.make_dataset(3, seed=0)[0]
    tokens = tok(["a red circle", "a small blue square at the top left", "a green triangle"])
    with torch.no_grad():
        fi, ft, scale = model(images, tokens)
        assert fi.shape == ft.shape == (3, model.config.embed_dim)
        torch.testing.assert_close(fi.norm(dim=-1), torch.ones(3))
        assert scale.item() == pytest.approx(1 / 0.07, rel=1e-5)
        garbage = tokens.clone()
        garbage[0, 4:] = 5  # positions after <eot>: a causal encoder never reads them
        torch.testing.assert_close(model.encode_text(garbage), model.encode_text(tokens))
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        model.encode_image(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="int64"):
        model.encode_text(tokens.float())
    with pytest.raises(ValueError, match="end-of-text"):
        model.encode_text(torch.full((1, 12), 3))
    with pytest.raises(ValueError, match="divisible"):
        clip.CLIPConfig(text_width=30, text_heads=4)


def test_hard_negatives_change_exactly_one_attribute_and_stay_allowed():
    tok = clip.Tokenizer()
    table = clip.template_tokens(tok)
    assert table.shape == (96, len(shapes.CAPTION_TEMPLATES), tok.context_length)
    seen, _ = shapes.split_combos(0.25, seed=0)
    allowed = torch.tensor([s.combo in seen for s in shapes.all_shapes()])
    captions = torch.arange(96)[allowed].repeat(3)
    template = torch.full_like(captions, len(shapes.CAPTION_TEMPLATES) - 1)  # the full caption
    g = torch.Generator().manual_seed(0)
    negatives = clip.hard_negative_tokens(
        captions, template, table, allowed, g, attributes=("shape", "colour")
    )
    assert negatives.shape == (2 * len(captions), tok.context_length)
    for k, attribute in enumerate(("shape", "colour")):
        for c, row in zip(
            captions.tolist(),
            negatives[k * len(captions) : (k + 1) * len(captions)],
            strict=True,
        ):
            true, neg = shapes.all_shapes()[c], shapes.parse_caption(tok.decode(row))
            differs = [
                name for name in shapes.ATTRIBUTES if getattr(true, name) != getattr(neg, name)
            ]
            assert differs == [attribute]
            assert neg.combo in seen  # held-out combinations never appear, not even as text


def test_train_and_pretrained_round_trip_through_the_cache(monkeypatch):
    small = (
        clip.CLIPConfig(vision_width=4, text_width=16, text_heads=2, text_layers=1, embed_dim=8),
        clip.ClipTrainConfig(steps=3, batch_size=8, n_images=64),
    )
    monkeypatch.setattr(clip, "pretrained_configs", lambda smoke: small)
    model, tok = clip.pretrained(smoke=True)
    again, _ = clip.pretrained(smoke=True)  # from the cache this time
    for (name, a), (_, b) in zip(
        model.state_dict().items(), again.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, msg=name)
    assert isinstance(tok, clip.Tokenizer) and not model.training
