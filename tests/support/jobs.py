"""Job records, model specs and queue views for tests against the real redis-server."""

from __future__ import annotations

from typing import Any

from rq.job import Job
from rq.serializers import JSONSerializer

from shared.job import JobKind, JobRecord, new_job_id
from shared.models import EMBEDDED, ModelSpec, Task
from shared.params import Params
from shared.store import JobStore

# The embedded model's spec as its engine declares it (worker/engines/embedded.py),
# without loading torch: the bot's and the store's tests need only the data.
EMBEDDED_SPEC = ModelSpec(
    name=EMBEDDED,
    family=EMBEDDED,
    tasks=frozenset({Task.TEXT_TO_IMAGE, Task.IMAGE_TO_IMAGE, Task.UPSCALE, Task.INPAINT, Task.DESCRIBE}),
    max_prompt_tokens=32,
    base_size=64,
    size_multiple=16,
    default_steps=20,
    default_guidance=4.0,
)


def make_job(user: int | None = 42, **changes: Any) -> JobRecord:
    """An /imagine record for the embedded model."""
    fields: dict[str, Any] = dict(
        id=new_job_id(),
        kind=JobKind.IMAGINE,
        prompt="a red circle",
        params=Params(),
        seeds=[1, 2, 3, 4],
        user_id=user,
        model=EMBEDDED,
    )
    fields.update(changes)
    return JobRecord(**fields)


def announce_worker(
    store: JobStore, name: str = "w1", spec: ModelSpec = EMBEDDED_SPEC, tokenizer: str | None = None, **info: Any
) -> None:
    """What a live worker's heartbeat tells Redis (its TTL: 3 heartbeats)."""
    store.dispatch.announce(
        name, {"name": name, "device": "cpu", "current_job": None, "jobs_done": 0, **info}, [(spec, tokenizer)]
    )


def queued_rq_ids(store: JobStore, model: str = EMBEDDED, lane: str = "fast") -> list[str]:
    """The RQ job ids waiting on a (model, lane) queue, first to run first."""
    key = f"rq:queue:{store.dispatch.queue_name(model, lane)}"
    return [raw.decode() for raw in store.redis.lrange(key, 0, -1)]


def queued_rq_job(store: JobStore, rq_job_id: str) -> Job:
    """The RQ job as a worker will dequeue it (function name, arguments)."""
    return Job.fetch(rq_job_id, connection=store.redis, serializer=JSONSerializer)


def empty_queue(store: JobStore, model: str = EMBEDDED, lane: str = "fast") -> None:
    """Drop every waiting job of a queue, as a worker dequeuing them all would."""
    store.redis.delete(f"rq:queue:{store.dispatch.queue_name(model, lane)}")
