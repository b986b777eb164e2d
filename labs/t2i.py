"""Text-to-image (lesson 10): a mini Stable Diffusion assembled from the course's parts.

    prompt ──CLIP text encoder (lesson 08)──► text embedding (B, D)
    latent noise (B, 4, 8, 8) ──denoiser + DDIM + classifier-free guidance (lesson 09)──►
    clean latents ──autoencoder decoder (labs.vision)──► image (B, 3, 16, 16)

Names follow diffusers so the real thing looks familiar: the denoiser is called with
``(sample, timestep, encoder_hidden_states)``; :class:`TextToImagePipeline` is called
with ``(prompt, num_inference_steps, guidance_scale, generator)``; a
:class:`ControlNet` returns ``down_block_additional_residuals``.

Our denoiser is the gated MLP of lesson 09 (the latent is small enough to flatten);
the text enters as one pooled CLIP embedding added to the timestep embedding in every
block (FiLM's shift). Stable Diffusion uses cross-attention from image patches to the
prompt's *tokens* instead, because a real prompt describes many things in many places;
our prompts describe one object, which one vector says completely.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from labs import shapes
from labs.clip import CLIP, Tokenizer
from labs.diffusion import (
    DDIMScheduler,
    MLPBlock,
    classifier_free_guidance,
    timestep_embedding,
)
from labs.vision import Autoencoder

__all__ = [
    "ControlNet",
    "TextConditionedDenoiser",
    "TextToImagePipeline",
    "UNetConfig",
    "add_word",
    "control_map",
    "denoise_latents",
    "encode_prompt",
    "prompts_for",
    "zero_module",
]


# ====================================================================== text


@torch.no_grad()
def encode_prompt(
    clip_model: CLIP, tokenizer: Tokenizer, prompts: str | Sequence[str]
) -> torch.Tensor:
    """Prompts → L2-normalised CLIP text embeddings (B, D). The empty prompt ``""`` is
    the "no condition" ∅ that classifier-free guidance needs (as in Stable Diffusion)."""
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts:
        raise ValueError("no prompts given: pass a string or a non-empty list of strings")
    device = next(clip_model.parameters()).device
    return clip_model.encode_text(tokenizer(prompts).to(device), normalize=True)


def add_word(
    clip_model: CLIP, tokenizer: Tokenizer, word: str, like: Sequence[str]
) -> tuple[CLIP, Tokenizer]:
    """A copy of ``clip_model`` and a tokenizer that also know ``word``: its token
    embedding starts as the mean of the ``like`` words' (``add_word(m, tok, "purple",
    like=("red", "blue"))``). The original model and tokenizer are unchanged."""
    if word in tokenizer.index:
        raise ValueError(f"the tokenizer already knows {word!r}")
    unknown = [w for w in like if w not in tokenizer.index]
    if not like or unknown:
        raise ValueError(f"`like` must name known words, got unknown {unknown or like!r}")
    model = copy.deepcopy(clip_model)
    old = model.transformer.token_embedding
    new = nn.Embedding(old.num_embeddings + 1, old.embedding_dim).to(old.weight.device)
    with torch.no_grad():
        new.weight[:-1] = old.weight
        new.weight[-1] = old.weight[[tokenizer.index[w] for w in like]].mean(0)
    model.transformer.token_embedding = new
    model.config = dataclasses.replace(model.config, vocab_size=new.num_embeddings)
    words = [*tokenizer.vocab[2:], word]
    return model, Tokenizer(words, context_length=tokenizer.context_length)


# ====================================================================== the denoiser


@dataclass
class UNetConfig:
    """Sizes of :class:`TextConditionedDenoiser` (named after diffusers' UNet2DConditionModel,
    whose job it does). ``cross_attention_dim`` is the text embedding size."""

    sample_shape: tuple[int, int, int] = (4, 8, 8)
    hidden: int = 512
    n_blocks: int = 4
    time_dim: int = 64
    cross_attention_dim: int = 64


class TextConditionedDenoiser(nn.Module):
    """Predicts the noise ε in a noisy latent: ``model(sample, timestep, encoder_hidden_states)``.

    sample: (B, C, H, W) latents; timestep: (B,) long or one int; encoder_hidden_states:
    (B, D) text embeddings (:func:`encode_prompt`). Lesson 09's gated MLP: the timestep
    embedding plus a projection of the text embedding is added in every block;
    ``down_block_additional_residuals`` (one (B, hidden) tensor per block, from a
    :class:`ControlNet`) are added to the block outputs. Returns ε̂, (B, C, H, W).
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or UNetConfig()
        d = 1
        for n in config.sample_shape:
            d *= n
        hidden = config.hidden
        self.time_mlp = nn.Sequential(
            nn.Linear(config.time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        self.text_proj = nn.Linear(config.cross_attention_dim, hidden)
        self.inp = nn.Linear(d, hidden)
        self.blocks = nn.ModuleList([MLPBlock(hidden) for _ in range(config.n_blocks)])
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, d)
        self.gate = nn.Linear(hidden, d)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def embed(self, sample: torch.Tensor, timestep: torch.Tensor | int, text: torch.Tensor):
        """(flattened sample (B, d), conditioning embedding (B, hidden)) after input checks."""
        shape = tuple(self.config.sample_shape)
        if tuple(sample.shape[1:]) != shape:
            raise ValueError(
                f"sample must have shape (B, {', '.join(map(str, shape))}), got {tuple(sample.shape)}"
            )
        B = sample.shape[0]
        if text.shape != (B, self.config.cross_attention_dim):
            raise ValueError(
                f"encoder_hidden_states must be ({B}, {self.config.cross_attention_dim}) text "
                f"embeddings (encode_prompt), got {tuple(text.shape)}"
            )
        t = torch.as_tensor(timestep, device=sample.device).long()
        if t.ndim == 0:
            t = t.expand(B)
        steps = timestep_embedding(t, self.config.time_dim).to(sample.dtype)
        emb = self.time_mlp(steps) + self.text_proj(text)
        return sample.flatten(1), emb

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int,
        encoder_hidden_states: torch.Tensor,
        down_block_additional_residuals: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        flat, emb = self.embed(sample, timestep, encoder_hidden_states)
        residuals = list(down_block_additional_residuals or [])
        h = self.inp(flat)
        for i, block in enumerate(self.blocks):
            h = block(h, emb)
            if i < len(residuals):
                h = h + residuals[i]
        out = self.head(self.norm(h)) + self.gate(emb) * flat
        return out.view_as(sample)


# ====================================================================== control


def zero_module(module: nn.Module) -> nn.Module:
    """Set every parameter of ``module`` to zero, in place, and return it (ControlNet's
    "zero convolution"): the new branch adds exactly nothing at first, yet its weights get
    gradients (∂L/∂W = δ·hᵀ, and the input h is not zero), so it learns from step one."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def control_map(images: torch.Tensor, threshold: float = -0.8) -> torch.Tensor:
    """The control image for an object: its bounding box, filled, as a (B, 1, S, S) map in
    {-1, 1}: *where* the object is and *how big*, not its colour or shape."""
    mask = images.amax(dim=1) > threshold  # (B, S, S): the object's pixels
    rows, cols = mask.any(dim=2), mask.any(dim=1)  # (B, S)
    box = rows.unsqueeze(2) & cols.unsqueeze(1)
    return box.unsqueeze(1).float() * 2 - 1


class ControlNet(nn.Module):
    """A trainable copy of the frozen denoiser's input layer and first ``n_blocks`` blocks,
    fed a control image; returns one residual per copied block for the denoiser to add.

    Both joins are zero-initialised (:func:`zero_module`): the control enters through
    ``controlnet_cond_embedding`` and each copied block leaves through a zero Linear, so at
    initialisation the denoiser's output is exactly unchanged.
    """

    def __init__(
        self,
        unet: TextConditionedDenoiser,
        control_shape: tuple[int, int, int],
        n_blocks: int | None = None,
    ):
        super().__init__()
        hidden = unet.config.hidden
        n_blocks = n_blocks or max(1, unet.config.n_blocks // 2)
        self.control_shape = tuple(control_shape)
        self.config = unet.config
        self.time_mlp = copy.deepcopy(unet.time_mlp)
        self.text_proj = copy.deepcopy(unet.text_proj)
        self.inp = copy.deepcopy(unet.inp)
        self.blocks = copy.deepcopy(unet.blocks[:n_blocks])
        numel = 1
        for n in self.control_shape:
            numel *= n
        self.controlnet_cond_embedding = nn.Sequential(
            nn.Flatten(), zero_module(nn.Linear(numel, hidden))
        )
        self.controlnet_down_blocks = nn.ModuleList(
            [zero_module(nn.Linear(hidden, hidden)) for _ in range(n_blocks)]
        )

    embed = TextConditionedDenoiser.embed

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int,
        encoder_hidden_states: torch.Tensor,
        controlnet_cond: torch.Tensor,
        conditioning_scale: float = 1.0,
    ) -> list[torch.Tensor]:
        """controlnet_cond: (B, *control_shape). Returns ``down_block_additional_residuals``,
        a list of (B, hidden), already multiplied by ``conditioning_scale``."""
        if tuple(controlnet_cond.shape[1:]) != self.control_shape or len(controlnet_cond) != len(
            sample
        ):
            raise ValueError(
                f"controlnet_cond must be ({len(sample)}, {', '.join(map(str, self.control_shape))}) "
                f"(control_map of the wanted layout), got {tuple(controlnet_cond.shape)}"
            )
        flat, emb = self.embed(sample, timestep, encoder_hidden_states)
        h = self.inp(flat) + self.controlnet_cond_embedding(controlnet_cond)
        residuals = []
        for block, zero in zip(self.blocks, self.controlnet_down_blocks, strict=True):
            h = block(h, emb)
            residuals.append(zero(h) * conditioning_scale)
        return residuals


# ====================================================================== sampling


def denoise_latents(
    unet: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    scheduler: DDIMScheduler,
    latents: torch.Tensor,
    text_embeddings: torch.Tensor,
    uncond_embeddings: torch.Tensor,
    guidance_scale: float,
) -> torch.Tensor:
    """The classifier-free-guided sampling loop (lesson 10's exercise).

    For every t in ``scheduler.timesteps`` (set by ``set_timesteps`` beforehand): one
    batched call ``unet(cat[x, x], t, cat[uncond, text])`` gives ε̂_∅ and ε̂_text; guide
    them, ε̂ = ε̂_∅ + w (ε̂_text − ε̂_∅); step. latents x_T: (B, C, H, W); text and uncond
    embeddings: (B, D). DDIM with η = 0 (deterministic), stepping with the ε̂ that the
    clipped x̂_0 implies (``use_clipped_model_output``). Returns the clean latents x_0.
    """
    B = len(latents)
    for t in scheduler.timesteps.tolist():
        timestep = torch.full((2 * B,), t, dtype=torch.long, device=latents.device)
        noise_pred = unet(
            torch.cat([latents, latents]), timestep, torch.cat([uncond_embeddings, text_embeddings])
        )
        noise_uncond, noise_text = noise_pred.chunk(2)
        noise_pred = classifier_free_guidance(noise_uncond, noise_text, guidance_scale)
        latents = scheduler.step(noise_pred, t, latents, use_clipped_model_output=True)
    return latents


class TextToImagePipeline:
    """prompt → image, diffusers style:
    ``pipe(["a small red circle at the top left"], num_inference_steps=20,
    guidance_scale=3.0, generator=torch.Generator().manual_seed(0))`` → (B, 3, 16, 16).

    Optional ``controlnet`` + ``control_image`` (B, 1, 16, 16) from :func:`control_map`.
    ``denoise`` is the sampling loop (:func:`denoise_latents`, or a learner's own).
    """

    def __init__(
        self,
        vae: Autoencoder,
        unet: TextConditionedDenoiser,
        text_encoder: CLIP,
        tokenizer: Tokenizer,
        scheduler: DDIMScheduler,
        controlnet: ControlNet | None = None,
        denoise: Callable[..., torch.Tensor] = denoise_latents,
    ) -> None:
        self.vae, self.unet, self.text_encoder = vae, unet, text_encoder
        self.tokenizer, self.scheduler, self.controlnet = tokenizer, scheduler, controlnet
        self.denoise = denoise

    def encode_prompt(self, prompts: str | Sequence[str]) -> torch.Tensor:
        return encode_prompt(self.text_encoder, self.tokenizer, prompts)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str],
        num_inference_steps: int = 20,
        guidance_scale: float = 3.0,
        generator: torch.Generator | None = None,
        control_image: torch.Tensor | None = None,
        controlnet_conditioning_scale: float = 1.0,
        output_type: str = "images",
    ) -> torch.Tensor:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if output_type not in ("images", "latents"):
            raise ValueError(f"output_type must be 'images' or 'latents', got {output_type!r}")
        if control_image is not None and self.controlnet is None:
            raise ValueError("control_image given but this pipeline has no controlnet")
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        text = self.encode_prompt(prompts)
        uncond = self.encode_prompt([""]).expand_as(text)
        device = text.device
        self.unet.eval()
        latents = torch.randn((len(prompts), *self.unet.config.sample_shape), generator=g).to(
            device
        )
        self.scheduler.set_timesteps(num_inference_steps)
        unet: Callable[..., torch.Tensor] = self.unet
        if control_image is not None:
            control = control_image.to(device)
            if len(control) != len(prompts):
                raise ValueError(
                    f"need one control image per prompt: {len(control)} for {len(prompts)}"
                )

            def unet(x: torch.Tensor, t: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
                cond = torch.cat([control] * (len(x) // len(control)))
                residuals = self.controlnet(x, t, emb, cond, controlnet_conditioning_scale)
                return self.unet(x, t, emb, residuals)

        latents = self.denoise(unet, self.scheduler, latents, text, uncond, guidance_scale)
        if output_type == "latents":
            return latents.cpu()
        return self.vae.decode(latents).cpu()


def prompts_for(
    combos: Sequence[tuple[str, str]],
    n_per_caption: int = 1,
    template: str = shapes.DEFAULT_TEMPLATE,
) -> list[str]:
    """Evaluation prompts: the caption (under ``template``) of every shape whose colour–shape
    pair is in ``combos``, each repeated ``n_per_caption`` times (repeats adjacent)."""
    wanted = set(map(tuple, combos))
    texts = [shapes.caption(s, template) for s in shapes.all_shapes() if s.combo in wanted]
    if not texts:
        raise ValueError(f"no shape has a (colour, shape) pair in {combos!r}")
    return [t for t in dict.fromkeys(texts) for _ in range(n_per_caption)]
