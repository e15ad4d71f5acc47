"""A checkpoint's inpainting variant (`inpaint = …` in the fleet file), for
Vary (Region), Zoom Out, Pan and Make Square.

Masked denoising lets any UNet checkpoint paint a region, but a model trained
to inpaint (a 9-channel UNet that also reads the mask and the masked image,
such as stable-diffusion-inpainting or SDXL's inpainting-0.1) joins the new
part to the kept one better. Those variants fine-tune only the UNet, so only
its UNet is loaded: the text encoders, VAE and scheduler are the base
pipeline's, shared (`from_pipe`), and the variant costs one UNet of memory."""

from __future__ import annotations

import logging
from typing import Any

import torch

logger = logging.getLogger(__name__)

INPAINT_UNET_CHANNELS = 9  # latents + mask + masked image


def load(pipe: Any, source: str, device: torch.device, dtype: torch.dtype, *, cpu_offload: bool = False) -> Any:
    """The inpainting pipeline of `pipe` with the UNet of the variant at `source`."""
    from diffusers import AutoPipelineForInpainting, UNet2DConditionModel

    base = getattr(pipe, "unet", None)
    if base is None:
        raise ValueError(f"`inpaint = {source}`: only UNet checkpoints (SD, SDXL) have inpainting variants.")
    unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", dtype=dtype)
    if int(unet.config.in_channels) != INPAINT_UNET_CHANNELS:
        raise ValueError(
            f"`inpaint = {source}`: its UNet reads {unet.config.in_channels} channels, not an inpainting "
            f"model's {INPAINT_UNET_CHANNELS}; name the checkpoint's inpainting variant."
        )
    if unet.config.cross_attention_dim != base.config.cross_attention_dim:
        raise ValueError(
            f"`inpaint = {source}`: its UNet reads text of width {unet.config.cross_attention_dim}, the model's "
            f"encoders give {base.config.cross_attention_dim}; it is a variant of another model."
        )
    variant = AutoPipelineForInpainting.from_pipe(pipe, unet=unet)
    if cpu_offload and device.type == "cuda":
        variant.enable_model_cpu_offload(device=device)
    else:
        unet.to(device)
    variant.set_progress_bar_config(disable=True)
    logger.info("inpainting with the variant %s (its UNet; the rest shared)", source)
    return variant
