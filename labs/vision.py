"""Vision parts for text-to-image (lesson 10): an autoencoder for latent diffusion and an
independent attribute classifier that judges generated images.

:class:`Autoencoder` compresses a ``(3, 16, 16)`` captioned-shapes image into a
``(4, 8, 8)`` latent (3× fewer numbers) and back, like Stable Diffusion's VAE
(``encode`` / ``decode``; ``scaling_factor`` makes the latents unit-variance, the role of
SD's 0.18215). It is a plain autoencoder with a small penalty on the latents' size:
diffusion only needs a compact, smooth, well-scaled space that decodes back to images.

:class:`AttributeJudge` is a small CNN with one head per attribute (colour, shape, size,
position), trained on real renders only. It never sees generated images, the text
encoder or the denoiser, so it is an honest judge of whether a picture obeys its prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from labs import shapes
from labs.diffusion import fit_one_cycle

__all__ = [
    "AttributeJudge",
    "Autoencoder",
    "AutoencoderConfig",
    "paint",
    "train_autoencoder",
    "train_judge",
]


def paint(images: torch.Tensor, rgb: Sequence[float], source: str = "red") -> torch.Tensor:
    """Recolour images of ``source``-coloured shapes (B, 3, S, S) in [-1, 1] to ``rgb``
    (three floats in [0, 1]), keeping each object's outline, anti-aliasing and brightness
    jitter: a new colour for any rendered shape (lesson 10 teaches "purple" this way)."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, S, S), got {tuple(images.shape)}")
    if len(rgb) != 3 or not all(0.0 <= float(v) <= 1.0 for v in rgb):
        raise ValueError(f"rgb must be three floats in [0, 1], got {rgb!r}")
    if source not in shapes.COLOUR_RGB:
        raise ValueError(f"source must be one of {list(shapes.COLOUR_RGB)}, got {source!r}")
    src = torch.tensor(shapes.COLOUR_RGB[source])
    channel = int(src.argmax())
    amount = ((images[:, channel] + 1) / 2 / src[channel]).clamp(0, 1)  # coverage × brightness
    painted = amount.unsqueeze(1) * torch.tensor(rgb, dtype=images.dtype).view(1, 3, 1, 1)
    return painted * 2 - 1


# ====================================================================== the autoencoder


@dataclass
class AutoencoderConfig:
    image_size: int = 16
    latent_channels: int = 4  # the latent is (latent_channels, image_size/2, image_size/2)
    width: int = 64
    latent_penalty: float = 1e-3  # keeps latents small and smooth (the job of a VAE's KL)


class Autoencoder(nn.Module):
    """``encode``: (B, 3, S, S) in [-1, 1] → latents (B, 4, S/2, S/2), already multiplied by
    ``scaling_factor``; ``decode``: latents → images (B, 3, S, S) in [-1, 1].

    Convolutions only, one stride-2 step down and one upsampling step back: every latent
    pixel describes a 2×2 patch of the image, so the latent is still a (small) picture
    and "where" survives the compression.
    """

    def __init__(self, config: AutoencoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or AutoencoderConfig()
        w, c = config.width, config.latent_channels
        self.encoder = nn.Sequential(
            nn.PixelUnshuffle(2),  # (3, S, S) → (12, S/2, S/2): each 2×2 patch becomes a vector
            nn.Conv2d(12, w, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(w, w, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(w, c, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(c, w, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(w, w, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(w, 12, 3, padding=1),
            nn.PixelShuffle(2),  # (12, S/2, S/2) → (3, S, S)
        )
        # 1 / (std of the raw latents), measured after training (see fit_scaling_factor)
        self.register_buffer("scaling_factor", torch.tensor(1.0))

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        s = self.config.image_size // 2
        return (self.config.latent_channels, s, s)

    def _check_images(self, images: torch.Tensor) -> None:
        S = self.config.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, S, S):
            raise ValueError(
                f"expected images of shape (B, 3, {S}, {S}), got {tuple(images.shape)}"
            )

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) → scaled latents (B, C, S/2, S/2), roughly unit variance."""
        self._check_images(images)
        return self.encoder(images) * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, C, S/2, S/2) → images (B, 3, S, S) clipped to [-1, 1]."""
        if latents.dim() != 4 or tuple(latents.shape[1:]) != self.latent_shape:
            raise ValueError(
                f"expected latents of shape (B, {', '.join(map(str, self.latent_shape))}), "
                f"got {tuple(latents.shape)}"
            )
        return self.decoder(latents / self.scaling_factor).clamp(-1, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruction: decode(encode(images))."""
        return self.decode(self.encode(images))

    @torch.no_grad()
    def fit_scaling_factor(self, images: torch.Tensor) -> float:
        """Set ``scaling_factor`` = 1 / std of the raw latents of ``images``; return it."""
        self._check_images(images)
        self.scaling_factor.fill_(1.0)
        std = self.encoder(images).std().item()
        self.scaling_factor.fill_(1.0 / std)
        return 1.0 / std


def train_autoencoder(
    model: Autoencoder,
    images: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    generator: torch.Generator | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train on reconstruction MSE + ``latent_penalty`` × mean latent², AdamW one-cycle;
    then fit ``scaling_factor``. images: (N, 3, S, S) in [-1, 1]. Returns the losses."""

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        x = images[idx]
        z = model.encoder(x)
        return F.mse_loss(model.decoder(z), x) + model.config.latent_penalty * z.square().mean()

    model.scaling_factor.fill_(1.0)
    losses = fit_one_cycle(
        model,
        batch_loss,
        len(images),
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        generator=generator if generator is not None else torch.Generator().manual_seed(0),
        weight_decay=0.0,
        grad_clip=1.0,  # one bad batch must not wreck it
        callback=callback,
    )
    model.fit_scaling_factor(images[:2048])
    return losses


# ====================================================================== the judge


class AttributeJudge(nn.Module):
    """CNN: images (B, 3, S, S) in [-1, 1] → a dict of logits, one entry per attribute
    (``"colour"`` (B, n_colours), ``"shape"`` (B, 3), ``"size"`` (B, 2), ``"position"``
    (B, 4)). ``colours`` names the colour classes (default: the four of
    :data:`labs.shapes.ATTRIBUTES`; lesson 10 adds "purple")."""

    def __init__(
        self,
        colours: Sequence[str] = shapes.ATTRIBUTES["colour"],
        image_size: int = 16,
        width: int = 32,
    ) -> None:
        super().__init__()
        self.colours = tuple(colours)
        self.classes = {**shapes.ATTRIBUTES, "colour": self.colours}
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.heads = nn.ModuleDict(
            {
                name: nn.Linear(2 * width * (image_size // 4) ** 2, len(values))
                for name, values in self.classes.items()
            }
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.net(images)
        return {name: head(h) for name, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 512) -> dict[str, torch.Tensor]:
        """The predicted class index per attribute: a dict of (B,) long tensors."""
        self.eval()
        parts = [self(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        return {name: torch.cat([p[name] for p in parts]).argmax(-1) for name in self.classes}

    def labels_of(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """What each prompt asks for, as class indices (-1 where a prompt does not say)."""
        out = {name: torch.full((len(prompts),), -1, dtype=torch.long) for name in self.classes}
        for i, prompt in enumerate(prompts):
            words = prompt.lower().split()
            extra = [c for c in self.colours if c in words and c not in shapes.ATTRIBUTES["colour"]]
            found = shapes.parse_attributes(" ".join(w for w in words if w not in extra))
            if extra:
                found["colour"] = extra[0]
            for name, value in found.items():
                out[name][i] = self.classes[name].index(value)
        return out

    def accuracy(
        self, images: torch.Tensor, prompts: Sequence[str]
    ) -> dict[str, float | torch.Tensor]:
        """How well ``images`` obey ``prompts`` (one each): per attribute the fraction right
        (among prompts that name it), ``"all"`` the fraction with every named attribute
        right, and ``"correct"`` (B,) bool per image."""
        if len(images) != len(prompts):
            raise ValueError(
                f"need one prompt per image: {len(images)} images, {len(prompts)} prompts"
            )
        pred, want = self.predict(images), self.labels_of(prompts)
        correct = torch.ones(len(images), dtype=torch.bool)
        out: dict[str, float | torch.Tensor] = {}
        for name in self.classes:
            named = want[name] >= 0
            right = pred[name] == want[name]
            if named.any():
                out[name] = right[named].float().mean().item()
            correct &= right | ~named
        out["all"] = correct.float().mean().item()
        out["correct"] = correct
        return out


def train_judge(
    model: AttributeJudge,
    images: torch.Tensor,
    labels: dict[str, torch.Tensor],
    *,
    steps: int = 600,
    batch_size: int = 128,
    lr: float = 3e-3,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Cross-entropy summed over the four heads (AdamW, one-cycle). ``labels`` as from
    :func:`labs.shapes.make_dataset` (colour indices into ``model.colours``)."""

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        logits = model(images[idx])
        return sum(F.cross_entropy(logits[name], labels[name][idx]) for name in model.classes)

    return fit_one_cycle(
        model,
        batch_loss,
        len(images),
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        generator=generator if generator is not None else torch.Generator().manual_seed(0),
    )
