"""labs.lora against independent references: the LoRA formula written out in float64
NumPy, hand counts of the adapter's parameters, bit-identical frozen weights after
training, and the clear errors."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from labs import lora
from labs.diffusion import Denoiser, DenoiserConfig
from labs.gpt import GPT, GPTConfig
from labs.lora import LoRALinear, inject_lora

TINY_GPT = GPTConfig(vocab_size=32, block_size=16, n_layer=2, n_head=2, n_embd=16)


def _np_lora(x, weight, bias, A, B, scaling):
    """The LoRA layer in float64 NumPy: x Wᵀ + b + scaling · (x Aᵀ) Bᵀ."""
    x, W, A, B = (t.detach().double().numpy() for t in (x, weight, A, B))
    out = np.einsum("...i,oi->...o", x, W) + scaling * np.einsum(
        "...r,or->...o", np.einsum("...i,ri->...r", x, A), B
    )
    return out if bias is None else out + bias.detach().double().numpy()


def _randomize_B(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in lora.lora_layers(model).values():
            m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g) * 0.1)


def _denoiser_inputs(B: int = 4):
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, 1, 8, 8, generator=g), torch.tensor([0, 10, 500, 999])[:B]


# --------------------------------------------------------------------------- functions


@pytest.mark.parametrize("with_bias", [True, False])
def test_lora_forward_matches_the_formula(with_bias):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 6, generator=g)  # (B, T, in)
    W, A, B = torch.randn(5, 6, generator=g), torch.randn(2, 6, generator=g), torch.randn(5, 2)
    b = torch.randn(5, generator=g) if with_bias else None
    got = lora.lora_forward(x, W, b, A, B, 0.75)
    assert got.shape == (2, 3, 5)
    np.testing.assert_allclose(got.numpy(), _np_lora(x, W, b, A, B, 0.75), rtol=1e-5, atol=1e-5)


def test_merge_lora_weight_is_out_of_place():
    g = torch.Generator().manual_seed(0)
    W, A, B = torch.randn(5, 6, generator=g), torch.randn(2, 6, generator=g), torch.randn(5, 2)
    W0 = W.clone()
    merged = lora.merge_lora_weight(W, A, B, 2.0)
    assert torch.equal(W, W0)
    expected = W.double().numpy() + 2.0 * B.double().numpy() @ A.double().numpy()
    np.testing.assert_allclose(merged.numpy(), expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- the layer


def test_lora_linear_at_init_equals_the_base_exactly():
    torch.manual_seed(0)
    base = nn.Linear(6, 5)
    x = torch.randn(4, 6)
    layer = LoRALinear(base, r=3, lora_alpha=6)
    assert layer.base is base and layer.scaling == 2.0 and layer.scale == 1.0
    assert layer.lora_A.shape == (3, 6) and layer.lora_B.shape == (5, 3)
    assert not base.weight.requires_grad and not base.bias.requires_grad
    assert layer.lora_A.requires_grad and layer.lora_B.requires_grad
    assert torch.equal(layer.lora_B, torch.zeros(5, 3))
    assert layer.lora_A.abs().max() <= 1 / math.sqrt(6)  # kaiming-uniform(a=√5) bound
    assert layer.lora_A.abs().min() > 0
    assert torch.equal(layer(x), base(x))
    text = repr(layer)
    assert "in_features=6" in text and "out_features=5" in text
    assert "r=3" in text and "lora_alpha=6" in text


def test_init_is_seeded():
    torch.manual_seed(3)
    a = LoRALinear(nn.Linear(4, 4), r=2).lora_A
    torch.manual_seed(3)
    b = LoRALinear(nn.Linear(4, 4), r=2).lora_A
    assert torch.equal(a, b)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    c = LoRALinear(nn.Linear(4, 4), r=2, generator=g1).lora_A
    assert torch.equal(c, LoRALinear(nn.Linear(4, 4), r=2, generator=g2).lora_A)


def test_lora_linear_forward_matches_the_formula_and_the_scale():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(6, 5), r=4, lora_alpha=8)
    _randomize_B(layer)
    x = torch.randn(2, 3, 6)
    base, A, B = layer.base, layer.lora_A, layer.lora_B
    for scale in (1.0, 0.5):
        layer.scale = scale
        expected = _np_lora(x, base.weight, base.bias, A, B, 2.0 * scale)
        np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    layer.scale = 0.0
    assert torch.equal(layer(x), base(x))


def test_merge_then_unmerge():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(6, 5), r=2, lora_alpha=3)
    _randomize_B(layer)
    layer.scale = 0.8
    x = torch.randn(4, 6)
    W0, y0 = layer.base.weight.detach().clone(), layer(x).detach()
    layer.merge()
    assert layer.merged
    torch.testing.assert_close(layer(x), y0, rtol=0, atol=1e-6)
    torch.testing.assert_close(layer.base(x), y0, rtol=0, atol=1e-6)  # it is in the weight
    with pytest.raises(RuntimeError, match="already merged"):
        layer.merge()
    layer.unmerge()
    assert not layer.merged
    torch.testing.assert_close(layer.base.weight.detach(), W0, rtol=0, atol=1e-6)
    with pytest.raises(RuntimeError, match="not merged"):
        layer.unmerge()


def test_rank_must_be_positive():
    with pytest.raises(ValueError, match="r must be an int >= 1"):
        LoRALinear(nn.Linear(4, 4), r=0)
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="r must be an int >= 1"):
        inject_lora(model, r=0)
    assert all(p.requires_grad for p in model.parameters())  # nothing was changed


# --------------------------------------------------------------------------- whole models


def test_inject_lora_into_the_denoiser():
    torch.manual_seed(0)
    model = Denoiser(DenoiserConfig())
    total = sum(p.numel() for p in model.parameters())
    x, t = _denoiser_inputs()
    y0 = model(x, t).detach()
    names = inject_lora(model, r=4)
    linears = [m for m in Denoiser(DenoiserConfig()).modules() if isinstance(m, nn.Linear)]
    assert len(names) == len(linears) == 14
    assert torch.equal(model(x, t), y0)  # B = 0: exactly the base model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{n}.lora_{k}" for n in names for k in "AB"}
    adapter = sum(4 * (m.in_features + m.out_features) for m in linears)
    assert lora.trainable_fraction(model) == pytest.approx(adapter / (total + adapter))
    assert lora.trainable_fraction(model) < 0.1
    assert sum(p.numel() for p in lora.lora_parameters(model)) == adapter


def test_inject_lora_into_a_gpt():
    torch.manual_seed(0)
    model = GPT(TINY_GPT)
    total = model.num_params(non_embedding=False)
    idx = torch.randint(0, 32, (2, 8))
    logits0 = model(idx)[0].detach()
    names = inject_lora(model, r=2, target_modules=("c_attn", "c_proj"))
    assert names == [
        f"transformer.h.{i}.{n}"
        for i in (0, 1)
        for n in ("attn.c_attn", "attn.c_proj", "mlp.c_proj")
    ]
    assert torch.equal(model(idx)[0], logits0)
    # per block: c_attn 2·(16 + 48), attn.c_proj 2·(16 + 16), mlp.c_proj 2·(64 + 16)
    adapter = 2 * (2 * (16 + 48) + 2 * (16 + 16) + 2 * (64 + 16))
    assert lora.trainable_fraction(model) == pytest.approx(adapter / (total + adapter))
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        f"{n}.lora_{k}" for n in names for k in "AB"
    }


def test_a_tied_lm_head_is_wrapped_but_never_merged():
    torch.manual_seed(0)
    model = GPT(TINY_GPT)
    names = inject_lora(model, r=2)
    assert "lm_head" in names and model.lm_head.tied_to == "transformer.wte.weight"
    _randomize_B(model)
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(RuntimeError, match=r"shares its weight with transformer\.wte\.weight"):
        lora.merge_lora(model)
    assert all(torch.equal(p, weights[n]) for n, p in model.named_parameters())
    assert not any(m.merged for m in lora.lora_layers(model).values())


def test_merge_lora_keeps_the_model_output():
    torch.manual_seed(0)
    model = GPT(TINY_GPT)
    inject_lora(model, r=2, target_modules=("attn", "mlp"))
    _randomize_B(model)
    idx = torch.randint(0, 32, (2, 8))
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    logits = model(idx)[0].detach()
    lora.merge_lora(model)
    torch.testing.assert_close(model(idx)[0], logits, rtol=0, atol=1e-5)
    lora.unmerge_lora(model)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), weights[n], rtol=0, atol=1e-6)


def test_training_changes_only_the_adapter():
    torch.manual_seed(0)
    model = Denoiser(DenoiserConfig(hidden=64, n_blocks=2))
    inject_lora(model, r=2, target_modules=("mlp", "head"))  # head: the init zeroes it
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    adapter = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    x, t = _denoiser_inputs()
    target = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    opt = torch.optim.AdamW(lora.lora_parameters(model), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = ((model(x, t) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], v) for n, v in frozen.items())  # bit-identical
    assert all(params[n].grad is None for n in frozen)
    assert all(not torch.equal(params[n], v) for n, v in adapter.items() if n.endswith("lora_B"))


def test_target_modules_match_whole_name_parts():
    def names(targets):
        return inject_lora(GPT(TINY_GPT), r=1, target_modules=targets)

    assert names("attn.c_proj") == ["transformer.h.0.attn.c_proj", "transformer.h.1.attn.c_proj"]
    assert names(["c_fc"]) == ["transformer.h.0.mlp.c_fc", "transformer.h.1.mlp.c_fc"]
    assert len(names(("c_proj",))) == 4
    assert names(("h.1.mlp",)) == ["transformer.h.1.mlp.c_fc", "transformer.h.1.mlp.c_proj"]
    model = Denoiser(DenoiserConfig())
    assert inject_lora(model, target_modules=("head", "gate")) == ["head", "gate"]
    assert isinstance(model.head, LoRALinear) and isinstance(model.inp, nn.Linear)


def test_no_match_names_the_linear_layers():
    model = GPT(TINY_GPT)
    with pytest.raises(ValueError, match=r"matched no nn\.Linear") as info:
        inject_lora(model, target_modules=("proj", "q_proj"))
    assert "transformer.h.0.attn.c_attn" in str(info.value)
    assert all(p.requires_grad for p in model.parameters())  # nothing was changed


def test_inject_twice_is_an_error():
    model = GPT(TINY_GPT)
    inject_lora(model, target_modules="c_attn")
    with pytest.raises(ValueError, match="already has LoRA layers"):
        inject_lora(model, target_modules="c_fc")


def test_set_lora_scale():
    torch.manual_seed(0)
    model = GPT(TINY_GPT)
    idx = torch.randint(0, 32, (2, 8))
    base_logits = model(idx)[0].detach()
    inject_lora(model, r=2, target_modules=("c_attn", "c_fc"))
    _randomize_B(model)
    assert not torch.allclose(model(idx)[0], base_logits)
    lora.set_lora_scale(model, 0.0)
    assert torch.equal(model(idx)[0], base_logits)
    lora.set_lora_scale(model, 1.0)
    lora.merge_lora(model)
    with pytest.raises(RuntimeError, match="unmerge_lora"):
        lora.set_lora_scale(model, 0.5)


def test_adapter_state_dict_round_trip(tmp_path):
    torch.manual_seed(0)
    pristine = Denoiser(DenoiserConfig(hidden=32, n_blocks=1))
    trained, fresh, other_rank = (copy.deepcopy(pristine) for _ in range(3))
    inject_lora(trained, r=2, target_modules="mlp")
    _randomize_B(trained)
    sd = lora.lora_state_dict(trained)
    assert set(sd) == {f"blocks.0.mlp.{i}.lora_{k}" for i in (0, 2) for k in "AB"}
    assert sd["blocks.0.mlp.0.lora_A"].shape == (2, 32)
    save_file(sd, tmp_path / "adapter.safetensors")
    inject_lora(fresh, r=2, target_modules="mlp")
    lora.load_lora_state_dict(fresh, load_file(tmp_path / "adapter.safetensors"))
    x, t = _denoiser_inputs()
    assert torch.equal(fresh(x, t), trained(x, t))
    inject_lora(other_rank, r=3, target_modules="mlp")
    with pytest.raises(ValueError, match="different rank"):
        lora.load_lora_state_dict(other_rank, sd)
    with pytest.raises(ValueError, match=r"missing \['blocks.0.mlp.2.lora_B'\]"):
        lora.load_lora_state_dict(
            fresh, {k: v for k, v in sd.items() if k != "blocks.0.mlp.2.lora_B"}
        )
    with pytest.raises(ValueError, match="unexpected"):
        lora.load_lora_state_dict(fresh, {**sd, "head.lora_A": torch.zeros(2, 32)})


def test_linears_inside_multihead_attention_are_left_alone():
    model = nn.Sequential(nn.MultiheadAttention(8, 2, batch_first=True), nn.Linear(8, 8))
    assert inject_lora(copy.deepcopy(model)) == ["1"]  # out_proj's weight is read directly
    with pytest.raises(ValueError, match=r"nn\.MultiheadAttention"):
        inject_lora(model, target_modules="out_proj")
