"""What a diffusers job shows besides its images: a progress preview made from
the latents without a VAE decode, and a readable notice tile in place of an
image the model's safety checker withheld."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw

NSFW_NOTICE = "This image was withheld by the model's safety checker."

# Progress previews without a VAE decode: a fixed linear map from the 4
# latent channels to RGB (the approximations ComfyUI publishes for SD 1.x/2.x
# and SDXL latents), giving a blurry image at 1/8 of the size for almost nothing.
SD_LATENT_RGB = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
SDXL_LATENT_RGB = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
SDXL_LATENT_BIAS = (0.1084, -0.0175, -0.0011)


def notice_image(width: int, height: int, text: str) -> Image.Image:
    """A grey tile with a readable notice, instead of a black square."""
    img = Image.new("RGB", (width, height), (60, 60, 60))
    draw = ImageDraw.Draw(img)
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) > max(8, width // 8):
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    for i, ln in enumerate(lines):
        draw.text((8, 8 + 14 * i), ln, fill=(230, 230, 230))
    return img


def latent_preview(
    latents: torch.Tensor, factors: Sequence[Sequence[float]], bias: Sequence[float], scheduler: object
) -> Image.Image | None:
    """The batch's current latents as one small RGB image (a 2×2 grid for
    four), or None for latents this map does not fit."""
    from shared.grid import compose_grid

    if latents.ndim != 4 or latents.shape[1] != len(factors):
        return None
    x = latents.detach().float()
    # Sigma-parameterised schedulers (Euler, Heun…) keep x0 + σ·noise; scale it
    # back to unit variance so early previews are not saturated noise.
    sigmas, index = getattr(scheduler, "sigmas", None), getattr(scheduler, "step_index", None)
    if getattr(scheduler, "init_noise_sigma", 1.0) > 1.0 and sigmas is not None and index is not None:
        sigma = float(sigmas[min(index, len(sigmas) - 1)])
        x = x / (sigma**2 + 1) ** 0.5
    weight = torch.tensor(factors, dtype=x.dtype, device=x.device).T
    rgb = torch.nn.functional.linear(x.movedim(1, -1), weight, torch.tensor(bias, dtype=x.dtype, device=x.device))
    pixels = ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8).cpu().numpy()
    tiles = [Image.fromarray(p) for p in pixels]
    return compose_grid(tiles) if len(tiles) == 4 else tiles[0]
