"""The job function RQ runs (`worker.jobs.run_job`, enqueued by name).

The job record in Redis is the source of truth; RQ only carries the id. A
job always ends in a final state with either its result or a clear error,
and the user is told either way."""

from __future__ import annotations

import io
import logging
import time

from PIL import Image

from shared.components import grid_components, upscale_components
from shared.errors import DaydreamError, GenerationFailed, InvalidRequest, JobNotFound
from shared.grid import compose_grid, decode_image, encode_for_upload, encode_png
from shared.job import JobKind, JobRecord, JobState
from shared.params import image_size
from worker import runtime
from worker.engines.base import GenerationCancelled, GenerationRequest, ProgressFn

logger = logging.getLogger(__name__)

PREVIEW_SIDE = 256  # progress previews are small: each edit re-uploads them
DEFAULT_VARIATION_STRENGTH = 0.75
DEFAULT_UPSCALE_STRENGTH = 0.25


def run_job(job_id: str, attempt: int = 0) -> str:
    rt = runtime.current()
    store = rt.store
    try:
        record = store.get(job_id)
    except JobNotFound:
        logger.warning("job %s has no record (expired?); nothing to do", job_id)
        return "missing"
    # 1. Skip what is already settled: a superseded attempt, a finished job.
    if record.attempts != attempt or record.state.finished:
        logger.info("job %s attempt %d is stale (state %s); skipping", job_id, attempt, record.state)
        return "stale"
    if store.cancel_requested(job_id):
        store.finish(job_id, JobState.CANCELLED, error="Cancelled before it started.")
        _tell_failure(rt, record, "cancelled before it started.")
        return "cancelled"
    record = store.mark_running(job_id, rt.name, model=rt.settings.model)  # what actually ran it
    rt.current_job = job_id
    try:
        # 2. Generate.
        images, grid = generate(rt, record, progress=_progress_reporter(rt, record))
        # 3. Store, where any worker on any host can read it.
        pngs = [encode_png(im) for im in images]
        grid_png = encode_png(grid) if grid is not None else None
        store.put_images(job_id, pngs, grid_png)
        shown = grid if grid is not None else images[0]
        record = store.update(job_id, images=len(images), width=images[0].width, height=images[0].height, progress=1.0)
        # 4. Deliver (idempotent: a retried job never posts twice), then finish.
        data, filename = encode_for_upload(shown, rt.settings.upload_limit_bytes, stem=f"daydream_{job_id[:8]}")
        components = upscale_components(job_id) if record.kind == JobKind.UPSCALE else grid_components(job_id)
        rt.delivery.result(record, data, filename, result_content(record), components)
        store.finish(job_id, JobState.DONE)
        return "done"
    except GenerationCancelled:
        store.finish(job_id, JobState.CANCELLED, error="Cancelled while running.")
        _tell_failure(rt, record, "cancelled.")
        return "cancelled"
    except DaydreamError as exc:
        logger.info("job %s failed: %s", job_id, exc)
        store.finish(job_id, JobState.FAILED, error=str(exc))
        _tell_failure(rt, record, str(exc))
        return "failed"
    except Exception as exc:
        logger.exception("job %s hit an unexpected error", job_id)
        text = (
            f"The worker hit an unexpected error ({type(exc).__name__}). Try again; if it keeps failing, tell an admin."
        )
        store.finish(job_id, JobState.FAILED, error=text)
        _tell_failure(rt, record, text)
        return "failed"
    finally:
        rt.current_job = None
        rt.jobs_done += 1
        try:
            store.heartbeat(rt.name, rt.info())  # `daydream status` shows the worker idle at once
        except Exception:
            logger.warning("could not refresh the heartbeat after job %s", job_id, exc_info=True)


def _tell_failure(rt: runtime.WorkerRuntime, record: JobRecord, text: str) -> None:
    try:
        rt.delivery.failure(record, text)
    except Exception:  # telling the user must never turn a handled failure into a crash
        logger.exception("could not tell the user that job %s failed", record.id)


def result_content(record: JobRecord) -> str:
    if record.kind == JobKind.UPSCALE:
        return f"{record.title} - Image #{record.index} {record.mention()}"
    if record.kind == JobKind.VARIATION:
        return f"{record.title} - Variations by {record.mention()}"
    return f"{record.title} - {record.mention()}"


def _progress_reporter(rt: runtime.WorkerRuntime, record: JobRecord) -> ProgressFn:
    store = rt.store
    last = {"stored": 0.0}

    def report(fraction: float, preview: Image.Image | None) -> None:
        # Cooperative cancel: a SimpleWorker cannot kill its own job.
        if store.cancel_requested(record.id):
            raise GenerationCancelled
        now = time.monotonic()
        if now - last["stored"] >= 0.2 or fraction >= 1.0:
            last["stored"] = now
            store.update(record.id, progress=round(fraction, 3))
        png = None
        if preview is not None and record.reply.interaction_token:
            small = preview.copy()
            small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
            buf = io.BytesIO()
            small.save(buf, format="PNG")
            png = buf.getvalue()
        rt.delivery.progress(record, fraction, png)

    return report


def _request(rt: runtime.WorkerRuntime, record: JobRecord, seeds: list[int]) -> GenerationRequest:
    engine = rt.engine
    tokens = engine.count_tokens(record.prompt)
    if tokens > engine.max_prompt_tokens:
        raise InvalidRequest(
            f"Your prompt is {tokens} tokens long; this model reads at most {engine.max_prompt_tokens}. "
            "Shorten it and try again."
        )
    width, height = image_size(record.params.aspect, engine.base_size, engine.size_multiple)
    return GenerationRequest(
        prompt=record.prompt,
        negative_prompt=record.negative_prompt,
        seeds=seeds,
        width=width,
        height=height,
        steps=record.params.steps,
        guidance=record.params.guidance,
    )


def source_image(rt: runtime.WorkerRuntime, parent_id: str, index: int) -> Image.Image:
    """Image `index` of a finished job, regenerated from its seeds when the
    stored copy has expired (deterministic on the same device)."""
    data = rt.store.get_image(parent_id, index)
    if data is not None:
        return decode_image(data).convert("RGB")
    parent = rt.store.get(parent_id)
    logger.info("images of %s expired; regenerating from seeds", parent_id)
    images, grid = generate(rt, parent, progress=None)
    rt.store.put_images(parent_id, [encode_png(im) for im in images], encode_png(grid) if grid else None)
    if not 1 <= index <= len(images):
        raise InvalidRequest(f"Image {index} does not exist in that result; it has {len(images)}.")
    return images[index - 1]


def generate(
    rt: runtime.WorkerRuntime, record: JobRecord, progress: ProgressFn | None
) -> tuple[list[Image.Image], Image.Image | None]:
    """The images of a job (and its grid, for four-image kinds)."""
    engine = rt.engine
    try:
        if record.kind in {JobKind.IMAGINE, JobKind.REROLL}:
            images = engine.txt2img(_request(rt, record, record.seeds), progress)
        elif record.kind == JobKind.VARIATION:
            source = source_image(rt, _parent(record), record.index or 1)
            strength = record.params.strength or DEFAULT_VARIATION_STRENGTH
            req = _request(rt, record, record.seeds)
            req = GenerationRequest(**{**req.__dict__, "width": source.width, "height": source.height})
            images = engine.img2img([source], req, strength, progress)
        elif record.kind == JobKind.UPSCALE:
            source = source_image(rt, _parent(record), record.index or 1)
            strength = record.params.strength or DEFAULT_UPSCALE_STRENGTH
            req = _request(rt, record, record.seeds[:1])
            return [engine.upscale(source, req, strength, progress)], None
        else:
            raise GenerationFailed(f"Unknown job kind {record.kind!r}.")
    except (DaydreamError, GenerationCancelled):
        raise
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise GenerationFailed(
                "The GPU ran out of memory for this size. Try a smaller --ar or fewer steps."
            ) from exc
        raise
    if len(images) != 4:
        raise GenerationFailed(f"The engine returned {len(images)} images instead of 4.")
    return images, compose_grid(images)


def _parent(record: JobRecord) -> str:
    if not record.parent_id:
        raise InvalidRequest(f"This {record.kind} job names no parent job.")
    return record.parent_id
