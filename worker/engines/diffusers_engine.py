"""The diffusers engine: every family of shared/families.py (Stable Diffusion
1.x/2.x, SDXL(-Turbo), SD 3.5, FLUX.1, Z-Image, Qwen-Image, Hunyuan-DiT), from a local
folder or a hub id, through diffusers' AutoPipelines. Image-to-image and
inpainting share the text-to-image pipeline's weights (`from_pipe`); LoRAs
are adapters on those same weights (worker/engines/loras.py).

What differs between families is data (shared/families.py): the defaults,
whether a negative prompt is read, where the guidance goes, which text
encoder the prompt limit is counted in. The code path is one."""

from __future__ import annotations

import gc
import inspect
import logging
from dataclasses import replace
from functools import cache
from typing import Any

import torch
from PIL import Image

from shared.errors import Unsupported
from shared.families import FAMILIES, PIPELINES, family_for
from shared.fleet import ModelEntry
from shared.models import ModelSpec, Task, model_name
from shared.settings import Settings
from worker.engines import early_stop, inpaint_variant, masking
from worker.engines import speed as speedups
from worker.engines.base import GenerationCancelled, ProgressFn, Request, check_request
from worker.engines.conditioning import conditioning
from worker.engines.inpaint_variant import INPAINT_UNET_CHANNELS
from worker.engines.loras import LoraSet, find_loras
from worker.engines.previews import (
    NSFW_NOTICE,
    SD_LATENT_RGB,
    SDXL_LATENT_BIAS,
    SDXL_LATENT_RGB,
    latent_preview,
    notice_image,
)
from worker.engines.tiling import circular_padding

__all__ = ["NSFW_NOTICE", "DiffusersEngine", "latent_preview", "notice_image"]

logger = logging.getLogger(__name__)

UNET_ARCHS = frozenset({"sd", "sdxl"})
# Qwen-Image runs classifier-free guidance only when it is given a negative prompt;
# its model card passes a blank one when the user has none.
BLANK_NEGATIVE = " "


@cache
def _parameters(pipe_class: type) -> frozenset[str]:
    return frozenset(inspect.signature(pipe_class.__call__).parameters)


class DiffusersEngine:
    def __init__(
        self,
        model: ModelEntry | str,
        device: str = "cpu",
        *,
        lora_dir: str | None = None,
        cpu_offload: bool = False,
        vae_tiling_pixels: int = 2048 * 2048,
        speed: speedups.SpeedOptions | None = None,
    ) -> None:
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

        entry = model if isinstance(model, ModelEntry) else ModelEntry(name=model_name(model), source=model)
        self.entry = entry
        self.device = torch.device(device)
        self.vae_tiling_pixels = vae_tiling_pixels
        # The speed options (worker/engines/speed.py): by default the worker's, decided by the device.
        self.speed = speed or speedups.SpeedOptions.for_device(Settings(), self.device)
        dtype = self.speed.dtype(self.device)
        # 1. The text-to-image pipeline, and which architecture and family it is.
        self.pipe = AutoPipelineForText2Image.from_pretrained(entry.source, dtype=dtype)
        arch = PIPELINES.get(type(self.pipe).__name__)
        if arch is None:
            served = ", ".join(sorted(PIPELINES))
            raise ValueError(f"it is a {type(self.pipe).__name__}; Daydream serves {served}.")
        family = FAMILIES[entry.family] if entry.family else family_for(arch, f"{entry.name} {entry.source}")
        if family.arch != arch:
            raise ValueError(f"it is a `{arch}` checkpoint, and the family `{family.name}` is `{family.arch}`.")
        self.arch, self.family = arch, family
        # 2. On the device (or offloaded part by part), and the pipelines that share its weights.
        if cpu_offload and self.device.type == "cuda":
            self.pipe.enable_model_cpu_offload(device=self.device)
        else:
            if cpu_offload:
                logger.warning("CPU_OFFLOAD applies to CUDA devices only; the model runs on %s", self.device)
            self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.img2img_pipe = AutoPipelineForImage2Image.from_pipe(self.pipe) if family.img2img else None
        if self.img2img_pipe is not None:
            self.img2img_pipe.set_progress_bar_config(disable=True)
        self.inpaint_pipe = AutoPipelineForInpainting.from_pipe(self.pipe) if family.inpaint else None
        if self.inpaint_pipe is not None:
            self.inpaint_pipe.set_progress_bar_config(disable=True)
        if entry.inpaint:  # the checkpoint's inpainting variant paints regions instead
            self.inpaint_pipe = inpaint_variant.load(
                self.pipe, entry.inpaint, self.device, dtype, cpu_offload=cpu_offload
            )
        # 3. LoRAs, loaded once.
        files, others = find_loras(entry, arch, lora_dir)
        self.loras = LoraSet(self.pipe, files, others)
        self.speedups = speedups.apply(self.pipe, self.speed, loras=bool(files))
        # 4. What the model can do, for the bot to check at submit.
        self.tokenizer = getattr(self.pipe, family.tokenizer, None)
        xl = arch == "sdxl"
        self.latent_rgb = (SDXL_LATENT_RGB, SDXL_LATENT_BIAS) if xl else (SD_LATENT_RGB, (0.0, 0.0, 0.0))
        tasks = {Task.TEXT_TO_IMAGE, Task.TILE}
        if self.img2img_pipe is not None:
            tasks |= {Task.IMAGE_TO_IMAGE, Task.UPSCALE}  # the upscale restores detail by image-to-image
        # A UNet checkpoint without an inpainting variant paints by masked denoising on its
        # own pipeline (`_masked`); the transformer families through diffusers' inpainting
        # pipelines, which blend the known latents the same way for a plain checkpoint.
        unet = getattr(self.pipe, "unet", None)
        self.inpainting_checkpoint = bool(entry.inpaint) or (
            unet is not None and int(unet.config.in_channels) == INPAINT_UNET_CHANNELS
        )
        self.masked_denoising = arch in UNET_ARCHS and not self.inpainting_checkpoint
        if self.inpaint_pipe is not None or self.masked_denoising:
            tasks.add(Task.INPAINT)
        self.spec = ModelSpec(
            name=entry.name,
            family=family.name,
            title=family.title,
            tasks=frozenset(tasks),
            max_prompt_tokens=self._token_limit(),
            base_size=entry.size or self._base_size(),
            size_multiple=self._size_multiple(),
            default_steps=entry.steps or family.steps,
            default_guidance=family.guidance if entry.guidance is None else entry.guidance,
            negative_prompt=family.negative_prompt,
            cfg_above=family.cfg_above,
            loras=self.loras.names,
            other_loras=dict(self.loras.others),
            lanes=entry.lanes,
            # What the family cannot honour, and --stop where the scheduler gives no denoised estimate.
            unsupported=family.unsupported + (() if early_stop.can_stop(self.pipe.scheduler) else ("stop",)),
        )
        logger.info(
            "loaded %s (%s) on %s (%s), base size %d, LoRAs: %s",
            entry.source, family.title, self.device, dtype, self.spec.base_size, ", ".join(self.loras.names) or "none",
        )  # fmt: skip

    # -- /describe, with the captioner the admin configured (DESCRIBE_MODEL) ----------
    captioner: Any = None

    def use_captioner(self, captioner: Any) -> None:
        """Describe images with `captioner` (worker/engines/captioner.py) from now on."""
        self.captioner = captioner
        self.spec = replace(self.spec, tasks=self.spec.tasks | {Task.DESCRIBE})

    def describe(self, image: Image.Image, seeds: list[int]) -> list[str]:
        if self.captioner is None:
            raise Unsupported(self.spec.name, f"The model `{self.spec.name}` has no captioner: set DESCRIBE_MODEL.")
        return self.captioner.describe(image, seeds)

    # -- what the model is -----------------------------------------------------------
    def _base_size(self) -> int:
        if self.family.base_size is not None:
            return self.family.base_size
        unet = getattr(self.pipe, "unet", None)
        sample = getattr(getattr(unet, "config", None), "sample_size", 64)
        return int(sample) * self.pipe.vae_scale_factor

    def _size_multiple(self) -> int:
        scale = int(getattr(self.pipe, "vae_scale_factor", 8))
        # A UNet halves the latents at each of its down blocks; a transformer packs 2×2 latent patches.
        return scale * 8 if self.arch in UNET_ARCHS else scale * 2

    def _template_overhead(self) -> int:
        """Tokens the pipeline wraps around the prompt before its encoder's length applies."""
        if self.arch == "qwen-image":
            template = self.pipe.prompt_template_encode
            return self.count_tokens(template.format("")) - self.pipe.prompt_template_encode_start_idx
        if self.arch == "z-image":
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": ""}], tokenize=False, add_generation_prompt=True, enable_thinking=True
            )
            return self.count_tokens(text)
        return 0

    def _token_limit(self) -> int:
        if self.tokenizer is None:
            return 77
        if self.family.max_sequence_length is None:
            return int(self.tokenizer.model_max_length)
        return self.family.max_sequence_length - max(0, self._template_overhead())

    def count_tokens(self, prompt: str) -> int:
        if self.tokenizer is None:
            return 0
        return len(self.tokenizer(prompt).input_ids)

    def tokenizer_json(self) -> str | None:
        """The fast (Rust) form of the tokenizer the limit is in; checkpoints often ship
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

    # -- sampling ----------------------------------------------------------------------
    def _generators(self, seeds: list[int]) -> list[torch.Generator]:
        # One generator per image (not `[g] * 4`, which is one shared stream).
        # On the device even when offloaded (the noise is drawn where the model runs): a seed gives
        # the same image with CPU_OFFLOAD on or off.
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
                if latents is None:
                    return None
                if not self.speed.latent_previews:
                    return speedups.vae_preview(pipe, latents, scheduler)
                return latent_preview(latents, *self.latent_rgb, scheduler)

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
        self.loras.apply(req.loras)
        self._tiling(req.width * req.height)
        denoiser = getattr(self.pipe, "unet", None) or getattr(self.pipe, "transformer", None)
        try:
            with circular_padding(denoiser, getattr(self.pipe, "vae", None), on=req.tile):
                return self._generate(req, progress)
        except torch.OutOfMemoryError:
            # Give the memory back before the job fails, so the next job finds it (worker/pipeline.py says so).
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise

    def _generate(self, req: Request, progress: ProgressFn | None) -> list[Image.Image]:
        if req.upscale > 1:
            return [self._upscale(req, progress)]
        if req.mask is not None:
            return self._inpaint(req, progress)
        if req.init_images:
            return self._img2img(req, progress)
        return self._txt2img(req, progress)

    def _tiling(self, pixels: int) -> None:
        """Decode in tiles past VAE_TILING_PIXELS: the VAE's decode is the peak of memory at large sizes."""
        vae = getattr(self.pipe, "vae", None)
        if vae is None or not hasattr(vae, "enable_tiling"):
            return
        if pixels > self.vae_tiling_pixels:
            vae.enable_tiling()
        else:
            vae.disable_tiling()

    def _call(
        self,
        pipe: Any,
        req: Request,
        steps: int,
        progress: ProgressFn | None,
        progress_total: int,
        on_step: Any = None,
        **kw: Any,
    ) -> Any:
        """Call `pipe` with the family's arguments: guidance where it goes, the negative
        prompt only where it is read, the long encoder's length where it has one."""
        family, n = self.family, len(req.seeds)
        guidance = self.spec.default_guidance if req.guidance is None else req.guidance
        accepted = _parameters(type(pipe))
        kw.update(prompt=[req.prompt] * n, generator=self._generators(list(req.seeds)), num_inference_steps=steps)
        kw[family.guidance_arg] = guidance
        if family.negative_prompt and guidance > family.cfg_above:
            if req.negative_prompt:
                kw["negative_prompt"] = [req.negative_prompt] * n
            elif family.guidance_arg == "true_cfg_scale":
                kw["negative_prompt"] = [BLANK_NEGATIVE] * n
        if family.max_sequence_length is not None and "max_sequence_length" in accepted:
            kw["max_sequence_length"] = family.max_sequence_length
        kw.update(family.call_args)
        kw = {k: v for k, v in kw.items() if k in accepted or k in {"prompt", "generator"}}
        callback = self._callback(progress, progress_total)
        if on_step is not None:
            callback = masking.chained(on_step, callback)
        # --chaos, --weird and weighted parts move the conditioning (worker/engines/conditioning.py);
        # --stop ends with the denoised estimate (worker/engines/early_stop.py).
        positive = [(p.text, p.weight) for p in req.prompts if p.weight > 0]
        with conditioning(pipe, positive, req.seeds, req.chaos, req.weird, family.conditioning):
            with early_stop.stopping(pipe, req.stop):
                out = pipe(**kw, callback_on_step_end=callback)
        return self._finish(out, req.width, req.height)

    @torch.inference_mode()
    def _txt2img(self, req: Request, progress: ProgressFn | None) -> list[Image.Image]:
        steps = req.steps or self.spec.default_steps
        return self._call(self.pipe, req, steps, progress, steps, width=req.width, height=req.height)

    def _init_images(self, req: Request) -> list[Image.Image]:
        images = list(req.init_images)
        if len(images) != len(req.seeds):
            images = [images[0]] * len(req.seeds)
        return [im.convert("RGB").resize((req.width, req.height), Image.Resampling.LANCZOS) for im in images]

    def _strength_steps(self, req: Request) -> int:
        # Turbo models need steps × strength ≥ 1 to do anything at all.
        return max(req.steps or self.spec.default_steps, int(1 / max(req.strength, 1e-3)) + 1)

    @torch.inference_mode()
    def _img2img(self, req: Request, progress: ProgressFn | None) -> list[Image.Image]:
        steps = self._strength_steps(req)
        return self._call(
            self.img2img_pipe, req, steps, progress, max(1, int(steps * req.strength)),
            image=self._init_images(req), strength=req.strength, width=req.width, height=req.height,
        )  # fmt: skip

    @torch.inference_mode()
    def _inpaint(self, req: Request, progress: ProgressFn | None) -> list[Image.Image]:
        # The LoRAs are on the base UNet, not an inpainting variant's: with them, masked denoising.
        if self.masked_denoising or (req.loras and self.entry.inpaint):
            painted = self._masked(req, progress)
        else:
            painted = self._inpaint_pipeline(req, progress)
        sources = self._init_images(req)
        return [masking.paste(p, src, req.mask) for p, src in zip(painted, sources, strict=True)]

    def _masked(self, req: Request, progress: ProgressFn | None) -> list[Image.Image]:
        """Masked denoising on the text-to-image pipeline (worker/engines/masking.py): it
        starts from noise, and after each step a callback puts the known latents back,
        noised to the next step's level, where the mask keeps them."""
        pipe = self.pipe
        steps = req.steps or self.spec.default_steps
        vae = pipe.vae
        scale = pipe.vae_scale_factor
        pixels = pipe.image_processor.preprocess(self._init_images(req), height=req.height, width=req.width)
        known = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist.mode() * vae.config.scaling_factor
        keep = masking.mask_tensor(req.mask, (req.width // scale, req.height // scale), self.device).to(known.dtype)
        # The noise the pipeline would draw itself for these seeds (one generator each).
        noise = torch.cat([torch.randn(known.shape[1:], generator=g, device=g.device, dtype=known.dtype)[None]
                           for g in self._generators(list(req.seeds))]).to(self.device)  # fmt: skip
        start, on_step = masking.repaint_steps(pipe.scheduler, known, noise, keep, steps, self.device)

        return self._call(
            pipe, req, steps, progress, steps, on_step=on_step, latents=start, width=req.width, height=req.height
        )

    def _inpaint_pipeline(self, req: Request, progress: ProgressFn | None) -> list[Image.Image]:
        steps = self._strength_steps(req)
        mask = req.mask.convert("L").resize((req.width, req.height), Image.Resampling.NEAREST)
        return self._call(
            self.inpaint_pipe, req, steps, progress, max(1, int(steps * req.strength)),
            image=self._init_images(req), mask_image=mask, strength=req.strength, width=req.width, height=req.height,
        )  # fmt: skip

    def _upscale(self, req: Request, progress: ProgressFn | None) -> Image.Image:
        """×factor: Lanczos to the new size, then image-to-image at a low strength
        to restore detail at that resolution."""
        image = req.init_images[0]
        m = self.spec.size_multiple
        width, height = (image.width * req.upscale) // m * m, (image.height * req.upscale) // m * m
        big = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
        at = replace(req, seeds=req.seeds[:1], width=width, height=height, init_images=(big,), upscale=1)
        return self._img2img(at, progress)[0]
