"""LoRA (Hu et al., 2021): fine-tune a big frozen ``nn.Linear`` through a small low-rank update.

A frozen layer ``y = x Wᵀ + b`` gets a trainable detour through rank ``r``:

.. math:: y = x W^\\top + b + \\tfrac{\\alpha}{r}\\,(x A^\\top) B^\\top,
   \\qquad A \\in \\mathbb{R}^{r\\times in},\\; B \\in \\mathbb{R}^{out\\times r}

``B`` starts at zero, so a freshly wrapped model computes exactly what it did before; only
``A`` and ``B`` train (``r·(in + out)`` numbers instead of ``in·out``). After training,
``W + (α/r)·B A`` can be *merged* into the weight: no extra cost at inference.

Names follow Hugging Face PEFT, where learners meet them next: ``lora_A``, ``lora_B``,
``r``, ``lora_alpha``, ``scaling = lora_alpha / r``, ``merge``/``unmerge``,
``target_modules``. Works on any ``nn.Linear``: lesson 10's denoiser MLP, lesson 03's GPT
(``c_attn``, ``c_proj``, ``c_fc``)::

    names = inject_lora(model, r=4, target_modules=("c_attn",))  # freezes everything else
    opt = torch.optim.AdamW(lora_parameters(model), lr=1e-3)
    ...                                                            # train as usual
    save_file(lora_state_dict(model), "adapter.safetensors")      # only the adapter
    set_lora_scale(model, 0.5)                                     # "LoRA strength"
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------- functions


def lora_forward(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    lora_A: torch.Tensor,
    lora_B: torch.Tensor,
    scaling: float,
) -> torch.Tensor:
    """``x @ weight.T + bias + scaling * (x @ lora_A.T) @ lora_B.T``.

    x (..., in) with any number of leading dims; weight (out, in); bias (out,) or None;
    lora_A (r, in); lora_B (out, r). Returns (..., out). The update goes through the
    rank-r bottleneck: ``B @ A`` (out, in) is never formed.
    """
    return F.linear(x, weight, bias) + scaling * F.linear(F.linear(x, lora_A), lora_B)


def merge_lora_weight(
    weight: torch.Tensor, lora_A: torch.Tensor, lora_B: torch.Tensor, scaling: float
) -> torch.Tensor:
    """``weight + scaling * lora_B @ lora_A``: (out, in), (r, in), (out, r) → a new (out, in)."""
    return weight + scaling * (lora_B @ lora_A)


# --------------------------------------------------------------------------- the layer


def _check_rank(r: int) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"LoRA rank r must be an int >= 1 (typically 1–64), got {r!r}")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` (``self.base``) plus a trainable rank-``r`` update.

    ``lora_A`` (r, in) starts kaiming-uniform like PEFT (from ``generator``, else the global
    RNG that ``torch.manual_seed`` controls), ``lora_B`` (out, r) at zero: at init the layer
    equals its base exactly. ``scale`` (default 1.0, the playground's "LoRA strength";
    0 turns LoRA off) multiplies ``scaling = lora_alpha / r``. x (..., in) → (..., out).
    """

    def __init__(
        self,
        base: nn.Linear,
        r: int = 4,
        lora_alpha: float | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise ValueError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        _check_rank(r)
        self.base = base
        self.r = r
        self.lora_alpha = float(r if lora_alpha is None else lora_alpha)
        self.scaling = self.lora_alpha / r
        self.scale = 1.0
        self.merged = False
        self._merged_scaling = 0.0  # the scaling merge() used, so unmerge() undoes exactly that
        self.tied_to: str | None = None  # set by inject_lora when base.weight is shared
        for p in base.parameters():
            p.requires_grad_(False)
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(
            torch.zeros(base.out_features, r, device=w.device, dtype=w.dtype)
        )
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5), generator=generator)

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged or self.scale == 0:
            return self.base(x)
        b = self.base
        return lora_forward(
            x, b.weight, b.bias, self.lora_A, self.lora_B, self.scale * self.scaling
        )

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ``scale · scaling · B A`` into ``base.weight``; forward then skips the branch."""
        if self.merged:
            raise RuntimeError("this LoRA layer is already merged: call unmerge() first")
        if self.tied_to is not None:
            raise RuntimeError(
                f"base.weight is shared with {self.tied_to}: merging would change that too. "
                "Keep this layer unmerged, or leave it out via target_modules."
            )
        s = self.scale * self.scaling
        self.base.weight.copy_(merge_lora_weight(self.base.weight, self.lora_A, self.lora_B, s))
        self._merged_scaling = s
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract the merged update again (up to float rounding)."""
        if not self.merged:
            raise RuntimeError("this LoRA layer is not merged: nothing to unmerge")
        s = self._merged_scaling
        self.base.weight.copy_(merge_lora_weight(self.base.weight, self.lora_A, self.lora_B, -s))
        self.merged = False

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"r={self.r}, lora_alpha={self.lora_alpha:g}, merged={self.merged}"
        )


# --------------------------------------------------------------------------- whole models


def _matches(name: str, target_modules: Sequence[str] | None) -> bool:
    if target_modules is None:
        return True
    parts = name.split(".")
    for key in target_modules:
        k = key.split(".")
        if any(parts[i : i + len(k)] == k for i in range(len(parts) - len(k) + 1)):
            return True
    return False


def inject_lora(
    model: nn.Module,
    *,
    r: int = 4,
    lora_alpha: float | None = None,
    target_modules: Sequence[str] | str | None = None,
    generator: torch.Generator | None = None,
) -> list[str]:
    """Replace, in place, the matching ``nn.Linear`` layers of ``model`` by :class:`LoRALinear`.

    ``target_modules=None`` wraps every Linear layer (except those inside an
    ``nn.MultiheadAttention``, which reads their weights directly). Otherwise an entry
    matches a layer when its dot-separated parts appear as consecutive parts of the layer's
    qualified name: ``"c_proj"`` matches ``transformer.h.0.attn.c_proj`` and
    ``transformer.h.0.mlp.c_proj``, ``"attn.c_proj"`` only the first, ``"mlp"`` every
    Linear inside an ``mlp`` (but ``"proj"`` matches no ``c_proj``). Every other parameter
    of the model is frozen, so only ``lora_A``/``lora_B`` train. ``lora_alpha`` defaults
    to ``r`` (scaling 1). Returns the qualified names of the replaced layers.
    """
    if isinstance(model, (nn.Linear, LoRALinear)):
        raise ValueError(
            "inject_lora changes a model's children: wrap a single layer as LoRALinear(layer)"
        )
    _check_rank(r)
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("this model already has LoRA layers: inject_lora once per model")
    if isinstance(target_modules, str):
        target_modules = (target_modules,)
    modules = dict(model.named_modules())
    inside_mha = {
        f"{n}.{c}" if n else c
        for n, m in modules.items()
        if isinstance(m, nn.MultiheadAttention)
        for c, _ in m.named_children()
    }
    linears = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
    chosen = [n for n in linears if _matches(n, target_modules)]
    if target_modules is None:
        chosen = [n for n in chosen if n not in inside_mha]
    elif bad := [n for n in chosen if n in inside_mha]:
        raise ValueError(f"{bad[0]} belongs to an nn.MultiheadAttention, which LoRA cannot wrap")
    if not chosen:
        shown = ", ".join(linears[:12]) + (
            f", … ({len(linears)} in all)" if len(linears) > 12 else ""
        )
        raise ValueError(
            f"target_modules={target_modules!r} matched no nn.Linear layer. "
            f"The model's Linear layers are: {shown or 'none'}"
        )
    owners: dict[int, list[str]] = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        owners.setdefault(id(p), []).append(n)
    for p in model.parameters():
        p.requires_grad_(False)
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        base = modules[name]
        layer = LoRALinear(base, r, lora_alpha, generator=generator)
        others = [n for n in owners[id(base.weight)] if n != f"{name}.weight"]
        layer.tied_to = others[0] if others else None
        setattr(modules[parent_name], child, layer)
    return chosen


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """The model's LoRA layers by qualified name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every ``lora_A`` and ``lora_B`` of the model (what the optimizer should get)."""
    return [p for m in lora_layers(model).values() for p in (m.lora_A, m.lora_B)]


def trainable_fraction(model: nn.Module) -> float:
    """Trainable parameters / all parameters (shared tensors such as tied weights counted once)."""
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    return sum(p.numel() for p in params if p.requires_grad) / max(total, 1)


def set_lora_scale(model: nn.Module, scale: float) -> None:
    """Set every LoRA layer's strength (0 = the base model, 1 = as trained)."""
    for m in lora_layers(model).values():
        if m.merged:
            raise RuntimeError("unmerge_lora(model) before changing the LoRA scale")
        m.scale = float(scale)


def merge_lora(model: nn.Module) -> None:
    """Merge every LoRA layer into its base weight (see :meth:`LoRALinear.merge`).

    All or nothing: raises before changing any weight if a layer is merged or tied.
    """
    layers = lora_layers(model)
    for name, m in layers.items():
        if m.merged or m.tied_to is not None:
            why = "is already merged" if m.merged else f"shares its weight with {m.tied_to}"
            raise RuntimeError(f"cannot merge: LoRA layer {name} {why}")
    for m in layers.values():
        m.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Undo :func:`merge_lora`."""
    for m in lora_layers(model).values():
        m.unmerge()


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter: ``{"<layer>.lora_A": (r, in), "<layer>.lora_B": (out, r), …}``
    (detached copies, ready for ``safetensors.torch.save_file``)."""
    return {
        f"{n}.{k}": getattr(m, k).detach().clone()
        for n, m in lora_layers(model).items()
        for k in ("lora_A", "lora_B")
    }


@torch.no_grad()
def load_lora_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Copy an adapter saved by :func:`lora_state_dict` into a model with the same LoRA layers."""
    own = {
        f"{n}.{k}": getattr(m, k)
        for n, m in lora_layers(model).items()
        for k in ("lora_A", "lora_B")
    }
    missing, unexpected = sorted(set(own) - set(state_dict)), sorted(set(state_dict) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"adapter keys do not match the model's LoRA layers: missing {missing[:6]}, "
            f"unexpected {unexpected[:6]}. Inject LoRA with the same target_modules first."
        )
    for key, p in own.items():
        if tuple(state_dict[key].shape) != tuple(p.shape):
            raise ValueError(
                f"{key}: the adapter has shape {tuple(state_dict[key].shape)}, the model "
                f"{tuple(p.shape)}. Was it trained with a different rank r?"
            )
    for m in lora_layers(model).values():
        if m.merged:
            raise RuntimeError("unmerge_lora(model) before loading another adapter")
    for key, p in own.items():
        p.copy_(state_dict[key])
