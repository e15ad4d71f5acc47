"""The embedded model's denoiser: a diffusers UNet2DConditionModel working on
images folded into a 16×16 grid of pixel patches (`pixel_unshuffle`), which
keeps a 64×64 model as cheap per step as a 16×16 one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel
from torch import nn

from worker.embedded.textenc import EMBED_DIM

IMAGE_SIZE = 64
FOLD = 4  # 64×64×3 → 16×16×48
PIXEL_CHANNELS = 3 * FOLD * FOLD
# Two extra input channels hold each cell's x and y in [-1, 1]. Convolutions
# only learn where they are from the zero padding, slowly; with the
# coordinates in the input, "in the top left corner" has something to attach
# to from the first step.
COORD_CHANNELS = 2
SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "v_prediction",
    "clip_sample": False,
}


def build_unet(coords: bool = True, norm: str = "pixel") -> UNet2DConditionModel:
    ch = PIXEL_CHANNELS
    unet = UNet2DConditionModel(
        sample_size=IMAGE_SIZE // FOLD,
        in_channels=ch + (COORD_CHANNELS if coords else 0),
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
    return with_norm(unet, norm)


class PixelNorm(nn.Module):
    """A drop-in for the UNet's GroupNorms that normalises each cell over its
    channels alone (a LayerNorm on the channel axis), keeping GroupNorm's
    per-channel scale and shift.

    Why: GroupNorm's mean and variance are taken over the whole grid, so one
    cell with a huge activation sets the scale for all the others. The
    GroupNorm model learned exactly that: the feed-forward layer of
    up_blocks.1 writes a spike 4× the median norm at one cell of the 8×8 grid
    (2, 2) whatever the prompt (9.7× by the last block), and it came out as a
    blob of coloured speckle ~20 px from the top-left corner of most images;
    zeroing that one cell changed the prediction everywhere else by up to
    14% (two of four prompts tried; the other two barely moved). It looks
    like StyleGAN's "droplet" artifact, which StyleGAN2 removed by dropping
    statistics taken across pixels. With no statistics across cells, a spike
    in one cell buys the network nothing elsewhere; warm-started with this
    norm, the spike was gone (≤ 1.3× the median at every layer) within
    1,750 steps, and so was the blob on 64 px tiles."""

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.movedim(1, -1), (self.num_channels,), self.weight, self.bias, self.eps)
        return y.movedim(-1, 1)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}"


NORMS = ("group", "pixel")
# Written next to unet/ by train.export: which norm the weights were trained
# with. A folder without it is a GroupNorm model (all weights up to step
# 30,006, and any plain diffusers UNet).
ARCHITECTURE_FILE = "architecture.json"


def with_norm(unet: UNet2DConditionModel, norm: str, source: str = "") -> UNet2DConditionModel:
    """`unet` (built with diffusers' GroupNorm) with the norm named; `source`
    prefixes the error for a name that is neither."""
    if norm not in NORMS:
        prefix = f"{source}: " if source else ""
        raise ValueError(f"{prefix}unknown norm {norm!r} (expected one of {', '.join(NORMS)})")
    return use_pixel_norm(unet) if norm == "pixel" else unet


def use_pixel_norm(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """Swap every GroupNorm for a PixelNorm in place, keeping its scale and
    shift (the state dict keys and shapes stay the same)."""
    for module in list(unet.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.GroupNorm):
                new = PixelNorm(child.num_channels, child.eps).to(child.weight.device, child.weight.dtype)
                with torch.no_grad():
                    new.weight.copy_(child.weight)
                    new.bias.copy_(child.bias)
                setattr(module, child_name, new)
    return unet


def norm_of(unet: UNet2DConditionModel) -> str:
    return "pixel" if any(isinstance(m, PixelNorm) for m in unet.modules()) else "group"


def load_unet(folder: Path | str, device: str | torch.device = "cpu") -> UNet2DConditionModel:
    """An exported model folder's denoiser (fp32), with the norm it was trained with."""
    folder = Path(folder)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet", dtype=torch.float32, low_cpu_mem_usage=False)
    arch_file = folder / ARCHITECTURE_FILE
    norm = json.loads(arch_file.read_text()).get("norm", "group") if arch_file.is_file() else "group"
    return with_norm(unet, norm, str(arch_file)).to(device)


def uses_coords(unet: UNet2DConditionModel) -> bool:
    return unet.config.in_channels == PIXEL_CHANNELS + COORD_CHANNELS


def with_coords(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, C + 2, H, W): append each cell's x and y in [-1, 1],
    whatever the aspect ratio, so a 3:2 grid spans the same range as a square."""
    b, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    coords = torch.stack([grid_x, grid_y]).expand(b, -1, -1, -1)
    return torch.cat([x, coords], dim=1)


def widen_for_coords(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """A model trained without coordinate channels, given them: the new
    input weights start at zero, so it computes exactly what it did and
    learns to use them from there (a warm start, not a retrain)."""
    if uses_coords(unet):
        return unet
    wide = build_unet(coords=True, norm=norm_of(unet))
    state = unet.state_dict()
    w = state["conv_in.weight"]
    pad = torch.zeros(w.shape[0], COORD_CHANNELS, *w.shape[2:], dtype=w.dtype)
    state["conv_in.weight"] = torch.cat([w, pad], dim=1)
    wide.load_state_dict(state)
    return wide


# Noise-level shift (as in "simple diffusion", Hoogeboom et al. 2023): train
# and sample at the noise levels of a schedule whose SNR is divided by
# NOISE_SHIFT². A flat-coloured object of a few hundred pixels is still
# visible in the noisy image at t=900 of the plain cosine schedule (SNR
# 0.024), so where it goes and what outline it has are decided in the top
# ~7% of timesteps: one sampling step, and a sliver of the training batches.
# The model stays a function of the plain schedule's timestep; only which
# timesteps training draws and sampling visits change, so any weights work
# with any shift.
NOISE_SHIFT = 4.0
# Sampling may visit a milder shift than training drew from: the last steps
# clean up fine detail, and a smaller shift leaves more of them at low noise.
SAMPLE_SHIFT = 2.0


def shifted_timesteps(shift: float = NOISE_SHIFT) -> np.ndarray:
    """t' in 0..T-1 → the (fractional) timestep of the plain schedule whose
    SNR equals the shifted schedule's SNR at t'."""
    alphas = train_scheduler().alphas_cumprod.double()
    log_snr = torch.log(alphas / (1 - alphas)).numpy()
    target = log_snr - 2 * np.log(shift)
    # log_snr falls with t: interpolate on the reversed (increasing) arrays.
    return np.interp(-target, -log_snr, np.arange(len(log_snr), dtype=np.float64))


def sampling_timesteps(steps: int, strength: float = 1.0, shift: float = NOISE_SHIFT) -> list[int]:
    """`steps` timesteps, noisiest first, evenly spaced in the shifted
    schedule and starting at the plain schedule's `strength`·T (image to
    image keeps its meaning: the same strength adds the same noise)."""
    table = shifted_timesteps(shift)
    last = len(table) - 1
    start_plain = strength * last
    start = float(np.interp(start_plain, table, np.arange(len(table))))  # back to shifted time
    points = np.linspace(start, 0, steps + 1)[:-1]
    plain = np.interp(points, np.arange(len(table)), table).round().astype(int)
    out: list[int] = []
    for t in plain:  # rounding can repeat a step at the low end
        if not out or t < out[-1]:
            out.append(int(t))
    return out


def train_scheduler() -> DDPMScheduler:
    return DDPMScheduler(**SCHEDULER_CONFIG)


def fold(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, 64, 64) in [-1, 1] → (B, 48, 16, 16)."""
    return F.pixel_unshuffle(images, FOLD)


def unfold(x: torch.Tensor) -> torch.Tensor:
    return F.pixel_shuffle(x, FOLD)
