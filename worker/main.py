"""`daydream worker`: one process per GPU. Builds its runtime (the model
loaded once and warmed up), announces itself, then takes jobs in-process
from the queues of its model (shared/dispatch.py's DaydreamWorker), and
closes the runtime when it stops.

A Redis outage never ends the process: the heartbeat thread keeps trying, a
job in flight rides it out (worker/pipeline.py), and if RQ's work loop quits
on the error it is started again once Redis answers, with the model still
loaded. SIGTERM finishes the job in hand and stops; a second one hands the
job back to the queue at once."""

from __future__ import annotations

import logging
import threading
import time

from shared.errors import DaydreamError
from shared.settings import Settings
from worker import pipeline, runtime, sweeps

logger = logging.getLogger(__name__)

REDIS_WAIT_BACKOFF_S = (0.5, 10.0)  # first and longest wait between pings while Redis is down


def _heartbeat(rt: runtime.WorkerRuntime) -> None:
    """One beat: alive, leases renewed, jobs given up in an outage handed back, sweeps."""
    rt.announce()
    # Only what this process knows it holds: a lease it took without knowing (the
    # pick's answer lost in a Redis outage) lapses, and its job is handed on.
    holding = {j for j in (rt.current_job,) if j} | {j for j, _ in rt.abandoned} | rt.store.dispatch.recently_taken()
    rt.store.leases.renew(rt.name, only=holding)
    for job_id, attempt in list(rt.abandoned):
        pipeline.hand_back(rt, job_id, attempt, "Redis was unavailable while it ran")
        rt.abandoned.discard((job_id, attempt))
    sweeps.recover_lapsed(rt.store, rt.delivery.failure)
    sweeps.recover_orphans(rt.store, rt.delivery.failure)
    sweeps.expire_stale(rt.store, rt.delivery.failure)
    sweeps.update_waiting_lines(rt.store, rt.delivery.waiting_line)
    sweeps.redeliver_due(rt.store, rt.delivery.result)


def _heartbeat_loop(rt: runtime.WorkerRuntime, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            _heartbeat(rt)
        except DaydreamError as exc:
            logger.warning("heartbeat/sweep failed (%s); retrying in %s s", exc, rt.settings.worker_heartbeat_s)
        except Exception:
            logger.exception("heartbeat/sweep failed; retrying in %s s", rt.settings.worker_heartbeat_s)
        stop.wait(rt.settings.worker_heartbeat_s)


def _wait_for_redis(rt: runtime.WorkerRuntime) -> None:
    delay = REDIS_WAIT_BACKOFF_S[0]
    while True:
        try:
            rt.store.ping()
            return
        except DaydreamError:
            logger.warning("Redis is unavailable; the model stays loaded; trying again in %.1f s", delay)
            time.sleep(delay)
            delay = min(delay * 2, REDIS_WAIT_BACKOFF_S[1])


def _serve(rt: runtime.WorkerRuntime, burst: bool) -> None:
    """RQ's work loop, started again each time it quits on an error rather than on request."""
    runs = 0
    while True:
        try:
            worker = rt.store.dispatch.worker(
                rt.name, [rt.spec.name], rq_name=f"{rt.name}.{runs}" if runs else rt.name, lanes=rt.spec.lanes
            )
        except DaydreamError as exc:  # RQ's Worker talks to Redis as it is made: started in an outage
            logger.warning("worker %s: cannot start its work loop yet (%s)", rt.name, exc)
            _wait_for_redis(rt)
            continue
        if runs == 0:
            logger.info("worker %s ready on queue %r", rt.name, rt.store.dispatch.queue_name(rt.spec.name))
        runs += 1
        try:
            worker.work(burst=burst, with_scheduler=False)
        except Exception:
            # RQ's teardown talks to Redis too; an outage ends up here.
            logger.warning("worker %s: the work loop ended on an error", rt.name, exc_info=True)
        if worker.stop_requested_by_signal or burst:
            return
        logger.warning("worker %s: the work loop quit (Redis?); starting it again once Redis answers", rt.name)
        _wait_for_redis(rt)


def run_worker(
    settings: Settings, device: str = "", burst: bool = False, name: str | None = None, model: str | None = None
) -> None:
    rt = runtime.build(settings, device, name, model)
    runtime.install(rt)
    stop = threading.Event()
    _wait_for_redis(rt)  # a worker started while Redis is down waits for it, model loaded
    try:
        rt.announce()
    except DaydreamError as exc:
        logger.warning("worker %s: could not announce itself yet (%s); its heartbeat will", rt.name, exc)
    beat = threading.Thread(target=_heartbeat_loop, args=(rt, stop), name="daydream-heartbeat", daemon=True)
    beat.start()
    try:
        _serve(rt, burst)
    finally:
        stop.set()
        beat.join(timeout=rt.settings.worker_heartbeat_s + 5)
        try:
            rt.close()
        except DaydreamError as exc:
            logger.warning("worker %s: could not say goodbye (%s); its heartbeat will expire", rt.name, exc)
        runtime.install(None)
        logger.info("worker %s stopped", rt.name)
