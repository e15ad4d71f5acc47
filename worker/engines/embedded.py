"""The embedded engine: Daydream's own small text-to-image model, shipped in
the repository (worker/models/embedded), with all-MiniLM-L6-v2 as its text
encoder. Runs on a CPU in seconds; works offline from a fresh clone."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler
from PIL import Image, ImageFilter

from shared.grid import compose_grid
from shared.models import EMBEDDED, ModelSpec, Task
from worker.embedded import reading as reading_mod
from worker.embedded.denoiser import (
    FOLD,
    IMAGE_SIZE,
    SAMPLE_SHIFT,
    fold,
    load_unet,
    sampling_timesteps,
    unfold,
    uses_coords,
    with_coords,
)
from worker.embedded.describe import describe as describe_scene
from worker.embedded.multilingual import MultilingualEncoder, shared_encoder
from worker.embedded.ranking import match_score
from worker.embedded.textenc import MAX_TOKENS, TextEmbedding, TextEncoder, submit_tokenizer_json, weighted_embedding
from worker.engines import masking
from worker.engines.base import ProgressFn, Request, Understanding, check_request
from worker.engines.conditioning import CHAOS_SALT, CHAOS_SCALE, WEIRD_SCALE, WEIRD_SEED
from worker.engines.tiling import circular_padding, tile_shift

logger = logging.getLogger(__name__)

EMBEDDED_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "embedded"
# 12 solver steps (20 until issue 21): on 8 benchmark scenes × 4 seeds × 2
# wordings, bf16 at 12 steps read the same five attributes as float32 at 20
# in 64 of 64 tiles; at 10 steps only 46 of 64 (shapes lose their corners).
DEFAULT_STEPS = 12
DEFAULT_GUIDANCE = 4.0
# Classifier-free guidance only at t >= 200; below, the conditional model
# alone. By then layout and outline are settled, and extrapolating the two
# branches at low noise mostly amplifies where they disagree (grain). Full
# benchmark at step 24,093, plain wording: shape 68.8% -> 71.4%, fg colour
# 97.4% -> 97.9%, position 95.3% -> 97.4%, size 99.0% -> 100% (x0 not
# clipped). It saves no measurable time (only the last of the 20 default
# steps, t = 107, is below t = 200).
GUIDANCE_MIN_T = 200
# Clip the solver's image estimate (x0) to the pixel range [-1, 1] at every
# step (diffusers' `thresholding` with sample_max_value 1). Guidance
# extrapolates the two branches; where they disagree it predicts pixel values
# far outside the range (|x0| up to 24 at step 26,000), which feed back into
# the next step. Full benchmark at step 30,006, plain / paraphrased: shape
# 70.8 / 69.8% -> 81.2 / 85.4%, fg colour 92.2 / 93.2% -> 95.3 / 96.9%,
# position 91.1 / 92.7% -> 92.7 / 95.3% (GroupNorm weights; the blob of
# coloured noise those drew came from the norm, see denoiser.PixelNorm).
CLIP_X0 = True
# The denoiser under bfloat16 autocast (the solver stays in float32): 1.35×
# faster per grid on this CPU (avx512_bf16/AMX; 3.35 → 2.48 s median at 12
# steps on one thread of a busy VM), and 63 of 64 tiles read the same as
# float32 at 20 steps (one shape call flipped). Off on CPUs without bf16 units,
# where autocast emulates it and is slower.
BF16 = True
SIZE_MULTIPLE = FOLD * 4  # the UNet halves the folded grid twice


def bf16_supported(device: torch.device) -> bool:
    """Whether this device computes bfloat16 natively (else autocast would emulate it, slower)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def to_tensor(images: list[Image.Image], size: tuple[int, int]) -> torch.Tensor:
    arrays = [np.asarray(im.convert("RGB").resize(size, Image.Resampling.BICUBIC), dtype=np.float32) for im in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 127.5 - 1.0


def to_images(x: torch.Tensor) -> list[Image.Image]:
    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arr]


SPEC = ModelSpec(
    name=EMBEDDED,
    family=EMBEDDED,
    # Inpainting by masked denoising (worker/engines/masking.py): the model has no inpainting variant.
    # Describe: the inverse of its own world (worker/embedded/describe.py).
    tasks=frozenset({Task.TEXT_TO_IMAGE, Task.IMAGE_TO_IMAGE, Task.UPSCALE, Task.TILE, Task.INPAINT, Task.DESCRIBE}),
    max_prompt_tokens=MAX_TOKENS,
    base_size=IMAGE_SIZE,
    size_multiple=SIZE_MULTIPLE,
    default_steps=DEFAULT_STEPS,
    default_guidance=DEFAULT_GUIDANCE,
)


# --chaos and --weird move the text conditioning (what the UNet cross-attends to and its
# pooled class vector) by seeded Gaussian offsets, relative to its own size. chaos: an
# offset per image, drawn from the image's seed (the four spread apart; 100 moves the
# pooled vector about 0.8 of its length); weird: one offset for every image of every job,
# drawn from a fixed seed (the same twist, reproducibly; 3000 moves it 1.5 lengths).
# The scales are the diffusers engine's too (worker/engines/conditioning.py holds them).


def _offset(seed: int, like: TextEmbedding) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(like.tokens.shape[1:], generator=g).to(like.tokens)
    pooled = torch.randn(like.pooled.shape[1:], generator=g).to(like.pooled)
    return tokens, pooled / pooled.norm()


def twisted(cond: TextEmbedding, seeds: tuple[int, ...], chaos: int, weird: int) -> TextEmbedding:
    """`cond` (one row per image) moved by --chaos (per image) and --weird (common)."""
    tokens, pooled = cond.tokens.clone(), cond.pooled.clone()
    scale = cond.tokens.pow(2).mean().sqrt()  # the tokens' own size
    offsets = []
    if weird:
        offsets.append((WEIRD_SCALE * weird, [_offset(WEIRD_SEED, cond)] * len(seeds)))
    if chaos:
        offsets.append((CHAOS_SCALE * chaos / 100, [_offset(s ^ CHAOS_SALT, cond) for s in seeds]))
    for amount, per_image in offsets:
        tokens = tokens + amount * scale * torch.stack([t for t, _ in per_image])
        pooled = pooled + amount * torch.stack([p for _, p in per_image])
    return TextEmbedding(tokens=tokens, mask=cond.mask, pooled=torch.nn.functional.normalize(pooled, dim=-1))


class EmbeddedEngine:
    def __init__(self, path: Path | str = EMBEDDED_MODEL_DIR, device: str = "cpu") -> None:
        path = Path(path)
        if not (path / "unet" / "config.json").is_file() or not (path / "scheduler").is_dir():
            # diffusers would otherwise try the hub and blame the network.
            raise FileNotFoundError(
                f"{path}: not an embedded model folder (it needs unet/ and scheduler/, "
                f"as in {EMBEDDED_MODEL_DIR} or a train-embedded --out folder)"
            )
        self.path = path
        self.device = torch.device(device)
        self.unet = load_unet(path, self.device).eval()
        self.coords = uses_coords(self.unet)
        self.sample_shift = SAMPLE_SHIFT
        self.guidance_min_t = GUIDANCE_MIN_T
        self.clip_x0 = CLIP_X0
        self.bf16 = BF16 and bf16_supported(self.device)
        config = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
        self.scheduler_config = {**config, "algorithm_type": "dpmsolver++", "solver_order": 2}
        self.text = TextEncoder(device=self.device)
        self._empty = self.text.encode([""])
        self.spec = SPEC
        # Prompts in other languages (and synonyms) are read onto the model's
        # vocabulary by a multilingual encoder, then drawn from their English caption.
        self.multilingual: MultilingualEncoder | None = shared_encoder()
        self._readings: dict[str, reading_mod.Reading] = {}

    def count_tokens(self, prompt: str) -> int:
        """Tokens of what the encoder reads (`conditioning_text`): Chinese counts as its caption."""
        return self.text.count_tokens(self.conditioning_text(prompt))

    def tokenizer_json(self) -> str | None:
        return submit_tokenizer_json(self.text.tokenizer)  # English counted as typed, CJK not (see there)

    # -- reading the prompt ---------------------------------------------
    READINGS_KEPT = 256  # prompts whose reading is remembered (a re-roll reads the same text)

    def read(self, prompt: str) -> reading_mod.Reading:
        """The prompt mapped onto the model's world (worker/embedded/reading.py)."""
        found = self._readings.get(prompt)
        if found is None:
            enc = self.multilingual
            found = reading_mod.read(prompt, enc.embed, enc.anchors) if enc else reading_mod.read(prompt)
            if len(self._readings) >= self.READINGS_KEPT:
                self._readings.pop(next(iter(self._readings)))
            self._readings[prompt] = found
        return found

    def understand(self, prompt: str) -> Understanding:
        r = self.read(prompt)
        drawn = self.conditioning_text(prompt)
        return Understanding(r.describe(), r.in_world, r.unread, drawn if drawn != prompt else None)

    def rank(self, prompt: str, images: list[Image.Image]) -> list[float]:
        """Each image's match to the prompt's reading, by the quality benchmark's scorer."""
        r = self.read(prompt)
        return [match_score(im, r) for im in images]

    def conditioning_text(self, prompt: str) -> str:
        """What the English text encoder reads (Reading.conditioning_text), within its MAX_TOKENS."""
        fits = lambda text: self.text.count_tokens(text) <= MAX_TOKENS  # noqa: E731
        return self.read(prompt).conditioning_text(fits) if prompt else prompt

    # -- sampling core -------------------------------------------------
    def scheduler(self) -> DPMSolverMultistepScheduler:
        """A fresh solver (they are stateful), clipping its image estimate to
        [-1, 1] when `clip_x0` is on: with sample_max_value 1, diffusers'
        dynamic thresholding is a plain clip."""
        config = dict(self.scheduler_config)
        if self.clip_x0:
            config.update(thresholding=True, sample_max_value=1.0)
        return DPMSolverMultistepScheduler.from_config(config)

    def _conditioning(self, req: Request, n: int) -> TextEmbedding:
        """The unconditional half (the negative parts) then the conditional half (the
        positive parts, weighted; moved per image by --chaos and for all by --weird)."""
        positive = [p for p in req.prompts if p.weight > 0]
        negative = [p for p in req.prompts if p.weight < 0]
        # Every part is read through the model's own words (conditioning_text), negative ones too:
        # that is the text the prompt limit counts (count_tokens).
        cond = self._blend([self.conditioning_text(p.text) for p in positive], [p.weight for p in positive])
        if negative:
            uncond = self._blend([self.conditioning_text(p.text) for p in negative], [-p.weight for p in negative])
        elif req.negative_prompt:
            uncond = self.text.encode([self.conditioning_text(req.negative_prompt)])
        else:
            uncond = self._empty
        cond = TextEmbedding(cond.tokens.expand(n, -1, -1), cond.mask.expand(n, -1), cond.pooled.expand(n, -1))
        if req.chaos or req.weird:
            cond = twisted(cond, req.seeds, req.chaos, req.weird)
        return TextEmbedding(
            tokens=torch.cat([uncond.tokens.expand(n, -1, -1), cond.tokens]),
            mask=torch.cat([uncond.mask.expand(n, -1), cond.mask]),
            pooled=torch.cat([uncond.pooled.expand(n, -1), cond.pooled]),
        )

    def _blend(self, texts: list[str], weights: list[float]) -> TextEmbedding:
        return weighted_embedding(self.text.encode(texts), weights)

    def _noise(self, seeds: list[int], shape: tuple[int, ...]) -> torch.Tensor:
        # One generator per image: image i depends on seeds[i] alone.
        return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds]).to(
            self.device
        )

    @torch.no_grad()
    def _sample(
        self,
        req: Request,
        init: torch.Tensor | None,
        strength: float,
        progress: ProgressFn | None,
        mask: torch.Tensor | None = None,
    ) -> list[Image.Image]:
        """`mask` (1 paint, 0 keep, at pixel size): masked denoising of `init`, whose
        kept part is held at each step's noise level (worker/engines/masking.py)."""
        # 1. Check inputs
        if req.width % SIZE_MULTIPLE or req.height % SIZE_MULTIPLE:
            raise ValueError(f"width and height must be multiples of {SIZE_MULTIPLE}, got {req.width}×{req.height}")
        n = len(req.seeds)
        steps = req.steps or DEFAULT_STEPS
        guidance = DEFAULT_GUIDANCE if req.guidance is None else req.guidance
        # 2. Encode the prompt (negative prompt as the unconditional branch)
        emb = self._conditioning(req, n)
        # 3. Timesteps (a fresh scheduler per call: they are stateful), spaced
        #    by noise level (denoiser.sampling_timesteps); image to image starts
        #    at the noise level its strength names and takes fewer steps.
        scheduler = self.scheduler()
        if init is not None:
            steps = min(max(1, int(steps * strength)), steps)  # at least one step: never the input unchanged
        scheduler.set_timesteps(
            timesteps=sampling_timesteps(steps, strength if init is not None else 1.0, self.sample_shift),
            device=self.device,
        )
        timesteps = scheduler.timesteps
        shape = (3 * FOLD * FOLD, req.height // FOLD, req.width // FOLD)
        noise = self._noise(req.seeds, shape)
        # 4. Starting point: pure noise, or the init images noised to `strength`
        alphas = scheduler.alphas_cumprod.to(self.device)
        known = fold(init.to(self.device)) if init is not None else None
        keep = None
        if mask is not None and known is not None:
            # Folding is per pixel, so the mask folds exactly like the image.
            keep = fold(mask.to(self.device).expand(n, 3, -1, -1))
        if init is None or (keep is not None and strength >= 1.0):
            x = noise * scheduler.init_noise_sigma
        else:
            x = scheduler.add_noise(known, noise, timesteps[:1].repeat(n))
        if keep is not None:
            x = masking.blend(x, masking.noised(known, noise, alphas[int(timesteps[0])]), keep)
        # --stop: only the first share of the steps; the last one taken gives its image estimate.
        last = len(timesteps) if req.stop is None else max(1, math.ceil(len(timesteps) * req.stop))
        # 5. Denoising loop with classifier-free guidance (convolutions wrapping around for --tile)
        with circular_padding(self.unet, on=req.tile):
            return self._denoise(
                req, x, emb, timesteps[:last], scheduler, alphas, guidance, n, progress, last, known, noise, keep
            )

    def _denoise(
        self,
        req: Request,
        x: torch.Tensor,
        emb: TextEmbedding,
        timesteps: torch.Tensor,
        scheduler: DPMSolverMultistepScheduler,
        alphas: torch.Tensor,
        guidance: float,
        n: int,
        progress: ProgressFn | None,
        last: int,
        known: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        keep: torch.Tensor | None = None,
    ) -> list[Image.Image]:
        """Step 5 of `_sample`: the first `last` of the scheduler's steps; with `keep`,
        the known part held at each step's noise level (masked denoising)."""
        stopped = last < len(scheduler.timesteps)
        for i, t in enumerate(timesteps):
            guided = guidance != 1.0 and int(t) >= self.guidance_min_t
            # --tile: the model was trained with zero padding and coordinate channels, so
            # wrapping its convolutions alone leaves a seam where the coordinates jump.
            # Shifting the image around the fixed coordinates by a different amount each
            # step puts every seam in the middle of some step's view (latent rolling).
            shift = tile_shift(i, x) if req.tile else (0, 0)
            x_in = torch.roll(x, shift, dims=(2, 3)) if req.tile else x
            model_in = torch.cat([x_in, x_in]) if guided else x_in
            if self.coords:
                model_in = with_coords(model_in)
            part = slice(None) if guided else slice(n, None)  # the conditional half alone
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                v = self.unet(
                    model_in,
                    t,
                    encoder_hidden_states=emb.tokens[part],
                    encoder_attention_mask=emb.mask[part],
                    class_labels=emb.pooled[part],
                ).sample.float()
            if req.tile:
                v = torch.roll(v, (-shift[0], -shift[1]), dims=(2, 3))
            if guided:
                v_uncond, v_cond = v.chunk(2)
                v = v_uncond + guidance * (v_cond - v_uncond)
            if progress is not None:
                progress((i + 1) / len(timesteps), self._previewer(x, v, alphas[int(t)]))
            if stopped and i == len(timesteps) - 1:
                alpha = alphas[int(t)]
                x = alpha.sqrt() * x - (1 - alpha).sqrt() * v  # v-prediction → the denoised estimate
                break
            x = scheduler.step(v, t, x).prev_sample
            if keep is not None:
                # RePaint: the known part at the next step's noise level, itself after the last.
                at = masking.noised(known, noise, alphas[int(timesteps[i + 1])]) if i + 1 < len(timesteps) else known
                x = masking.blend(x, at, keep)
        # 6. Back to pixels
        return to_images(unfold(x))

    @staticmethod
    def _previewer(x: torch.Tensor, v: torch.Tensor, alpha: torch.Tensor):
        """The step's image estimate, decoded only if the preview is asked for."""

        def preview() -> Image.Image:
            x0 = alpha.sqrt() * x - (1 - alpha).sqrt() * v  # v-prediction → current guess of the image
            tiles = to_images(unfold(x0))
            return compose_grid(tiles[:4]) if len(tiles) >= 4 else tiles[0]  # best of N: the first four

        return preview

    # -- the Engine interface -----------------------------------------
    def generate(self, req: Request, progress: ProgressFn | None = None) -> list[Image.Image]:
        check_request(self.spec, req)
        if req.upscale > 1:
            return [self._upscale(req, progress)]
        if not req.init_images:
            return self._sample(req, None, 1.0, progress)
        images = list(req.init_images)
        if len(images) != len(req.seeds):
            images = [images[0]] * len(req.seeds)
        init = to_tensor(images, (req.width, req.height))
        if req.mask is None:
            return self._sample(req, init, req.strength, progress)
        mask = masking.mask_tensor(req.mask, (req.width, req.height), self.device)
        painted = self._sample(req, init, req.strength, progress, mask=mask)
        return [masking.paste(p, src, req.mask) for p, src in zip(painted, images, strict=True)]

    def describe(self, image: Image.Image, seeds: list[int]) -> list[str]:
        """Four prompts for `image` in this model's own words (worker/embedded/describe.py)."""
        return describe_scene(image, seeds)

    def _upscale(self, req: Request, progress: ProgressFn | None) -> Image.Image:
        """×factor: Lanczos, a light image-to-image pass at the new size (the
        network is convolutional), then an unsharp mask for crisp edges."""
        image = req.init_images[0]
        w, h = image.width * req.upscale, image.height * req.upscale
        big = image.convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
        if req.strength > 0:
            at = replace(req, seeds=req.seeds[:1], width=w - w % SIZE_MULTIPLE, height=h - h % SIZE_MULTIPLE)
            big = self._sample(at, to_tensor([big], (at.width, at.height)), req.strength, progress)[0]
            big = big.resize((w, h), Image.Resampling.LANCZOS)
        return big.filter(ImageFilter.UnsharpMask(radius=1.5, percent=120, threshold=2))
