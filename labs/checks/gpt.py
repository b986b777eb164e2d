"""Checks for lesson 03 (GPT pretraining)."""

from __future__ import annotations

import torch

from labs import gpt
from labs.checks.core import Case, FunctionCheck


def _tiny(seed: int, **overrides) -> gpt.GPT:
    torch.manual_seed(seed)
    settings = {"vocab_size": 13, "block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 8}
    model = gpt.GPT(gpt.GPTConfig(**(settings | overrides)))
    # non-zero biases and LayerNorm gains, so forgetting one of them shows
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape))
    return model.eval()


# --------------------------------------------------------------------------- attention


def causal_self_attention(x: torch.Tensor, attn: gpt.CausalSelfAttention) -> torch.Tensor:
    """Reference: ``x`` (B, T, C) through the module's ``c_attn``/``c_proj`` → (B, T, C)."""
    return attn(x)


def _attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    cases = []
    for name, B, T, C, heads, hint in [
        ("B=2, T=5, C=8, 2 heads", 2, 5, 8, 2, ""),
        ("one head (n_head=1)", 1, 6, 8, 1, ""),
        (
            "four heads of size 4 (C=16)",
            2,
            7,
            16,
            4,
            "split C into n_head heads of C // n_head: view(B, T, n_head, hs).transpose(1, 2).",
        ),
        (
            "a single token (T=1)",
            3,
            1,
            8,
            2,
            "with one token, attention returns v for that token, projected by c_proj.",
        ),
        ("a longer sequence (T=16)", 1, 16, 16, 4, ""),
    ]:
        attn = _tiny(len(cases), n_embd=C, n_head=heads).transformer.h[0].attn
        x = torch.randn(B, T, C, generator=g)
        cases.append(Case(name, (x, attn), hint=hint))
    return cases


check_causal_self_attention = FunctionCheck(
    "causal_self_attention",
    causal_self_attention,
    _attention_cases,
    hint=(
        "q, k, v = attn.c_attn(x).split(C, dim=2); each .view(B, T, n_head, hs).transpose(1, 2) "
        "with hs = C // n_head; y = softmax(q kᵀ / √hs + causal mask) v; "
        "y.transpose(1, 2).reshape(B, T, C); then attn.c_proj."
    ),
    atol=1e-5,
)


# --------------------------------------------------------------------------- forward + loss


def gpt_forward(
    model: gpt.GPT, idx: torch.Tensor, targets: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Reference: logits (B, T, V) and mean cross-entropy (or None)."""
    return model(idx, targets)


def _forward_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)

    def ids(*shape: int) -> torch.Tensor:
        return torch.randint(13, shape, generator=g)

    return [
        Case("B=2, T=6 with targets", (_tiny(10), ids(2, 6), ids(2, 6))),
        Case(
            "no targets: loss is None",
            (_tiny(11), ids(1, 4), None),
            hint="return (logits, None) when targets is None.",
        ),
        Case(
            "a full block (T = block_size = 16)",
            (_tiny(12), ids(3, 16), ids(3, 16)),
            hint="positions run 0 … T-1: torch.arange(T) into transformer.wpe.",
        ),
        Case("a single token", (_tiny(13), ids(2, 1), ids(2, 1))),
    ]


check_gpt_forward = FunctionCheck(
    "gpt_forward",
    gpt_forward,
    _forward_cases,
    hint=(
        "x = wte(idx) + wpe(arange(T)); every block in transformer.h; ln_f; lm_head → logits; "
        "loss = F.cross_entropy(logits.view(B*T, V), targets.view(B*T))."
    ),
    atol=1e-5,
)


# --------------------------------------------------------------------------- sampling


def _filter_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    peaked = torch.tensor([[5.0, 1.0, 0.5, 0.0, -1.0]])
    return [
        Case("top_k=2 on one row", (torch.tensor([[1.0, 5.0, 3.0, 2.0, 0.0]]),), {"top_k": 2}),
        Case(
            "top_k=3 on a batch of rows (4, 10)",
            (torch.randn(4, 10, generator=g),),
            {"top_k": 3},
            hint="each row keeps its own k largest logits.",
        ),
        Case(
            "top_p=0.9 on a peaked row",
            (peaked,),
            {"top_p": 0.9},
            hint="sort by probability, keep tokens until the cumulative probability reaches top_p "
            "— including the token that crosses it.",
        ),
        Case(
            "top_p=0.5 on a batch (3, 12)",
            (2 * torch.randn(3, 12, generator=g),),
            {"top_p": 0.5},
            hint="undo the sort: the mask must land on the tokens' original positions.",
        ),
        Case(
            "top_p=0.01 keeps only the most likely token",
            (torch.randn(2, 8, generator=g),),
            {"top_p": 0.01},
            hint="the most likely token always stays, even when its probability exceeds top_p alone.",
        ),
        Case("top_p=1.0 keeps everything", (torch.randn(2, 6, generator=g),), {"top_p": 1.0}),
        Case(
            "top_k=4 and top_p=0.8 together",
            (torch.randn(2, 9, generator=g),),
            {"top_k": 4, "top_p": 0.8},
            hint="apply top-k first, then top-p on what is left (as GPT.generate does).",
        ),
        Case("no filter (both None)", (torch.randn(2, 5, generator=g),), {}),
    ]


check_filter_logits = FunctionCheck(
    "filter_logits",
    gpt.filter_logits,
    _filter_cases,
    hint="filtered logits become -inf; kept logits keep their value; shape unchanged.",
)
