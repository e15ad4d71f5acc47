"""One handler per job kind, in one table (`HANDLERS`). A handler turns a job
record into a `Result`: the images (and whether they form a 2×2 grid), the
message content and the buttons to post under it. The pipeline
(worker/pipeline.py) does everything around it: checks, storing, delivery,
the job's state. A new kind is one handler here, one record builder
(shared/builders.py) and its buttons (shared/components.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from PIL import Image

from shared import edit_messages, messages
from shared.canvas import blend_canvas, edit_canvas
from shared.components import describe_components, grid_components, upscale_components
from shared.errors import GenerationFailed, InvalidRequest, Unsupported
from shared.grid import compose_grid, decode_image, encode_png
from shared.job import JobKind, JobRecord
from shared.params import IMAGE_WEIGHT, nearest_aspect
from shared.sampling import guidance_for, size_for, steps_for
from shared.settings import Settings
from shared.store import JobStore
from worker import best_of
from worker.engines.base import Engine, ProgressFn, Request, WeightedPrompt

logger = logging.getLogger(__name__)

GRID_IMAGES = 4
UPSCALE_FACTOR = 2


@dataclass
class Result:
    images: list[Image.Image]
    grid: bool  # post the images as one 2×2 grid (else the first image alone)
    content: str
    components: list[dict[str, Any]] = field(default_factory=list)
    text: str | None = None  # a text answer (e.g. /describe) in place of images
    prompts: list[str] = field(default_factory=list)  # /describe's four prompts (kept on the record)
    record: dict[str, Any] = field(default_factory=dict)  # job record fields stored with the result


@dataclass
class Encoded:
    """A result's images as stored: each PNG, and the grid's (encoded once)."""

    pngs: list[bytes]
    grid_png: bytes | None
    shown: Image.Image  # what the message shows: the grid, or the one image
    shown_png: bytes


def encode(result: Result) -> Encoded:
    pngs = [encode_png(im) for im in result.images]
    if not result.grid:
        return Encoded(pngs, None, result.images[0], pngs[0])
    if len(result.images) != GRID_IMAGES:
        raise GenerationFailed(f"The engine returned {len(result.images)} images instead of {GRID_IMAGES}.")
    grid = compose_grid(result.images)
    grid_png = encode_png(grid)
    return Encoded(pngs, grid_png, grid, grid_png)


@dataclass
class Context:
    """What a handler may use: the engine, the store, the settings."""

    engine: Engine
    store: JobStore
    settings: Settings

    def request(self, job: JobRecord, **changes: Any) -> Request:
        """The engine request for `job`: its size, steps and guidance for this model
        (shared/sampling.py, as the dry run shows them), its weighted parts, its flags."""
        spec, p = self.engine.spec, job.params
        width, height = size_for(p, spec)
        fields: dict[str, Any] = dict(
            seeds=tuple(job.seeds),
            width=width,
            height=height,
            negative_prompt=job.negative_prompt,
            steps=steps_for(p, spec) if p.steps is not None or p.quality is not None else None,
            guidance=guidance_for(p, spec) if p.guidance is not None or p.stylize is not None else None,
            loras=tuple(job.loras),
            tile=p.tile,
            stop=p.stop / 100 if p.stop is not None and p.stop < 100 else None,
            chaos=p.chaos or 0,
            weird=p.weird or 0,
        )
        fields.update(changes)
        prompts = tuple(WeightedPrompt(part.text, part.weight) for part in job.weighted_prompts())
        return Request(prompts=prompts, **fields)

    def source(self, job: JobRecord) -> Image.Image:
        """Image `job.index` of the job's parent, regenerated from its seeds when the
        stored copy has expired (deterministic on the same device)."""
        if not job.parent_id:
            raise InvalidRequest(f"This {job.kind} job names no parent job.")
        index = job.index or 1
        data = self.store.images.image(job.parent_id, index)
        if data is not None:
            return decode_image(data).convert("RGB")
        parent = self.store.get(job.parent_id)
        logger.info("images of %s expired; regenerating from seeds", parent.id)
        result = HANDLERS[parent.kind](self, parent, None)
        encoded = encode(result)
        self.store.images.put(parent.id, encoded.pngs, encoded.grid_png)
        if not 1 <= index <= len(result.images):
            raise InvalidRequest(f"Image {index} does not exist in that result; it has {len(result.images)}.")
        return result.images[index - 1]


Handler = Callable[[Context, JobRecord, ProgressFn | None], Result]


def imagine(ctx: Context, job: JobRecord, progress: ProgressFn | None) -> Result:
    """/imagine and 🔄: four images from the text, one seed each, the best four of more
    candidates where a ranker can tell (worker/best_of.py), and what the model understood
    of the prompt where the engine can say; with image prompts, image to image from them
    (their composition and colours), as strongly as --iw says."""
    if job.inputs:
        return image_prompt(ctx, job, progress)
    picked = best_of.sample_grid(
        ctx.engine, ctx.request(job), ctx.settings, job.params, job.kept_seeds, progress, job.candidates
    )
    record: dict[str, Any] = {
        "kept_seeds": picked.kept_seeds,
        "candidates": picked.candidates if picked.kept_seeds else 0,
    }
    understood = best_of.understanding(ctx.engine, job.prompt)
    if understood is not None:
        record.update(
            understood=understood.text,
            out_of_world=not understood.in_world,
            unread=list(understood.unread),
            drawn=understood.drawn,
        )
    content = messages.result(replace(job, **record))
    return Result(picked.images, grid=True, content=content, components=grid_components(job.id), record=record)


def variation(ctx: Context, job: JobRecord, progress: ProgressFn | None) -> Result:
    """V1–V4, Vary (Strong/Subtle): four images from one, at the job's strength."""
    source = ctx.source(job)
    strength = job.params.strength if job.params.strength is not None else ctx.settings.vary_strong
    req = ctx.request(job, width=source.width, height=source.height, init_images=(source,), strength=strength)
    images = ctx.engine.generate(req, progress)
    return Result(images, grid=True, content=messages.result(job), components=grid_components(job.id))


def upscale(ctx: Context, job: JobRecord, progress: ProgressFn | None) -> Result:
    """U1–U4, Upscale (Subtle/Creative): one image, twice the size."""
    source = ctx.source(job)
    strength = job.params.strength if job.params.strength is not None else ctx.settings.upscale_subtle
    req = ctx.request(
        job,
        seeds=tuple(job.seeds[:1]),
        width=source.width * UPSCALE_FACTOR,
        height=source.height * UPSCALE_FACTOR,
        init_images=(source,),
        strength=strength,
        upscale=UPSCALE_FACTOR,
    )
    [image] = ctx.engine.generate(req, progress)
    buttons = upscale_components(job.id, image.width, image.height)
    return Result([image], grid=False, content=messages.result(job), components=buttons)


EDIT_STRENGTH = 1.0  # the painted part starts from noise: the mask, not the strength, keeps the rest


def edit(ctx: Context, job: JobRecord, progress: ProgressFn | None) -> Result:
    """Vary (Region), Zoom Out, Pan, Make Square: the source on its new canvas,
    the mask over what is to be painted, four images (shared/canvas.py)."""
    if job.edit is None:
        raise InvalidRequest(f"This {job.kind} job says nothing about what to change.")
    source = ctx.source(job)
    canvas = edit_canvas(job.kind, source, job.edit, ctx.engine.spec.size_multiple)
    strength = job.params.strength if job.params.strength is not None else EDIT_STRENGTH
    req = ctx.request(
        job,
        width=canvas.image.width,
        height=canvas.image.height,
        init_images=(canvas.image,),
        mask=canvas.mask,
        strength=strength,
    )
    images = ctx.engine.generate(req, progress)
    return Result(images, grid=True, content=messages.result(job), components=grid_components(job.id))


# -- input images: image prompts, /blend, /describe (issue 19) ---------------------------
IW_STRENGTH_STEP = 0.25  # --iw 0 ignores the images (strength 1), 1 → 0.75, 2 → 0.5, 3 → 0.25
BLEND_STRENGTH = 0.7  # /blend starts from the inputs side by side and repaints most of it


def iw_strength(weight: float | None) -> float:
    return 1.0 - IW_STRENGTH_STEP * (IMAGE_WEIGHT if weight is None else weight)


def inputs(ctx: Context, job: JobRecord) -> list[Image.Image]:
    """The job's input images, as the bot stored them (Daydream's own PNGs)."""
    out = []
    for ref in job.inputs:
        data = ctx.store.images.input(ref.job or job.id, ref.name)
        if data is None:
            raise InvalidRequest(edit_messages.INPUT_EXPIRED)
        out.append(decode_image(data).convert("RGB"))
    return out


def _from_images(ctx: Context, job: JobRecord, images: list[Image.Image], strength: float, progress) -> Result:
    width, height = ctx.engine.spec.image_size(job.params.aspect)
    starts = tuple(blend_canvas(images, (width, height), turn=i) for i in range(len(job.seeds)))
    req = ctx.request(job, init_images=starts, strength=strength)
    images = ctx.engine.generate(req, progress)
    return Result(images, grid=True, content=messages.result(job), components=grid_components(job.id))


def image_prompt(ctx: Context, job: JobRecord, progress: ProgressFn | None) -> Result:
    """An /imagine with images: image to image from them, the text for the content."""
    return _from_images(ctx, job, inputs(ctx, job), iw_strength(job.params.image_weight), progress)


def blend(ctx: Context, job: JobRecord, progress: ProgressFn | None) -> Result:
    """/blend: the inputs' content and colours mixed, four ways."""
    images = inputs(ctx, job)
    strength = job.params.strength if job.params.strength is not None else BLEND_STRENGTH
    return _from_images(ctx, job, images, strength, progress)


def describe(ctx: Context, job: JobRecord, progress: ProgressFn | None) -> Result:
    """/describe: four prompts for the image, shown with it; buttons 1–4 imagine them."""
    describer = getattr(ctx.engine, "describe", None)
    if describer is None:
        raise Unsupported(ctx.engine.spec.name, edit_messages.cannot_describe(ctx.engine.spec.name))
    [image] = inputs(ctx, job)[:1]
    aspect = nearest_aspect(image.width, image.height)
    prompts = [f"{text} --ar {aspect}" if aspect != "1:1" else text for text in describer(image, list(job.seeds))]
    if progress is not None:
        progress(1.0, None)
    return Result(
        [image], grid=False, content=edit_messages.described(job, prompts), components=describe_components(job.id),
        prompts=prompts,
    )  # fmt: skip


HANDLERS: dict[str, Handler] = {
    JobKind.IMAGINE: imagine,
    JobKind.REROLL: imagine,
    JobKind.VARIATION: variation,
    JobKind.UPSCALE: upscale,
    JobKind.REGION: edit,
    JobKind.ZOOM: edit,
    JobKind.PAN: edit,
    JobKind.SQUARE: edit,
    JobKind.BLEND: blend,
    JobKind.DESCRIBE: describe,
}
