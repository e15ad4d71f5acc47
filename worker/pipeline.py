"""The job function RQ runs (`worker.pipeline.run_job`, enqueued by name).

The job record in Redis is the source of truth; RQ only carries its id and
attempt. `run` is numbered steps, the same for every kind:

1. load the record, and skip what is settled (a superseded attempt, a
   finished or cancelled job);
2. check the inputs: what submit checked, now against this engine;
3. run the kind's handler (worker/handlers.py), then the moderation policy
   (worker/moderation.py: the image check, spoilers);
4. store the images where every worker on every host can read them;
5. deliver the result to Discord (idempotent: a retried job never posts twice);
6. finish.

Every write carries the attempt number (`Superseded` when the job was handed
to another worker meanwhile: this one then writes, posts and edits nothing
more). A Redis outage is ridden out: each step that must reach Redis retries
until `OUTAGE_DEADLINE_S`; past it the job is left to the lease's recovery. A
job always ends in a final state with its result or a clear error, and the
user is told either way."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from PIL import Image

from shared import messages
from shared.errors import DaydreamError, DeliveryFailed, QueueUnavailable, Superseded, Unsupported
from shared.grid import encode_for_upload
from shared.job import JobRecord, JobState
from shared.models import check_servable
from worker import runtime
from worker.engines.base import GenerationCancelled, PreviewFn, ProgressFn
from worker.handlers import HANDLERS, Context, encode
from worker.metrics import StepMeter
from worker.moderation import check_result, upload_name

logger = logging.getLogger(__name__)

T = TypeVar("T")

PREVIEW_SIDE = 256  # progress previews are small: each edit re-uploads them
PROGRESS_STORE_INTERVAL_S = 0.2  # how often the record's progress is written (`daydream imagine`'s bar)
OUTAGE_DEADLINE_S = 300.0  # how long a step waits for Redis to come back
OUTAGE_BACKOFF_S = (0.5, 10.0)  # first and longest wait between tries

# What run_job returns (RQ keeps it as the job's result for an hour).
DONE, FAILED, CANCELLED, STALE, MISSING, OUTAGE = "done", "failed", "cancelled", "stale", "missing", "outage"


def run_job(job_id: str, attempt: int = 0) -> str:
    return run(runtime.current(), job_id, attempt)


def run(rt: runtime.WorkerRuntime, job_id: str, attempt: int) -> str:
    before = rt.jobs_done
    outcome = None
    try:
        outcome = _run(rt, job_id, attempt)
        return outcome
    finally:
        if outcome is not None:
            rt.outcomes[outcome] = rt.outcomes.get(outcome, 0) + 1
        if rt.jobs_done > before:  # it ran (not skipped as stale or missing)
            try:
                rt.announce()  # `daydream status` shows the worker idle, and the job counted, at once
            except DaydreamError:
                logger.warning("could not refresh the heartbeat after job %s", job_id, exc_info=True)


def _run(rt: runtime.WorkerRuntime, job_id: str, attempt: int) -> str:
    store = rt.store
    # 1. Load the record; skip what is settled.
    job = ride("reading the job", store.find, job_id)
    if job is None:
        logger.warning("job %s has no record (expired?); nothing to do", job_id)
        return MISSING
    if job.attempts != attempt or job.finished:
        logger.info("job %s attempt %d is stale (state %s); skipping", job_id, attempt, job.state)
        return STALE
    rt.current_job = job_id
    meter = StepMeter()
    try:
        if ride("checking for a cancel", store.cancel_requested, job_id):
            return _cancelled(rt, job, attempt, messages.CANCELLED_BEFORE_START)
        job = ride("starting the job", store.mark_running, job_id, rt.name, attempt=attempt)
        # 2. Check the inputs.
        handler = HANDLERS.get(job.kind)
        if handler is None:
            raise Unsupported(rt.spec.name, messages.unknown_kind(job.kind))
        check_servable(job, rt.spec, rt.engine.count_tokens)
        # 3. Run the kind's handler.
        result = handler(Context(rt.engine, store, rt.settings), job, _progress_reporter(rt, job, attempt, meter))
        # 3b. The moderation policy: the image check outside NSFW channels, spoilers (worker/moderation.py).
        checked = ride("checking the images", check_result, rt, job, result)
        result = checked.result
        # 4. Store, where any worker on any host can read it.
        encoded = encode(result)
        first = result.images[0]
        extra = {"described": result.prompts} if result.prompts else {}  # /describe's answer, for its buttons
        job = ride(
            "storing the result", store.store_result, job_id, attempt, encoded.pngs, encoded.grid_png,
            images=len(result.images), width=first.width, height=first.height, progress=1.0, **extra, **result.record,
        )  # fmt: skip
        # 5. Deliver.
        limit = rt.settings.upload_limit_bytes
        data, filename = encode_for_upload(encoded.shown, limit, stem=messages.file_stem(job), png=encoded.shown_png)
        filename = upload_name(filename, checked.policy)
        undelivered = None
        try:
            ride("delivering", rt.delivery.result, job, data, filename, result.content, result.components, attempt)
        except DeliveryFailed as exc:
            # The result exists: keep the job done, say why it is not in the channel,
            # and, unless Discord refused for good, keep the post for a later try.
            undelivered = str(exc)
            if exc.permanent:
                logger.warning("job %s is done but could not be delivered: %s", job_id, exc)
            else:
                wait = ride("keeping the post", store.redeliveries.defer, job_id, data, filename,
                            result.content, result.components)  # fmt: skip
                logger.warning("job %s is done but could not be delivered (%s); trying again in %.0f s",
                               job_id, exc, wait)  # fmt: skip
        # 6. Finish.
        ride("finishing", store.finish, job_id, JobState.DONE, attempt=attempt, undelivered=undelivered)
        rt.images_done += len(result.images)
        rt.pace.job_done(rt.spec.name, len(result.images), meter)
        return DONE
    except Superseded as exc:
        # Another worker holds the job now (this one lost its lease): stop writing.
        logger.warning("%s; this worker stops here", exc)
        return STALE
    except QueueUnavailable:
        # Redis stayed away past the deadline: nothing can be written. Once it is
        # back, this worker hands the job back (or its lease lapses elsewhere).
        logger.error("job %s: Redis unavailable for %.0f s; leaving it to be re-queued", job_id, OUTAGE_DEADLINE_S)
        rt.abandoned.add((job_id, attempt))
        return OUTAGE
    except GenerationCancelled:
        return _cancelled(rt, job, attempt, messages.CANCELLED_WHILE_RUNNING)
    except DaydreamError as exc:
        logger.info("job %s failed: %s", job_id, exc)
        return _failed(rt, job, attempt, str(exc))
    except (SystemExit, KeyboardInterrupt):
        # A cold stop mid-job (a second SIGTERM): hand the job back at once.
        hand_back(rt, job_id, attempt, "its worker was stopped")
        raise
    except Exception as exc:
        if isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower():
            logger.warning("job %s ran out of memory: %s", job_id, exc)
            return _failed(rt, job, attempt, messages.OUT_OF_MEMORY)
        logger.exception("job %s hit an unexpected error", job_id)
        return _failed(rt, job, attempt, messages.unexpected_error(exc))
    finally:
        rt.current_job = None
        rt.jobs_done += 1


def ride(what: str, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """`fn(...)`, retried while Redis is unavailable, up to OUTAGE_DEADLINE_S."""
    deadline = time.monotonic() + OUTAGE_DEADLINE_S
    delay = OUTAGE_BACKOFF_S[0]
    while True:
        try:
            return fn(*args, **kwargs)
        except QueueUnavailable:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("Redis unavailable while %s; retrying in %.1f s", what, delay)
            time.sleep(delay)
            delay = min(delay * 2, OUTAGE_BACKOFF_S[1])


def hand_back(rt: runtime.WorkerRuntime, job_id: str, attempt: int, reason: str) -> bool:
    """Put a job this worker holds back on its queue now (if it still holds it)."""
    try:
        job = rt.store.find(job_id)
        if job is None or job.finished or job.attempts != attempt:
            return False
        rt.store.requeue(job, reason=reason)
        return True
    except DaydreamError as exc:
        logger.warning("could not hand job %s back (%s); its lease will lapse", job_id, exc)
        return False


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
        ride("finishing", rt.store.finish, job.id, state, attempt=attempt, error=error)
    except Superseded as exc:
        logger.warning("%s; not finishing it as %s", exc, state)
        return STALE
    except QueueUnavailable:
        rt.abandoned.add((job.id, attempt))
        return OUTAGE
    try:
        rt.delivery.failure(job, told)
    except Exception:  # telling the user must never turn a handled failure into a crash
        logger.exception("could not tell the user that job %s ended %s", job.id, state)
    return outcome


def _progress_reporter(rt: runtime.WorkerRuntime, job: JobRecord, attempt: int, meter: StepMeter) -> ProgressFn:
    store = rt.store
    last = {"stored": 0.0}

    def report(fraction: float, preview: PreviewFn | None) -> None:
        meter.step()  # engines report once per sampling step
        try:
            # Cooperative cancel: a SimpleWorker cannot kill its own job.
            if store.cancel_requested(job.id):
                raise GenerationCancelled
            now = time.monotonic()
            if now - last["stored"] >= PROGRESS_STORE_INTERVAL_S or fraction >= 1.0:
                last["stored"] = now
                store.update(job.id, attempt=attempt, progress=round(fraction, 3))  # Superseded stops sampling
            if not rt.delivery.progress_due(job):
                return
            current = store.find(job.id)
            if current is None or current.attempts != attempt:
                raise Superseded(job.id, attempt, current.attempts if current else None)
        except QueueUnavailable:
            return  # progress is cosmetic: sampling goes on through a Redis blip
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
