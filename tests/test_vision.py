"""labs.vision: the autoencoder (shapes, scaling, it learns), the recolouring helper, and
the attribute judge's bookkeeping (prompt parsing, accuracy) against hand-made answers."""

from __future__ import annotations

import pytest
import torch

from labs import shapes, vision


def test_paint_keeps_outline_and_changes_colour():
    red, _, _ = shapes.make_dataset(8, combos=[("red", "circle")], seed=0)
    again = vision.paint(red, shapes.COLOUR_RGB["red"])
    torch.testing.assert_close(again, red, atol=1e-5, rtol=0)  # red painted red: unchanged
    purple = vision.paint(red, (0.6, 0.15, 0.9))
    inside = red[:, 0] > -0.5
    assert torch.equal(purple[:, 0] > -1 + 1e-6, red[:, 0] > -1 + 1e-6)  # same pixels covered
    ratio = (purple[:, 2] + 1)[inside] / (purple[:, 0] + 1)[inside]
    torch.testing.assert_close(ratio, torch.full_like(ratio, 0.9 / 0.6), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="three floats"):
        vision.paint(red, (1.0, 2.0, 0.0))
    with pytest.raises(ValueError, match=r"\(B, 3, S, S\)"):
        vision.paint(red[0], (0.5, 0.5, 0.5))


def test_autoencoder_shapes_scaling_and_errors():
    torch.manual_seed(0)
    ae = vision.Autoencoder(vision.AutoencoderConfig(width=8))
    x, _, _ = shapes.make_dataset(64, seed=1)
    z = ae.encode(x)
    assert z.shape == (64, *ae.latent_shape) == (64, 4, 8, 8)
    out = ae.decode(z)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    factor = ae.fit_scaling_factor(x)
    assert ae.encode(x).std().item() == pytest.approx(1.0, rel=1e-4)
    assert factor == pytest.approx(ae.scaling_factor.item())
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        ae.encode(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 4, 8, 8\)"):
        ae.decode(torch.zeros(2, 3, 8, 8))


def test_autoencoder_learns_to_reconstruct():
    torch.manual_seed(0)
    ae = vision.Autoencoder(vision.AutoencoderConfig(width=16))
    x, _, _ = shapes.make_dataset(512, seed=2)
    before = torch.nn.functional.mse_loss(ae.decoder(ae.encoder(x)), x).item()
    losses = vision.train_autoencoder(ae, x, steps=150, batch_size=64)
    with torch.no_grad():
        after = torch.nn.functional.mse_loss(ae(x), x).item()
    assert len(losses) == 150
    assert after < 0.3 * before, (before, after)


def test_judge_labels_of_parses_full_partial_and_new_colour_prompts():
    judge = vision.AttributeJudge(colours=(*shapes.ATTRIBUTES["colour"], "purple"))
    want = judge.labels_of(
        [
            "a small red circle at the top left",
            "a blue square",
            "a large purple triangle at the bottom right",
        ]
    )
    assert want["colour"].tolist() == [0, 2, 4]
    assert want["shape"].tolist() == [0, 1, 2]
    assert want["size"].tolist() == [0, -1, 1]
    assert want["position"].tolist() == [0, -1, 3]
    with pytest.raises(ValueError, match="unknown word"):
        judge.labels_of(["a pink circle"])


def test_judge_accuracy_counts_only_named_attributes(monkeypatch):
    judge = vision.AttributeJudge()
    prompts = ["a small red circle at the top left", "a blue square", "a green triangle"]
    predicted = {  # image 0 all right; image 1 right (size/position unnamed); image 2 wrong shape
        "colour": torch.tensor([0, 2, 1]),
        "shape": torch.tensor([0, 1, 0]),
        "size": torch.tensor([0, 1, 1]),
        "position": torch.tensor([0, 3, 2]),
    }
    monkeypatch.setattr(judge, "predict", lambda images: predicted)
    out = judge.accuracy(torch.zeros(3, 3, 16, 16), prompts)
    assert out["correct"].tolist() == [True, True, False]
    assert out["all"] == pytest.approx(2 / 3)
    assert out["shape"] == pytest.approx(2 / 3) and out["colour"] == 1.0
    assert out["size"] == 1.0 and out["position"] == 1.0  # only prompt 0 names them
    with pytest.raises(ValueError, match="one prompt per image"):
        judge.accuracy(torch.zeros(2, 3, 16, 16), prompts)


def test_judge_learns_the_attributes_quickly():
    torch.manual_seed(0)
    judge = vision.AttributeJudge(width=8)
    x, _, labels = shapes.make_dataset(2000, seed=3)
    vision.train_judge(judge, x, labels, steps=120)
    test, test_captions, _ = shapes.make_dataset(300, seed=4)
    acc = judge.accuracy(test, test_captions)
    assert acc["colour"] > 0.9 and acc["position"] > 0.9, acc
