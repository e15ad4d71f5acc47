"""The job function RQ runs (`worker.pipeline.run_job`, enqueued by name).

The job record in Redis is the source of truth; RQ only carries its id and
attempt. `run` is numbered steps, the same for every kind:

1. load the record, and skip what is settled (a superseded attempt, a
   finished or cancelled job);
2. check the inputs: what submit checked, now against this engine;
3. run the kind's handler (worker/handlers.py);
4. store the images where every worker on every host can read them;
5. deliver the result to Discord (idempotent: a retried job never posts twice);
6. finish.

Every write carries the attempt number (`Superseded` when the job was handed
to another worker meanwhile: this one then writes nothing more). A job always
ends in a final state with its result or a clear error, and the user is told
either way."""

from __future__ import annotations

import io
import logging
import time

from PIL import Image

from shared import messages
from shared.errors import DaydreamError, Superseded, Unsupported
from shared.grid import encode_for_upload
from shared.job import JobRecord, JobState
from shared.models import check_servable
from worker import runtime
from worker.engines.base import GenerationCancelled, PreviewFn, ProgressFn
from worker.handlers import HANDLERS, Context, encode

logger = logging.getLogger(__name__)

PREVIEW_SIDE = 256  # progress previews are small: each edit re-uploads them
PROGRESS_STORE_INTERVAL_S = 0.2  # how often the record's progress is written (`daydream imagine`'s bar)

# What run_job returns (RQ keeps it as the job's result for an hour).
DONE, FAILED, CANCELLED, STALE, MISSING = "done", "failed", "cancelled", "stale", "missing"


def run_job(job_id: str, attempt: int = 0) -> str:
    return run(runtime.current(), job_id, attempt)


def run(rt: runtime.WorkerRuntime, job_id: str, attempt: int) -> str:
    store = rt.store
    # 1. Load the record; skip what is settled.
    job = store.find(job_id)
    if job is None:
        logger.warning("job %s has no record (expired?); nothing to do", job_id)
        return MISSING
    if job.attempts != attempt or job.finished:
        logger.info("job %s attempt %d is stale (state %s); skipping", job_id, attempt, job.state)
        return STALE
    rt.current_job = job_id
    try:
        if store.cancel_requested(job_id):
            return _cancelled(rt, job, attempt, messages.CANCELLED_BEFORE_START)
        job = store.mark_running(job_id, rt.name, attempt=attempt)
        # 2. Check the inputs.
        handler = HANDLERS.get(job.kind)
        if handler is None:
            raise Unsupported(rt.spec.name, messages.unknown_kind(job.kind))
        check_servable(job, rt.spec, rt.engine.count_tokens)
        # 3. Run the kind's handler.
        result = handler(Context(rt.engine, store, rt.settings), job, _progress_reporter(rt, job, attempt))
        # 4. Store, where any worker on any host can read it.
        encoded = encode(result)
        first = result.images[0]
        job = store.store_result(
            job_id, attempt, encoded.pngs, encoded.grid_png,
            images=len(result.images), width=first.width, height=first.height, progress=1.0,
        )  # fmt: skip
        # 5. Deliver.
        limit = rt.settings.upload_limit_bytes
        data, filename = encode_for_upload(encoded.shown, limit, stem=messages.file_stem(job), png=encoded.shown_png)
        rt.delivery.result(job, data, filename, result.content, result.components)
        # 6. Finish.
        store.finish(job_id, JobState.DONE, attempt=attempt)
        return DONE
    except Superseded as exc:
        # Another worker holds the job now (this one lost its lease): stop writing.
        logger.warning("%s; this worker stops here", exc)
        return STALE
    except GenerationCancelled:
        return _cancelled(rt, job, attempt, messages.CANCELLED_WHILE_RUNNING)
    except DaydreamError as exc:
        logger.info("job %s failed: %s", job_id, exc)
        return _failed(rt, job, attempt, str(exc))
    except Exception as exc:
        if isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower():
            logger.warning("job %s ran out of memory: %s", job_id, exc)
            return _failed(rt, job, attempt, messages.OUT_OF_MEMORY)
        logger.exception("job %s hit an unexpected error", job_id)
        return _failed(rt, job, attempt, messages.unexpected_error(exc))
    finally:
        rt.current_job = None
        rt.jobs_done += 1
        try:
            rt.announce()  # `daydream status` shows the worker idle at once
        except DaydreamError:
            logger.warning("could not refresh the heartbeat after job %s", job_id, exc_info=True)


def _failed(rt: runtime.WorkerRuntime, job: JobRecord, attempt: int, text: str) -> str:
    return _end(rt, job, attempt, JobState.FAILED, text, told=text, outcome=FAILED)


def _cancelled(rt: runtime.WorkerRuntime, job: JobRecord, attempt: int, text: str) -> str:
    # The record says "Cancelled while running."; the message "… — failed: cancelled while running."
    return _end(rt, job, attempt, JobState.CANCELLED, text, told=text[0].lower() + text[1:], outcome=CANCELLED)


def _end(
    rt: runtime.WorkerRuntime, job: JobRecord, attempt: int, state: JobState, error: str, *, told: str, outcome: str
) -> str:
    """Finish the job as `state` and tell its user; STALE if this attempt is superseded."""
    try:
        rt.store.finish(job.id, state, attempt=attempt, error=error)
    except Superseded as exc:
        logger.warning("%s; not finishing it as %s", exc, state)
        return STALE
    try:
        rt.delivery.failure(job, told)
    except Exception:  # telling the user must never turn a handled failure into a crash
        logger.exception("could not tell the user that job %s ended %s", job.id, state)
    return outcome


def _progress_reporter(rt: runtime.WorkerRuntime, job: JobRecord, attempt: int) -> ProgressFn:
    store = rt.store
    last = {"stored": 0.0}

    def report(fraction: float, preview: PreviewFn | None) -> None:
        # Cooperative cancel: a SimpleWorker cannot kill its own job.
        if store.cancel_requested(job.id):
            raise GenerationCancelled
        now = time.monotonic()
        if now - last["stored"] >= PROGRESS_STORE_INTERVAL_S or fraction >= 1.0:
            last["stored"] = now
            store.update(job.id, attempt=attempt, progress=round(fraction, 3))  # Superseded stops sampling
        png = None
        if preview is not None and job.reply.interaction_token:
            png = lambda: _thumbnail_png(preview())  # noqa: E731 - made only when an edit is due
        rt.delivery.progress(job, fraction, png)

    return report


def _thumbnail_png(image: Image.Image | None) -> bytes | None:
    if image is None:
        return None
    small = image.copy()
    small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    buf = io.BytesIO()
    small.save(buf, format="PNG")
    return buf.getvalue()
