"""The embedded model's training objective: how much each sample and each
pixel weighs in the loss, and the learning rate at each step. Pure functions
of their arguments, so the trainer (train.py) and its tests share them."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from worker.embedded import scenes

MIN_SNR_GAMMA = 5.0
# Pixels further than this (0..255, any channel) from the background colour
# belong to an object; the mask is then dilated by OBJECT_DILATE_PX so the
# outline on both sides of the edge counts.
OBJECT_THRESHOLD = 8
OBJECT_DILATE_PX = 2
LR_DECAYS = ("cosine", "none")


def loss_weight(snr: torch.Tensor, weighting: str) -> torch.Tensor:
    """Per-sample weight of the v-prediction loss.

    "min-snr" is min(SNR, γ)/(SNR + 1): the x0 error weighted by min(SNR, γ).
    It fades to zero at high noise, which is where the layout of the picture
    (where the object goes, what outline it has) is decided; samples at step
    6757 had colours right and placement ignored. "min-snr+1" is
    (min(SNR, γ) + 1)/(SNR + 1): plain v-loss (weight 1) at high noise, the
    same clamp at low noise."""
    clamped = torch.clamp(snr, max=MIN_SNR_GAMMA)
    if weighting == "min-snr":
        return clamped / (snr + 1)
    if weighting == "min-snr+1":
        return (clamped + 1) / (snr + 1)
    raise ValueError(f"unknown loss weighting {weighting!r}")


def learning_rate(
    step: int, base: float, *, warm_from: int, warmup: int, start: int, total: int, decay: str, floor: float
) -> float:
    """The learning rate at `step`.

    Linear warm-up over `warmup` steps from `warm_from` (where this process
    began: a fresh optimiser after a warm start needs it, a resume loses
    nothing by it). Then ("cosine") a half-cosine over the whole run, from
    `base` at `start` (where the run began, kept across resumes) down to
    `floor`·`base` at `total`; or ("none") `base` throughout. Why decay: a
    from-scratch run has a fixed budget (≤ 2 h on 2 cores), and a last
    stretch at a low rate lets the EMA settle on a sharper model instead of
    averaging a noisy walk."""
    if decay not in LR_DECAYS:
        raise ValueError(f"unknown lr decay {decay!r} (expected one of {', '.join(LR_DECAYS)})")
    lr = base * min(1.0, (step - warm_from + 1) / max(1, warmup))
    if decay == "cosine" and total > start:
        progress = min(1.0, max(0.0, (step - start) / (total - start)))
        lr *= floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr


def object_mask(image: np.ndarray, background: str) -> np.ndarray:
    """(H, W, 3) rendered pixels → (H, W) bool: where an object is drawn."""
    bg = np.array(scenes.COLOURS[background], dtype=np.float32)
    return np.abs(image - bg).max(axis=-1) > OBJECT_THRESHOLD


def pixel_weights(masks: torch.Tensor, object_weight: float) -> torch.Tensor:
    """(B, 1, H, W) object masks → per-pixel loss weights with mean 1 per image:
    the object and a ring of OBJECT_DILATE_PX around it weigh `object_weight`
    times the background.

    Why: a small object covers ~4% of the tile. With a plain mean over pixels
    the loss is mostly the flat background, and what tells a square from a
    circle (a few corner pixels) is a rounding error of it; the model learned
    colours and places and kept drawing blobs (shape 43% at step 14,692)."""
    k = 2 * OBJECT_DILATE_PX + 1
    near = F.max_pool2d(masks.float(), k, stride=1, padding=OBJECT_DILATE_PX)
    w = 1.0 + (object_weight - 1.0) * near
    return w / w.mean(dim=(1, 2, 3), keepdim=True)
