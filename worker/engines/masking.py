"""Masked denoising, shared by every engine that paints through a mask with a
model that has no inpainting checkpoint (RePaint-style blending).

At every step the sampler's estimate is kept where the mask paints, and
replaced where it keeps by the known image noised to the step's noise level:
the model sees the known pixels (or latents) as if it had drawn them itself,
and paints the rest to match them. After the last step the known part is the
known image itself. `paste` then puts the source's exact pixels back where
the mask keeps them (a VAE round trip would otherwise shift them a little)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def mask_tensor(mask: Image.Image, size: tuple[int, int], device: torch.device | str = "cpu") -> torch.Tensor:
    """The mask at `size` (width, height) as a 1×1×H×W float tensor: 1 paint, 0 keep.
    Any pixel of a cell that is partly painted is painted (max-pooled, not averaged):
    a seam is painted over rather than left half-known."""
    arr = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    t = torch.from_numpy(arr)[None, None]
    h, w = size[1], size[0]
    if t.shape[-2:] != (h, w):
        if t.shape[-2] % h == 0 and t.shape[-1] % w == 0:
            t = torch.nn.functional.max_pool2d(t, (t.shape[-2] // h, t.shape[-1] // w))
        else:
            t = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
            t = (t > 0.0).float()
    return (t > 0.5).float().to(device)


def blend(x: torch.Tensor, known_at_t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The sampler's state where the mask paints, the noised known image where it keeps."""
    return mask * x + (1.0 - mask) * known_at_t


def noised(known: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor | float) -> torch.Tensor:
    """`known` at the noise level of a variance-preserving step (ᾱ = alpha_bar)."""
    a = torch.as_tensor(alpha_bar, dtype=known.dtype, device=known.device)
    return a.sqrt() * known + (1.0 - a).sqrt() * noise


def paste(generated: Image.Image, source: Image.Image, mask: Image.Image) -> Image.Image:
    """`generated` where the mask paints, `source` where it keeps."""
    size = generated.size
    src = source.convert("RGB").resize(size, Image.Resampling.LANCZOS) if source.size != size else source.convert("RGB")
    m = mask.convert("L").resize(size, Image.Resampling.NEAREST) if mask.size != size else mask.convert("L")
    return Image.composite(generated.convert("RGB"), src, m)


def repaint_steps(scheduler, known: torch.Tensor, noise: torch.Tensor, keep: torch.Tensor, steps: int, device):
    """Masked denoising on a diffusers pipeline: the starting latents (noise, and the
    known part noised to the first step) and a step callback that puts the known
    latents back, noised to the next step's level, where `keep` keeps them."""
    n = noise.shape[0]  # one per seed
    scheduler.set_timesteps(steps, device=device)
    first = scheduler.timesteps[:1].repeat(n)
    start = blend(noise, scheduler.add_noise(known, noise, first) / scheduler.init_noise_sigma, keep)

    def on_step(pipe, step: int, timestep, kwargs: dict) -> dict:
        timesteps = pipe.scheduler.timesteps
        # After the last step, or --stop's (worker/engines/early_stop.py): the known latents themselves.
        if step + 1 < len(timesteps) and not getattr(pipe, "interrupt", False):
            at = pipe.scheduler.add_noise(known, noise, timesteps[step + 1 : step + 2].repeat(n))
        else:
            at = known
        kwargs["latents"] = blend(kwargs["latents"], at, keep)
        return kwargs

    return start, on_step


def chained(first, second):
    """Two `callback_on_step_end`s in one (the second may be None)."""

    def on_step_end(pipe, step: int, timestep, kwargs: dict) -> dict:
        kwargs = first(pipe, step, timestep, kwargs)
        return second(pipe, step, timestep, kwargs) if second is not None else kwargs

    return on_step_end
