"""labs.t2i: prompt encoding, the new-word helper, the text-conditioned denoiser, the
ControlNet's zero joins, the guided loop against lesson 09's sampler, the pipeline's
determinism and its clear errors. Uses a small untrained CLIP: no cache, no training."""

from __future__ import annotations

import pytest
import torch

from labs import clip, diffusion, shapes, t2i, vision
from labs.diffusion import DDIMScheduler


@pytest.fixture(scope="module")
def text_parts():
    torch.manual_seed(0)
    config = clip.CLIPConfig(
        embed_dim=16, text_width=16, text_layers=1, text_heads=2, vision_width=4
    )
    return clip.CLIP(config).eval(), clip.Tokenizer(context_length=config.context_length)


def _unet(dim=16, hidden=32, n_blocks=2):
    torch.manual_seed(1)
    unet = t2i.TextConditionedDenoiser(
        t2i.UNetConfig(hidden=hidden, n_blocks=n_blocks, cross_attention_dim=dim)
    )
    torch.nn.init.normal_(unet.head.weight, std=0.02)  # not the zero init: outputs must vary
    return unet.eval()


def test_encode_prompt_is_normalised_and_accepts_the_empty_prompt(text_parts):
    model, tokenizer = text_parts
    emb = t2i.encode_prompt(model, tokenizer, ["a red circle", ""])
    assert emb.shape == (2, 16)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2))
    assert not torch.allclose(emb[0], emb[1])
    with pytest.raises(ValueError, match="no prompts"):
        t2i.encode_prompt(model, tokenizer, [])


def test_add_word_extends_a_copy(text_parts):
    model, tokenizer = text_parts
    new_model, new_tokenizer = t2i.add_word(model, tokenizer, "purple", like=("red", "blue"))
    table = model.transformer.token_embedding.weight
    new_table = new_model.transformer.token_embedding.weight
    assert (
        new_table.shape[0] == table.shape[0] + 1
        and new_model.config.vocab_size == new_table.shape[0]
    )
    torch.testing.assert_close(new_table[:-1], table)
    expected = (table[tokenizer.index["red"]] + table[tokenizer.index["blue"]]) / 2
    torch.testing.assert_close(new_table[-1], expected)
    assert new_tokenizer("a purple circle")[0, 1].item() == new_table.shape[0] - 1
    torch.testing.assert_close(  # old prompts embed exactly as before
        t2i.encode_prompt(new_model, new_tokenizer, ["a red circle"]),
        t2i.encode_prompt(model, tokenizer, ["a red circle"]),
    )
    with pytest.raises(ValueError, match="unknown word"):
        tokenizer("a purple circle")  # the original is unchanged
    with pytest.raises(ValueError, match="already knows"):
        t2i.add_word(model, tokenizer, "red", like=("blue",))
    with pytest.raises(ValueError, match="known words"):
        t2i.add_word(model, tokenizer, "pink", like=("mauve",))


def test_denoiser_shapes_residuals_and_errors():
    unet = _unet()
    x, text = torch.randn(3, 4, 8, 8), torch.randn(3, 16)
    out = unet(x, torch.tensor([0, 10, 999]), text)
    assert out.shape == x.shape
    torch.testing.assert_close(unet(x, 10, text), unet(x, torch.full((3,), 10), text))
    zero = [torch.zeros(3, 32), torch.zeros(3, 32)]
    torch.testing.assert_close(unet(x, 10, text, zero), unet(x, 10, text))
    assert not torch.allclose(unet(x, 10, text, [torch.randn(3, 32)]), unet(x, 10, text))
    assert not torch.allclose(unet(x, 10, text), unet(x, 10, torch.randn(3, 16)))
    with pytest.raises(ValueError, match=r"sample must have shape \(B, 4, 8, 8\)"):
        unet(torch.randn(3, 3, 16, 16), 10, text)
    with pytest.raises(ValueError, match=r"encoder_hidden_states must be \(3, 16\)"):
        unet(x, 10, torch.randn(3, 8))


def test_zero_module_and_controlnet_start_as_a_no_op_yet_learn():
    layer = t2i.zero_module(torch.nn.Linear(4, 3))
    assert all(p.abs().sum() == 0 and p.requires_grad for p in layer.parameters())
    unet = _unet()
    net = t2i.ControlNet(unet, control_shape=(1, 16, 16))
    assert len(net.controlnet_down_blocks) == 1  # half of the two blocks
    x, t, text = torch.randn(4, 4, 8, 8), torch.randint(1000, (4,)), torch.randn(4, 16)
    control = t2i.control_map(shapes.make_dataset(4, seed=0)[0])
    residuals = net(x, t, text, control)
    torch.testing.assert_close(unet(x, t, text, residuals), unet(x, t, text))
    loss = unet(x, t, text, net(x, t, text, control)).square().sum()
    loss.backward()
    assert net.controlnet_down_blocks[0].weight.grad.abs().sum() > 0  # zero, yet it learns
    with pytest.raises(ValueError, match="controlnet_cond must be"):
        net(x, t, text, control[:, :, :8, :8])


def test_control_map_is_the_bounding_box_in_the_right_quadrant():
    for position in shapes.ATTRIBUTES["position"]:
        image = shapes.render(shapes.Shape("green", "circle", "large", position))
        box = t2i.control_map(image[None])[0, 0] > 0
        rows, cols = torch.nonzero(box, as_tuple=True)
        top, left = position.split()
        assert (rows.float().mean() < 8) == (top == "top")
        assert (cols.float().mean() < 8) == (left == "left")
        # filled: every pixel inside the box's extent is on
        assert box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()


def test_denoise_latents_matches_lesson_09s_guided_sampler():
    """With a denoiser that takes class embeddings as its 'text', the lesson-10 loop and
    lesson 09's diffusion.sample (DDIM, clipped model output) give the same images."""
    torch.manual_seed(0)
    config = diffusion.DenoiserConfig(image_shape=(1, 8, 8), hidden=32, n_blocks=2, num_classes=3)
    model = diffusion.Denoiser(config).eval()
    torch.nn.init.normal_(model.head.weight, std=0.05)
    labels = torch.tensor([0, 1, 2, 1])
    scheduler = DDIMScheduler()
    expected, _ = diffusion.sample(
        model,
        scheduler,
        4,
        num_inference_steps=8,
        class_labels=labels,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(5),
        use_clipped_model_output=True,
    )
    x_T = torch.randn((4, 1, 8, 8), generator=torch.Generator().manual_seed(5))
    scheduler.set_timesteps(8)
    # the "embeddings" are class indices, as floats of shape (B, 1)
    unet = lambda x, t, c: model(x, t, c[:, 0].long())  # noqa: E731
    null = torch.full((4, 1), float(model.null_class))
    got = t2i.denoise_latents(unet, scheduler, x_T, labels[:, None].float(), null, 3.0)
    # sample() recomputes the clipped ε̂ from float32 ᾱ, the scheduler from float64: ~1e-4 apart
    torch.testing.assert_close(got.clamp(-1, 1), expected, atol=1e-3, rtol=0)


def test_pipeline_is_deterministic_and_checks_its_inputs(text_parts):
    model, tokenizer = text_parts
    torch.manual_seed(0)
    ae = vision.Autoencoder(vision.AutoencoderConfig(width=8)).eval()
    pipe = t2i.TextToImagePipeline(
        ae, _unet(), model, tokenizer, DDIMScheduler(clip_sample_range=4.0)
    )
    prompts = ["a red circle", "a small blue square at the top left"]
    a = pipe(prompts, 4, 3.0, torch.Generator().manual_seed(1))
    b = pipe(prompts, 4, 3.0, torch.Generator().manual_seed(1))
    assert a.shape == (2, 3, 16, 16) and torch.equal(a, b)
    assert pipe(prompts, 4, 3.0, output_type="latents").shape == (2, 4, 8, 8)
    with pytest.raises(ValueError, match="no controlnet"):
        pipe(prompts, control_image=torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match="unknown word"):
        pipe(["a pink circle"])
    with pytest.raises(ValueError, match="output_type"):
        pipe(prompts, output_type="pil")
    net = t2i.ControlNet(pipe.unet, control_shape=(1, 16, 16))
    controlled = t2i.TextToImagePipeline(
        ae, pipe.unet, model, tokenizer, pipe.scheduler, controlnet=net
    )
    maps = t2i.control_map(shapes.make_dataset(2, seed=0)[0])
    torch.testing.assert_close(  # zero joins: the control changes nothing yet
        controlled(prompts, 4, 3.0, torch.Generator().manual_seed(1), control_image=maps), a
    )
    with pytest.raises(ValueError, match="one control image per prompt"):
        controlled(prompts, control_image=maps[:1])


def test_prompts_for_counts_and_errors():
    seen, held = shapes.split_combos(0.25, seed=0)
    prompts = t2i.prompts_for(seen, 2)
    assert len(prompts) == len(seen) * 8 * 2 and prompts[0] == prompts[1]
    assert all(shapes.parse_caption(p).combo in seen for p in prompts)
    assert len(t2i.prompts_for(held, 1, template="a {colour} {shape}")) == len(held)
    with pytest.raises(ValueError, match="no shape"):
        t2i.prompts_for([], 1)


def test_train_denoiser_with_embedding_conditions_drops_to_the_null_condition():
    torch.manual_seed(0)
    unet = _unet(dim=4, hidden=16, n_blocks=1)
    seen = []
    original = unet.forward
    unet.forward = lambda x, t, c, *a: (seen.append(c.clone()), original(x, t, c, *a))[1]
    latents, conditions = torch.randn(32, 4, 8, 8), torch.ones(32, 4)
    null = torch.full((4,), -7.0)
    diffusion.train_denoiser(
        unet,
        DDIMScheduler(),
        latents,
        conditions,
        steps=5,
        batch_size=16,
        p_uncond=0.5,
        null_condition=null,
    )
    rows = torch.cat(seen)
    is_null = (rows == -7.0).all(1)
    assert is_null.any() and (~is_null).any()
    assert ((rows == 1.0).all(1) | is_null).all()
