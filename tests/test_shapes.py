"""labs.shapes: determinism, distinct renderings, caption round trips, held-out combos,
and pixel-level sanity checked by direct measurement of the rendered images."""

from __future__ import annotations

import itertools

import pytest
import torch

from labs import shapes
from labs.shapes import ATTRIBUTES, Shape


def test_attributes_and_all_shapes_enumerate_96_distinct_captions():
    assert list(ATTRIBUTES) == ["colour", "shape", "size", "position"]
    everything = shapes.all_shapes()
    assert len(everything) == 4 * 3 * 2 * 4 == len(set(everything))
    captions = [shapes.caption(s) for s in everything]
    assert len(set(captions)) == 96
    assert shapes.caption(Shape("red", "circle", "small", "top left")) == (
        "a small red circle at the top left"
    )
    assert [shapes.shape_index(s) for s in everything] == list(range(96))
    assert len(shapes.all_combos()) == 12


def test_make_dataset_is_deterministic_and_seed_dependent():
    a = shapes.make_dataset(64, seed=3)
    b = shapes.make_dataset(64, seed=3)
    c = shapes.make_dataset(64, seed=4)
    assert torch.equal(a[0], b[0]) and a[1] == b[1]
    assert all(torch.equal(a[2][k], b[2][k]) for k in a[2])
    assert not torch.equal(a[0], c[0])


def test_make_dataset_shapes_ranges_and_consistent_labels():
    images, captions, labels = shapes.make_dataset(200, image_size=20, seed=0)
    assert images.shape == (200, 3, 20, 20) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert set(labels) == {*ATTRIBUTES, "caption"}
    for key, values in labels.items():
        assert values.shape == (200,) and values.dtype == torch.int64, key
    everything = shapes.all_shapes()
    for i in range(200):
        shape = everything[labels["caption"][i]]
        assert shapes.caption(shape) == captions[i]
        assert shapes.parse_caption(captions[i]) == shape
        for name, values in ATTRIBUTES.items():
            assert getattr(shape, name) == values[labels[name][i]]
    # every attribute value occurs in a sample this size
    for name, values in ATTRIBUTES.items():
        assert set(labels[name].tolist()) == set(range(len(values))), name


def test_every_combination_renders_distinctly():
    images = torch.stack([shapes.render(s) for s in shapes.all_shapes()]).flatten(1)
    distances = torch.cdist(images, images)
    distances.fill_diagonal_(float("inf"))
    # the closest pair (e.g. small circle vs small square) still differs by > 1 in L2
    assert distances.min() > 1.0


def test_jitter_keeps_size_and_shape_apart_by_area():
    """Under jitter the object's area (coverage summed over pixels) still separates the
    sizes of each shape and the shapes of each size: triangle < circle < square."""
    images, _, labels = shapes.make_dataset(2000, seed=1)
    brightness = ((images + 1) / 2).amax(dim=1)  # (N, H, W)
    coverage = brightness / brightness.flatten(1).amax(dim=1).view(-1, 1, 1)
    area = coverage.sum(dim=(1, 2))

    def span(shape: int, size: int) -> tuple[float, float]:
        chosen = area[(labels["shape"] == shape) & (labels["size"] == size)]
        return chosen.min().item(), chosen.max().item()

    for shape in range(3):
        assert span(shape, 1)[0] > span(shape, 0)[1]  # large > small
    circle, square, triangle = range(3)
    for size in range(2):
        assert span(triangle, size)[1] < span(circle, size)[0]
        assert span(circle, size)[1] < span(square, size)[0]


@pytest.mark.parametrize("image_size", [16, 32])
def test_pixels_colour_dominates_and_mass_sits_in_the_quadrant(image_size):
    for shape in shapes.all_shapes():
        image = (shapes.render(shape, image_size=image_size) + 1) / 2  # [0, 1]
        mass = image.sum(0)  # (H, W)
        half = image_size // 2
        top = shape.position.startswith("top")
        left = shape.position.endswith("left")
        rows = slice(0, half) if top else slice(half, None)
        cols = slice(0, half) if left else slice(half, None)
        assert mass[rows, cols].sum() / mass.sum() > 0.99, shape
        # the object's pixels have its colour's hue (edges are darker, not other colours)
        inside = mass > 0.1 * mass.max()
        expected = torch.tensor(shapes.COLOUR_RGB[shape.colour])
        cosine = torch.nn.functional.cosine_similarity(image[:, inside].T, expected[None], dim=1)
        assert cosine.min() > 0.999, shape
        assert torch.allclose(image[:, mass == mass.max()][:, 0], expected, atol=1e-3)
        # and most of the image is untouched black background
        assert (mass == 0).float().mean() > 0.5
        # the large object covers clearly more pixels than the small one of its kind
        if shape.size == "large":
            small = Shape(shape.colour, shape.shape, "small", shape.position)
            small_mass = ((shapes.render(small, image_size=image_size) + 1) / 2).sum()
            assert mass.sum() > 1.5 * small_mass


def test_jitter_zero_is_canonical_and_generator_controls_render():
    shape = Shape("blue", "triangle", "large", "bottom right")
    assert torch.equal(shapes.render(shape), shapes.render(shape, jitter=0.0))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(
        shapes.render(shape, jitter=True, generator=g1),
        shapes.render(shape, jitter=True, generator=g2),
    )
    canonical = shapes.make_dataset(50, seed=0, jitter=False)
    again = shapes.make_dataset(50, seed=0, jitter=False)
    assert torch.equal(canonical[0], again[0])
    everything = torch.stack([shapes.render(s) for s in shapes.all_shapes()])
    assert torch.equal(canonical[0], everything[canonical[2]["caption"]])


def test_caption_templates_and_parse_roundtrip():
    for shape, template in itertools.product(shapes.all_shapes(), shapes.CAPTION_TEMPLATES):
        text = shapes.caption(shape, template)
        found = shapes.parse_attributes(text)
        assert all(found[name] == getattr(shape, name) for name in found)
        assert {"colour", "shape"} <= set(found)
        if set(found) == set(ATTRIBUTES):
            assert shapes.parse_caption(text) == shape
    assert shapes.parse_caption("A Small RED circle, at the top-left.") == Shape(
        "red", "circle", "small", "top left"
    )
    assert shapes.parse_attributes("a blue square") == {"colour": "blue", "shape": "square"}
    for shape, template in itertools.product(shapes.all_shapes(), shapes.CAPTION_TEMPLATES):
        assert set(shapes.caption(shape, template).split()) <= set(shapes.WORDS)


def test_parse_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown word 'purple'"):
        shapes.parse_caption("a small purple circle at the top left")
    with pytest.raises(ValueError, match="unknown word '3'"):
        shapes.parse_caption("a small red circle at the top left 3")
    with pytest.raises(ValueError, match="size"):
        shapes.parse_caption("a red circle at the top left")
    with pytest.raises(ValueError, match="twice"):
        shapes.parse_caption("a small red blue circle at the top left")
    with pytest.raises(ValueError, match="half a position"):
        shapes.parse_caption("a small red circle at the top")
    with pytest.raises(ValueError, match="unknown colour 'purple'"):
        Shape("purple", "circle", "small", "top left")
    with pytest.raises(ValueError, match="unknown field"):
        shapes.caption(Shape("red", "circle", "small", "top left"), "a {hue} thing")


def test_split_combos_fraction_and_explicit():
    for seed in range(10):
        seen, held = shapes.split_combos(0.25, seed=seed)
        assert len(held) == 3 and len(seen) == 9 and not set(seen) & set(held)
        assert {c for c, _ in seen} == set(ATTRIBUTES["colour"])
        assert {s for _, s in seen} == set(ATTRIBUTES["shape"])
        assert len({c for c, _ in held}) == 3 and len({s for _, s in held}) == 3
        _, _, labels = shapes.make_dataset(2000, seed=seed, combos=seen)
        pairs = {
            (ATTRIBUTES["colour"][c], ATTRIBUTES["shape"][s])
            for c, s in zip(labels["colour"].tolist(), labels["shape"].tolist(), strict=True)
        }
        assert pairs == set(seen)  # held-out combos never appear, all seen ones do
    assert shapes.split_combos(0.25, seed=0) == shapes.split_combos(0.25, seed=0)
    seen, held = shapes.split_combos(["blue triangle", ("red", "square")])
    assert held == [("red", "square"), ("blue", "triangle")] and len(seen) == 10
    assert shapes.split_combos(0.0) == (shapes.all_combos(), [])
    seen, held = shapes.split_combos(8 / 12, seed=2)
    assert len(seen) == 4 and {c for c, _ in seen} == set(ATTRIBUTES["colour"])


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="at most 8"):
        shapes.split_combos(0.9)
    with pytest.raises(ValueError, match="wrap it in a list"):
        shapes.split_combos("red circle")
    with pytest.raises(ValueError, match="colour, shape"):
        shapes.split_combos(["red hexagon"])
    with pytest.raises(ValueError, match="positive int"):
        shapes.make_dataset(0)
    with pytest.raises(ValueError, match="image_size"):
        shapes.make_dataset(4, image_size=4)
    with pytest.raises(ValueError, match="jitter"):
        shapes.make_dataset(4, jitter=2.0)
    with pytest.raises(ValueError, match="combos is empty"):
        shapes.make_dataset(4, combos=[])
    with pytest.raises(ValueError, match="needs a Shape"):
        shapes.render("a red circle")


def test_ten_thousand_images_in_one_batch():
    """Rendering is vectorised (~0.3 s for 10k on one loaded core; timing not asserted)."""
    images, captions, _ = shapes.make_dataset(10_000, seed=0)
    assert images.shape == (10_000, 3, 16, 16) and len(captions) == 10_000
    assert torch.isfinite(images).all()
