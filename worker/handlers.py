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

from shared import messages
from shared.components import grid_components, upscale_components
from shared.errors import GenerationFailed, InvalidRequest
from shared.grid import compose_grid, decode_image, encode_png
from shared.job import JobKind, JobRecord
from shared.settings import Settings
from shared.store import JobStore
from worker import best_of
from worker.engines.base import Engine, ProgressFn, Request

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
        """The engine request for `job` at its aspect ratio's size."""
        width, height = self.engine.spec.image_size(job.params.aspect)
        fields: dict[str, Any] = dict(
            seeds=tuple(job.seeds),
            width=width,
            height=height,
            negative_prompt=job.negative_prompt,
            steps=job.params.steps,
            guidance=job.params.guidance,
            loras=tuple(job.loras),
        )
        fields.update(changes)
        return Request.text(job.prompt, **fields)

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
    """/imagine and 🔄: four images from the text, one seed each; the best four
    of more candidates where a ranker can tell (worker/best_of.py), and what
    the model understood of the prompt where the engine can say."""
    picked = best_of.sample_grid(
        ctx.engine, ctx.request(job), ctx.settings, job.params, job.kept_seeds, progress, job.candidates
    )
    record: dict[str, Any] = {
        "kept_seeds": picked.kept_seeds,
        "candidates": picked.candidates if picked.kept_seeds else 0,
    }
    understood = best_of.understanding(ctx.engine, job.prompt)
    if understood is not None:
        record.update(understood=understood.text, out_of_world=not understood.in_world, unread=list(understood.unread))
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
    return Result([image], grid=False, content=messages.result(job), components=upscale_components(job.id))


HANDLERS: dict[str, Handler] = {
    JobKind.IMAGINE: imagine,
    JobKind.REROLL: imagine,
    JobKind.VARIATION: variation,
    JobKind.UPSCALE: upscale,
}
