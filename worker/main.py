"""`daydream worker`: one process per GPU. Builds its runtime (the model
loaded once and warmed up), announces itself, then takes jobs in-process
from the queues of its model (an RQ SimpleWorker, shared/dispatch.py), and
closes the runtime when it stops."""

from __future__ import annotations

import logging
import threading

from shared.errors import DaydreamError
from shared.settings import Settings
from worker import runtime, sweeps

logger = logging.getLogger(__name__)


def _heartbeat_loop(rt: runtime.WorkerRuntime, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            rt.announce()
            sweeps.recover_orphans(rt.store, rt.delivery.failure)
            sweeps.expire_stale(rt.store, rt.delivery.failure)
        except DaydreamError as exc:
            logger.warning("heartbeat/sweep failed (%s); retrying in %s s", exc, rt.settings.worker_heartbeat_s)
        except Exception:
            logger.exception("heartbeat/sweep failed; retrying in %s s", rt.settings.worker_heartbeat_s)
        stop.wait(rt.settings.worker_heartbeat_s)


def run_worker(settings: Settings, device: str = "", burst: bool = False, name: str | None = None) -> None:
    rt = runtime.build(settings, device, name)
    runtime.install(rt)
    stop = threading.Event()
    rt.announce()
    beat = threading.Thread(target=_heartbeat_loop, args=(rt, stop), name="daydream-heartbeat", daemon=True)
    beat.start()
    worker = rt.store.dispatch.worker(rt.name, [rt.spec.name])
    logger.info("worker %s ready on queue %r", rt.name, rt.store.dispatch.queue_name(rt.spec.name))
    try:
        worker.work(burst=burst, with_scheduler=False)
    finally:
        stop.set()
        beat.join(timeout=rt.settings.worker_heartbeat_s + 5)
        rt.close()
        runtime.install(None)
        logger.info("worker %s stopped", rt.name)
