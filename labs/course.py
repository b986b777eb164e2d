"""The course map: one entry per lesson, in order (the README's table mirrors it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lesson:
    number: str
    slug: str
    title: str
    builds: str
    track: str  # "start", "language" or "vision"

    @property
    def stem(self) -> str:
        return f"{self.number}_{self.slug}"


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "00", "welcome", "Welcome", "environment check, the AIGC map, how exercises work", "start"
    ),
    Lesson(
        "01",
        "attention",
        "Attention",
        "scaled dot-product, masks, multi-head attention",
        "language",
    ),
    Lesson(
        "02",
        "tokens_and_language_models",
        "Tokens & language models",
        "BPE tokenizer, n-gram LM, perplexity",
        "language",
    ),
    Lesson(
        "03",
        "gpt_pretraining",
        "GPT pretraining",
        "GPT from scratch, sampling, a scaling-law sweep",
        "language",
    ),
    Lesson(
        "04",
        "in_context_learning",
        "In-context learning",
        "meta-trained transformer, induction heads",
        "language",
    ),
    Lesson(
        "05",
        "chain_of_thought",
        "Chain-of-thought",
        "scratchpads, program-aided answers, self-consistency",
        "language",
    ),
    Lesson(
        "06",
        "instruction_tuning",
        "Instruction tuning",
        "SFT with prompt-masked loss, held-out instructions",
        "language",
    ),
    Lesson("07", "rlhf", "RLHF", "reward model, PPO with KL, DPO, reward hacking", "language"),
    Lesson("08", "clip", "CLIP", "image and text encoders, InfoNCE, zero-shot", "vision"),
    Lesson("09", "diffusion", "Diffusion", "noise schedules, DDPM, DDIM, guidance", "vision"),
    Lesson(
        "10", "text_to_image", "Text-to-image", "latent diffusion, CFG, LoRA, ControlNet", "vision"
    ),
)
