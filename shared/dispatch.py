"""Dispatch: which queue a job goes to, and who is there to run it. The only
module that uses RQ.

* A job goes to the RQ queue of its (model, lane): `<DAYDREAM_QUEUE>:<model>:<lane>`.
  Lanes in priority order: turbo, fast, relax; a worker takes from the first
  non-empty one. (Fair picking inside a lane comes with the fair-queue work;
  this module is its seam.)
* Workers listen on the queues of the models they hold, plus the single
  queue of earlier versions (`<DAYDREAM_QUEUE>`) until it has drained.
* Each worker announces itself with a heartbeat (a TTL'd key) and the
  ModelSpec of its model, with the model's tokenizer, so the bot can refuse at
  submit a job that no live worker can serve.
* A job's place in line is read with `LPOS` on its own queue (it knows its RQ
  id: `<job id>-<attempt>`) plus the depth of the lanes ahead of it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from shared import keys, record, tokens
from shared.connection import redis_errors
from shared.errors import NoWorkerAlive
from shared.job import DEFAULT_LANE, JobRecord
from shared.models import ModelSpec, model_name, spec_from_dict
from shared.settings import Settings

logger = logging.getLogger(__name__)

LANES = ("turbo", "fast", "relax")  # priority order
RQ_RESULT_TTL_S = 3600  # RQ's own result of run_job ("done", "failed" …); Daydream's record is the truth
RQ_FAILURE_TTL_S = 7 * 24 * 3600
TOKENIZER_TTL_S = 7 * 24 * 3600  # refreshed with every heartbeat of a worker that holds it


def rq_id(job: JobRecord) -> str:
    """The RQ job id of the current attempt: each attempt is its own RQ job."""
    return f"{job.id}-{job.attempts}"


@redis_errors
class Dispatch:
    def __init__(self, conn: redis.Redis, settings: Settings) -> None:
        self._redis = conn
        self.settings = settings
        self._queues: dict[str, Queue] = {}

    # -- queues ------------------------------------------------------------
    def queue_name(self, model: str, lane: str = DEFAULT_LANE) -> str:
        return f"{self.settings.queue_name}:{model}:{lane}"

    @property
    def legacy_queue_name(self) -> str:
        """The one queue of versions before dispatch by model and lane."""
        return self.settings.queue_name

    def _queue(self, name: str) -> Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = Queue(name, connection=self._redis, serializer=JSONSerializer)
        return queue

    def _lanes_ahead(self, lane: str) -> tuple[str, ...]:
        """The lanes served before `lane`, and `lane` itself last."""
        order = LANES if lane in LANES else (*LANES, lane)
        return order[: order.index(lane) + 1]

    def enqueue(self, job: JobRecord, *, at_front: bool = False) -> None:
        self._queue(self.queue_name(job.model, job.lane)).enqueue_call(
            keys.JOB_FUNC,
            args=[job.id, job.attempts],
            job_id=rq_id(job),
            timeout=self.settings.job_timeout_s,
            ttl=self.settings.queued_job_ttl_s,
            result_ttl=RQ_RESULT_TTL_S,
            failure_ttl=RQ_FAILURE_TTL_S,
            at_front=at_front,
            description=f"{job.kind} {job.prompt[:60]}",
        )

    def withdraw(self, job: JobRecord) -> bool:
        """Take the job's current attempt off its queue (cancel, expiry). True if it was there."""
        removed = 0
        for name in (self.queue_name(job.model, job.lane), self.legacy_queue_name):
            removed += self._queue(name).remove(rq_id(job)) or 0
        return bool(removed)

    def position(self, job: JobRecord) -> int | None:
        """1-based place in line, or None when the job is not waiting."""
        own = self.queue_name(job.model, job.lane)
        index = self._redis.lpos(self._queue(own).key, rq_id(job))
        if index is None:
            index = self._redis.lpos(self._queue(self.legacy_queue_name).key, rq_id(job))
            if index is None:
                return None
            return self.depth(job.model) + index + 1
        ahead = sum(self._llen(self.queue_name(job.model, lane)) for lane in self._lanes_ahead(job.lane)[:-1])
        return ahead + index + 1

    def next_position(self, model: str, lane: str = DEFAULT_LANE) -> int:
        """Where a job submitted now would wait: shown before it is enqueued, so
        the waiting line is on screen before any worker can replace it."""
        return sum(self._llen(self.queue_name(model, ln)) for ln in self._lanes_ahead(lane)) + 1

    def depth(self, model: str | None = None, lane: str | None = None) -> int:
        """Jobs waiting for `model` (all models when None) in `lane` (all lanes when None)."""
        return sum(self.depths(model, lane).values())

    def depths(self, model: str | None = None, lane: str | None = None) -> dict[str, int]:
        """Waiting jobs per queue name, including the legacy queue."""
        models = [model] if model else self.served_models() or [model_name(self.settings.model)]
        names = [self.queue_name(m, ln) for m in models for ln in ([lane] if lane else LANES)]
        if model is None and lane is None:
            names.append(self.legacy_queue_name)
        return {name: self._llen(name) for name in names}

    def _llen(self, name: str) -> int:
        return int(self._redis.llen(self._queue(name).key))

    # -- workers -------------------------------------------------------------
    def worker(self, name: str, models: list[str]) -> SimpleWorker:
        """The RQ worker for a process holding `models`: a SimpleWorker (no fork
        per job: the model stays resident and CUDA is never re-initialised)."""
        names = [self.queue_name(m, lane) for lane in LANES for m in models] + [self.legacy_queue_name]
        return SimpleWorker(
            [self._queue(n) for n in names], connection=self._redis, serializer=JSONSerializer, name=name
        )

    def announce(self, name: str, info: dict[str, Any], specs: list[tuple[ModelSpec, str | None]]) -> None:
        """Heartbeat: this worker is alive and holds these models (spec, tokenizer JSON)."""
        ttl = max(3 * self.settings.worker_heartbeat_s, 3)
        payload = {**info, "models": [spec.name for spec, _ in specs], "heartbeat_at": time.time()}
        with self._redis.pipeline() as pipe:
            pipe.sadd(keys.WORKERS, name)
            pipe.set(keys.worker_heartbeat(name), json.dumps(payload), ex=ttl)
            for spec, tokenizer in specs:
                pipe.set(keys.model_spec(spec.name), json.dumps(record.dump(spec)), ex=ttl)
                if tokenizer is not None and spec.tokenizer:
                    pipe.set(keys.tokenizer(spec.tokenizer), tokenizer, nx=True, ex=TOKENIZER_TTL_S)
                    pipe.expire(keys.tokenizer(spec.tokenizer), TOKENIZER_TTL_S)
            pipe.execute()

    def worker_gone(self, name: str) -> None:
        with self._redis.pipeline() as pipe:
            pipe.delete(keys.worker_heartbeat(name))
            pipe.srem(keys.WORKERS, name)
            pipe.execute()

    def live_workers(self, model: str | None = None) -> list[dict[str, Any]]:
        """The heartbeats of live workers (holding `model`, when given), by name."""
        names = sorted(n.decode() for n in self._redis.smembers(keys.WORKERS))
        if not names:
            return []
        out = []
        for raw in self._redis.mget([keys.worker_heartbeat(n) for n in names]):
            if raw is None:
                continue  # heartbeat expired: dead or stopped
            info = json.loads(raw)
            # Workers of earlier versions name their MODEL source, not a list of names.
            info.setdefault("models", [model_name(str(info.get("model", "")))])
            if model is None or model in info["models"]:
                out.append(info)
        return out

    def served_models(self) -> list[str]:
        return sorted({m for info in self.live_workers() for m in info["models"]})

    def require(self, model: str) -> ModelSpec | None:
        """The spec of `model` if a live worker holds it (None when that worker is
        of a version that announces none); NoWorkerAlive otherwise."""
        if not self.live_workers(model):
            raise NoWorkerAlive(model, self.served_models())
        raw = self._redis.get(keys.model_spec(model))
        return spec_from_dict(json.loads(raw)) if raw is not None else None

    def token_counter(self, spec: ModelSpec) -> tokens.Counter | None:
        def fetch(digest: str) -> str | None:
            raw = self._redis.get(keys.tokenizer(digest))
            return raw.decode() if raw is not None else None

        return tokens.counter(spec.tokenizer, fetch)
