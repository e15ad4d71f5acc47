"""Dispatch: which queue a job goes to, and who is there to run it. The only
module that uses RQ.

* A job goes to the RQ queue of its (model, lane): `<DAYDREAM_QUEUE>:<model>:<lane>`,
  and into the fair index beside it (shared/scheduler.py), which decides
  which waiting job a free worker takes next: lanes in priority order (turbo,
  fast, relax), follow-ups before new grids, users served in turn.
* Workers listen on the queues of the models they hold, plus the single
  queue of earlier versions (`<DAYDREAM_QUEUE>`) until it has drained.
* Each worker announces itself with a heartbeat (a TTL'd key) and the
  ModelSpec of its model, with the model's tokenizer, so the bot can refuse at
  submit a job that no live worker can serve.
* A job's place in line comes from the fair index: the jobs of faster lanes,
  then the turns of other users before it (it knows its RQ id:
  `<job id>-<attempt>`).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import WorkerStatus

from shared import keys, record, tokens
from shared.connection import connect, redis_errors
from shared.errors import NoWorkerAlive, QueueUnavailable
from shared.job import DEFAULT_LANE, LANES, JobRecord
from shared.leases import Leases
from shared.models import ModelSpec, model_name, spec_from_dict
from shared.scheduler import Scheduler
from shared.settings import Settings

logger = logging.getLogger(__name__)

RQ_RESULT_TTL_S = 3600  # RQ's own result of run_job ("done", "failed" …); Daydream's record is the truth
RQ_FAILURE_TTL_S = 7 * 24 * 3600
TOKENIZER_TTL_S = 7 * 24 * 3600  # refreshed with every heartbeat of a worker that holds it
KNOWN_SPEC_TTL_S = 30 * 24 * 3600  # a model not served for a month is forgotten by --dry-run
BELL_KEEP = 100  # wake-up tokens kept per model (each wakes one idle worker)
IDLE_WAIT_S = 5  # an idle worker re-checks its queues at least this often
OUTAGE_BACKOFF_S = (0.5, 10.0)  # first and longest wait between tries while Redis is down


def rq_id(job: JobRecord) -> str:
    """The RQ job id of the current attempt: each attempt is its own RQ job."""
    return f"{job.id}-{job.attempts}"


@redis_errors
class Dispatch:
    def __init__(self, conn: redis.Redis, settings: Settings, leases: Leases) -> None:
        self._redis = conn
        self.settings = settings
        self.leases = leases
        self._queues: dict[str, Queue] = {}
        self.scheduler = Scheduler(
            conn, lambda model, lane: self._queue(self.queue_name(model, lane)).key, Queue.redis_queue_namespace_prefix
        )
        self._published: set[str] = set()  # tokenizers this process has written (each a few hundred kB)
        self.last_taken: tuple[str, float] | None = None  # (job id, monotonic time) of this process's last pick

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

    def enqueue(self, job: JobRecord, *, at_front: bool = False) -> None:
        """Onto the job's (model, lane) queue and into the fair index, and ring that
        model's bell: one round trip."""
        pipe = self._redis.pipeline()
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
            pipeline=pipe,
        )
        self.scheduler.index(pipe, job, rq_id(job), at_front=at_front)
        pipe.lpush(keys.bell(job.model), 1)
        pipe.ltrim(keys.bell(job.model), 0, BELL_KEEP - 1)
        pipe.execute()

    def worker_queue_names(self, models: list[str], lanes: tuple[str, ...] = ()) -> list[str]:
        """The queues a worker holding `models` takes from (in `lanes`; empty: every lane),
        in the order it serves them."""
        served = [lane for lane in LANES if not lanes or lane in lanes]
        return [self.queue_name(m, lane) for lane in served for m in models] + [self.legacy_queue_name]

    def take(self, worker: str, models: list[str], lanes: tuple[str, ...] = ()) -> tuple[str, str] | None:
        """Pick the next job for `worker` and lease it: (queue name, RQ job id), or None."""
        picked = self.scheduler.pick(
            worker,
            models,
            [self._queue(self.legacy_queue_name).key],
            lease_ttl_s=self.leases.ttl_s,
            default_running_cap=self.settings.max_running_per_user,
            lanes=lanes,
        )
        if picked is None:
            return None
        self.last_taken = (picked.rq_id.rsplit("-", 1)[0], time.monotonic())
        return picked.queue, picked.rq_id

    def recently_taken(self) -> set[str]:
        """The job this process took last, while its lease from the pick still runs:
        between the pick and the pipeline marking it current, the heartbeat renews it."""
        if self.last_taken is None:
            return set()
        job_id, at = self.last_taken
        return {job_id} if time.monotonic() - at < self.leases.ttl_s else set()

    def wait_for_work(self, models: list[str], timeout: float) -> None:
        """Block until a job is enqueued for one of `models` (or `timeout` passes)."""
        self._redis.blpop([keys.bell(m) for m in models], timeout=max(1, round(timeout)))

    def withdraw(self, job: JobRecord) -> bool:
        """Take the job's current attempt off its queue (cancel, expiry). True if it was there."""
        with self._redis.pipeline(transaction=False) as pipe:
            for name in (self.queue_name(job.model, job.lane), self.legacy_queue_name):
                pipe.lrem(self._queue(name).key, 0, rq_id(job))
            self.scheduler.unindex(pipe, job, rq_id(job))
            removed = pipe.execute()
        return bool(removed[0] or removed[1])

    def position(self, job: JobRecord) -> int | None:
        """1-based place in line, or None when the job is not waiting."""
        place = self.scheduler.position(job, rq_id(job))
        if place is not None:
            return place
        # Queued by a version without the fair index: in RQ's lists only.
        for name in (self.queue_name(job.model, job.lane), self.legacy_queue_name):
            index = self._redis.lpos(self._queue(name).key, rq_id(job))
            if index is not None:
                ahead = self.depth(job.model) if name == self.legacy_queue_name else 0
                return ahead + index + 1
        return None

    def next_position(self, job: JobRecord) -> int:
        """Where `job` would wait if submitted now: shown before it is enqueued, so
        the waiting line is on screen before any worker can replace it."""
        return self.scheduler.next_position(job)

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
    def worker(
        self, holder: str, models: list[str], rq_name: str | None = None, lanes: tuple[str, ...] = ()
    ) -> DaydreamWorker:
        """The RQ worker for the process `holder` (the name its leases and heartbeat
        carry) holding `models` (see DaydreamWorker). `rq_name`: RQ's name for it,
        new each time the process starts a work loop again after a Redis outage.
        It gets a connection of its own: RQ stretches its socket timeout to the
        length of its blocking dequeue, which the store's calls must not inherit."""
        conn = connect(self.settings.redis_url)
        names = self.worker_queue_names(models, lanes)
        queues = [Queue(n, connection=conn, serializer=JSONSerializer) for n in names]
        return DaydreamWorker(
            queues,
            connection=conn,
            serializer=JSONSerializer,
            name=rq_name or holder,
            dispatch=self,
            holder=holder,
            models=models,
            lanes=lanes,
        )

    def announce(self, name: str, info: dict[str, Any], specs: list[tuple[ModelSpec, str | None]]) -> None:
        """Heartbeat: this worker is alive and holds these models (spec, tokenizer JSON)."""
        ttl = max(3 * self.settings.worker_heartbeat_s, 3)
        payload = {**info, "models": [spec.name for spec, _ in specs], "heartbeat_at": time.time()}
        with self._redis.pipeline() as pipe:
            pipe.sadd(keys.WORKERS, name)
            pipe.set(keys.worker_heartbeat(name), json.dumps(payload), ex=ttl)
            for spec, _tokenizer in specs:
                pipe.set(keys.model_spec(spec.name), json.dumps(record.dump(spec)), ex=ttl)
                pipe.set(keys.model_spec_known(spec.name), json.dumps(record.dump(spec)), ex=KNOWN_SPEC_TTL_S)
                if spec.tokenizer:
                    pipe.expire(keys.tokenizer(spec.tokenizer), TOKENIZER_TTL_S)
            results = pipe.execute()
        # The tokenizer itself is sent once per process, and again only if Redis lost it.
        kept = iter(results[2:])
        for spec, tokenizer in specs:
            next(kept), next(kept)  # the spec's SETs (live and last known)
            if not spec.tokenizer:
                continue
            still_there = next(kept)
            if tokenizer is not None and (spec.tokenizer not in self._published or not still_there):
                self._redis.set(keys.tokenizer(spec.tokenizer), tokenizer, ex=TOKENIZER_TTL_S)
                self._published.add(spec.tokenizer)

    def worker_gone(self, name: str) -> None:
        with self._redis.pipeline() as pipe:
            pipe.delete(keys.worker_heartbeat(name))
            pipe.srem(keys.WORKERS, name)
            pipe.execute()

    def live_workers(self, model: str | None = None) -> list[dict[str, Any]]:
        """The heartbeats of live workers (holding `model`, when given), by name."""
        names = sorted(n.decode() for n in self._redis.smembers(keys.WORKERS))
        return [info for info in self._heartbeats(names) if model is None or model in info["models"]]

    def _heartbeats(self, names: list[str]) -> list[dict[str, Any]]:
        if not names:
            return []
        out = []
        for raw in self._redis.mget([keys.worker_heartbeat(n) for n in names]):
            if raw is None:
                continue  # heartbeat expired: dead or stopped
            info = json.loads(raw)
            # Workers of earlier versions name their MODEL source, not a list of names.
            info.setdefault("models", [model_name(str(info.get("model", "")))])
            out.append(info)
        return out

    def served_models(self) -> list[str]:
        return sorted({m for info in self.live_workers() for m in info["models"]})

    def require(self, model: str) -> ModelSpec | None:
        """The spec of `model` if a live worker holds it (None when that worker is
        of a version that announces none); NoWorkerAlive otherwise. Two round
        trips: it runs on every submit."""
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.smembers(keys.WORKERS)
            pipe.get(keys.model_spec(model))
            names, raw_spec = pipe.execute()
        workers = self._heartbeats(sorted(n.decode() for n in names))
        if not any(model in info["models"] for info in workers):
            if model in self.settings.autoscaled_models:
                # Its workers scale from zero on its queue's length (KEDA): the job waits for one,
                # checked against the model's spec if a worker announced one lately, by the worker if not.
                return spec_from_dict(json.loads(raw_spec)) if raw_spec is not None else None
            served = {m for info in workers for m in info["models"]} | self.settings.autoscaled_models
            raise NoWorkerAlive(model, sorted(served))
        return spec_from_dict(json.loads(raw_spec)) if raw_spec is not None else None

    def spec(self, model: str) -> ModelSpec | None:
        """What the live workers of `model` announce it can do (None: none announced)."""
        raw = self._redis.get(keys.model_spec(model))
        return spec_from_dict(json.loads(raw)) if raw is not None else None

    def known_spec(self, model: str) -> ModelSpec | None:
        """The live spec of `model`, or else the last one its workers announced (kept
        KNOWN_SPEC_TTL_S): what `--dry-run` resolves sizes and steps with while no worker runs."""
        live, known = self._redis.mget([keys.model_spec(model), keys.model_spec_known(model)])
        raw = live if live is not None else known
        return spec_from_dict(json.loads(raw)) if raw is not None else None

    def served_specs(self) -> dict[str, ModelSpec | None]:
        """Each model a live worker holds, with the spec its workers announce (None: an older worker's)."""
        names = self.served_models()
        raws = self._redis.mget([keys.model_spec(n) for n in names]) if names else []
        return {n: spec_from_dict(json.loads(raw)) if raw else None for n, raw in zip(names, raws, strict=True)}

    def token_counter(self, spec: ModelSpec) -> tokens.Counter | None:
        def fetch(digest: str) -> str | None:
            raw = self._redis.get(keys.tokenizer(digest))
            return raw.decode() if raw is not None else None

        return tokens.counter(spec.tokenizer, fetch)


class DaydreamWorker(SimpleWorker):
    """RQ's SimpleWorker (no fork per job: the model stays resident and CUDA is
    never re-initialised) with Daydream's pick: the next job and its lease in
    one atomic step (`Dispatch.take`), woken by the model's bell instead of a
    BLPOP on the queues. RQ still runs the job and keeps its registries."""

    def __init__(
        self, *args: Any, dispatch: Dispatch, holder: str, models: list[str], lanes: tuple[str, ...] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.dispatch = dispatch
        self.holder = holder
        self.models = models
        self.lanes = lanes
        self.stop_requested_by_signal = False

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_requested_by_signal = True
        super().request_stop(signum, frame)

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        self.set_state(WorkerStatus.IDLE)
        self.procline("Listening on " + ",".join(self.queue_names()))
        started = time.monotonic()
        backoff = OUTAGE_BACKOFF_S[0]
        beat_at = -float("inf")
        while True:
            try:
                # RQ's own heartbeat (three round trips) at most every IDLE_WAIT_S, not
                # on every wake-up: a woken worker goes straight to the pick.
                if time.monotonic() - beat_at >= IDLE_WAIT_S:
                    self.heartbeat()
                    beat_at = time.monotonic()
                    if self.should_run_maintenance_tasks:
                        self.run_maintenance_tasks()
                picked = self.dispatch.take(self.holder, self.models, self.lanes)
                if picked is not None:
                    job_and_queue = self._fetch(*picked)
                    if job_and_queue is not None:
                        return job_and_queue  # RQ's work loop beats after the job
                    continue
                if timeout is None or self._stop_requested:
                    return None  # burst mode: the queues are empty
                waited = time.monotonic() - started
                if max_idle_time is not None and waited >= max_idle_time:
                    return None
                self.dispatch.wait_for_work(self.models, min(IDLE_WAIT_S, timeout))
                backoff = OUTAGE_BACKOFF_S[0]
            except (redis.ConnectionError, redis.TimeoutError, QueueUnavailable) as exc:
                # Ride through: the model stays loaded, the loop goes on when Redis is back.
                self.log.warning("Worker %s: Redis unavailable (%s); retrying in %.1f s", self.name, exc, backoff)
                if self._stop_requested:
                    return None
                time.sleep(backoff)
                backoff = min(backoff * 2, OUTAGE_BACKOFF_S[1])

    def _fetch(self, queue_name: str, rq_job_id: str) -> tuple[Job, Queue] | None:
        queue = next((q for q in self.queues if q.name == queue_name), None)
        try:
            job = self.job_class.fetch(rq_job_id, connection=self.connection, serializer=self.serializer)
        except NoSuchJobError:
            # RQ's own copy expired (its queued TTL passed): the expiry sweep ends the record.
            logger.info("job %s was picked but RQ no longer has it; skipping", rq_job_id)
            self.dispatch.leases.release(rq_job_id.rsplit("-", 1)[0])
            return None
        if queue is None:
            queue = Queue(queue_name, connection=self.connection, serializer=self.serializer)
        self.log.info("Worker %s: %s: %s", self.name, queue.name, job.id)
        return job, queue
