"""The diffusers engine: any Stable Diffusion 1.x/2.x, SDXL, SD-Turbo or
SDXL-Turbo checkpoint, from a local folder or a hub id, through AutoPipeline.
Image-to-image shares the text-to-image pipeline's weights (`from_pipe`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import torch
from PIL import Image, ImageDraw

from shared.models import ModelSpec, Task, model_name
from worker.engines.base import GenerationCancelled, ProgressFn, Request, check_request

logger = logging.getLogger(__name__)

TURBO_HINTS = ("turbo",)
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


def _dtype_for(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


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


class DiffusersEngine:
    def __init__(self, model: str, device: str = "cpu") -> None:
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image

        self.device = torch.device(device)
        dtype = _dtype_for(self.device)
        self.pipe = AutoPipelineForText2Image.from_pretrained(model, dtype=dtype)
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        # Shares every module with self.pipe: no second copy of the weights.
        self.img2img_pipe = AutoPipelineForImage2Image.from_pipe(self.pipe)
        self.img2img_pipe.set_progress_bar_config(disable=True)
        unet = getattr(self.pipe, "unet", None)
        vae_scale = getattr(self.pipe, "vae_scale_factor", 8)
        sample = getattr(getattr(unet, "config", None), "sample_size", 64) if unet is not None else 64
        tokenizer = getattr(self.pipe, "tokenizer", None)
        self.tokenizer = tokenizer
        xl = "XL" in type(self.pipe).__name__
        self.latent_rgb = (SDXL_LATENT_RGB, SDXL_LATENT_BIAS) if xl else (SD_LATENT_RGB, (0.0, 0.0, 0.0))
        turbo = any(h in model.lower() for h in TURBO_HINTS)
        self.spec = ModelSpec(
            name=model_name(model),
            family="sdxl" if xl else "sd",
            tasks=frozenset({Task.TEXT_TO_IMAGE, Task.IMAGE_TO_IMAGE, Task.UPSCALE}),
            max_prompt_tokens=int(getattr(tokenizer, "model_max_length", 77)) if tokenizer else 77,
            base_size=int(sample) * vae_scale,
            size_multiple=vae_scale * 8 if unet is not None else 16,
            default_steps=4 if turbo else 25,
            default_guidance=0.0 if turbo else 7.0,
        )
        logger.info("loaded %s on %s (%s), base size %d", model, self.device, dtype, self.spec.base_size)

    def count_tokens(self, prompt: str) -> int:
        if self.tokenizer is None:
            return 0
        return len(self.tokenizer(prompt).input_ids)

    def tokenizer_json(self) -> str | None:
        """The fast (Rust) form of the pipeline's tokenizer; checkpoints often ship
        the slow CLIPTokenizer, which converts from its own vocabulary files."""
        if self.tokenizer is None:
            return None
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        try:
            if backend is None:
                from transformers.convert_slow_tokenizer import convert_slow_tokenizer

                backend = convert_slow_tokenizer(self.tokenizer)
            return backend.to_str()
        except Exception as exc:  # the worker still counts every prompt itself
            logger.warning("cannot publish the tokenizer (%s); prompts are checked on arrival only", exc)
            return None

    def _generators(self, seeds: list[int]) -> list[torch.Generator]:
        # One generator per image (not `[g] * 4`, which is one shared stream).
        gen_device = "cpu" if self.device.type == "mps" else self.device
        return [torch.Generator(device=gen_device).manual_seed(s) for s in seeds]

    def _callback(self, progress: ProgressFn | None, total: int):
        if progress is None:
            return None

        def on_step_end(pipe, step: int, timestep, kwargs: dict) -> dict:
            latents = kwargs.get("latents")
            scheduler = pipe.scheduler

            def preview() -> Image.Image | None:
                # Called (in this step) only when a progress edit is due: it waits for the GPU.
                return None if latents is None else latent_preview(latents, *self.latent_rgb, scheduler)

            # The pipeline's own count: PNDM (SD 1.5's default) runs steps + 1
            # timesteps, and img2img a strength-dependent share of them.
            steps = getattr(pipe, "num_timesteps", None) or total
            try:
                progress(min(1.0, (step + 1) / max(steps, 1)), preview)
            except GenerationCancelled:
                pipe._interrupt = True  # diffusers' documented way to stop the loop
                raise
            return kwargs  # must return its dict

        return on_step_end

    def _finish(self, out, width: int, height: int) -> list[Image.Image]:
        images = list(out.images)
        flagged = getattr(out, "nsfw_content_detected", None) or [False] * len(images)
        return [
            notice_image(width, height, NSFW_NOTICE) if bad else im for im, bad in zip(images, flagged, strict=True)
        ]

    def generate(self, req: Request, progress: ProgressFn | None = None) -> list[Image.Image]:
        check_request(self.spec, req)
        if req.upscale > 1:
            return [self._upscale(req, progress)]
        if req.init_images:
            return self._img2img(req, progress)
        return self._txt2img(req, progress)

    def _common(self, req: Request) -> dict:
        n = len(req.seeds)
        return dict(
            prompt=[req.prompt] * n,
            negative_prompt=[req.negative_prompt] * n if req.negative_prompt else None,
            guidance_scale=self.spec.default_guidance if req.guidance is None else req.guidance,
            generator=self._generators(list(req.seeds)),
        )

    @torch.inference_mode()
    def _txt2img(self, req: Request, progress: ProgressFn | None) -> list[Image.Image]:
        steps = req.steps or self.spec.default_steps
        out = self.pipe(
            **self._common(req),
            width=req.width,
            height=req.height,
            num_inference_steps=steps,
            callback_on_step_end=self._callback(progress, steps),
        )
        return self._finish(out, req.width, req.height)

    @torch.inference_mode()
    def _img2img(self, req: Request, progress: ProgressFn | None) -> list[Image.Image]:
        steps = req.steps or self.spec.default_steps
        images = list(req.init_images)
        if len(images) != len(req.seeds):
            images = [images[0]] * len(req.seeds)
        images = [im.convert("RGB").resize((req.width, req.height), Image.Resampling.LANCZOS) for im in images]
        strength = req.strength
        # Turbo models need steps × strength ≥ 1 to do anything at all.
        steps = max(steps, int(1 / max(strength, 1e-3)) + 1)
        out = self.img2img_pipe(
            **self._common(req),
            image=images,
            strength=strength,
            num_inference_steps=steps,
            callback_on_step_end=self._callback(progress, max(1, int(steps * strength))),
        )
        return self._finish(out, req.width, req.height)

    def _upscale(self, req: Request, progress: ProgressFn | None) -> Image.Image:
        """×factor: Lanczos to the new size, then image-to-image at a low strength
        to restore detail at that resolution."""
        image = req.init_images[0]
        m = self.spec.size_multiple
        width, height = (image.width * req.upscale) // m * m, (image.height * req.upscale) // m * m
        big = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
        at = replace(req, seeds=req.seeds[:1], width=width, height=height, init_images=(big,), upscale=1)
        return self._img2img(at, progress)[0]
