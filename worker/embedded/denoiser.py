"""The embedded model's denoiser: a diffusers UNet2DConditionModel working on
images folded into a 16×16 grid of pixel patches (`pixel_unshuffle`), which
keeps a 64×64 model as cheap per step as a 16×16 one."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel

from worker.embedded.textenc import EMBED_DIM

IMAGE_SIZE = 64
FOLD = 4  # 64×64×3 → 16×16×48
SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "v_prediction",
    "clip_sample": False,
}


def build_unet() -> UNet2DConditionModel:
    ch = 3 * FOLD * FOLD
    return UNet2DConditionModel(
        sample_size=IMAGE_SIZE // FOLD,
        in_channels=ch,
        out_channels=ch,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(64, 128, 192),
        layers_per_block=1,
        cross_attention_dim=EMBED_DIM,
        attention_head_dim=8,
        norm_num_groups=32,
        # The pooled sentence embedding joins the timestep embedding: a cheap,
        # global hint (colours) that every resolution sees.
        class_embed_type="projection",
        projection_class_embeddings_input_dim=EMBED_DIM,
    )


def train_scheduler() -> DDPMScheduler:
    return DDPMScheduler(**SCHEDULER_CONFIG)


def sample_scheduler() -> DPMSolverMultistepScheduler:
    return DPMSolverMultistepScheduler(**SCHEDULER_CONFIG, algorithm_type="dpmsolver++", solver_order=2)


def fold(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, 64, 64) in [-1, 1] → (B, 48, 16, 16)."""
    return F.pixel_unshuffle(images, FOLD)


def unfold(x: torch.Tensor) -> torch.Tensor:
    return F.pixel_shuffle(x, FOLD)
