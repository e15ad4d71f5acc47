"""`daydream worker`: one process per GPU. Loads the model once, warms it up,
then takes jobs in-process (RQ SimpleWorker: no fork per job, so the model
stays resident and CUDA is never re-initialised in a child)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

import torch
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from shared.settings import Settings
from shared.store import JobStore
from worker import runtime, sweeps

logger = logging.getLogger(__name__)


class DaydreamWorker(SimpleWorker):
    """A SimpleWorker: the job runs in this process, next to the model."""


def _heartbeat_loop(rt: runtime.WorkerRuntime, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            rt.store.heartbeat(rt.name, rt.info())
            sweeps.recover_orphans(rt.store, rt.delivery.failure)
            sweeps.expire_stale(rt.store, rt.delivery.failure)
        except Exception:
            logger.exception("heartbeat/sweep failed; retrying in %s s", rt.settings.worker_heartbeat_s)
        stop.wait(rt.settings.worker_heartbeat_s)


def build_runtime(settings: Settings, device: str, name: str | None = None) -> runtime.WorkerRuntime:
    from worker.delivery import Delivery

    device = runtime.resolve_device(device or settings.device)
    if device == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    store = JobStore(settings)
    store.ping()
    logger.info("loading model %r on %s", settings.model, device)
    engine = runtime.load_engine(settings.model, device)
    seconds = runtime.warm_up(engine)
    logger.info("model warm in %.1f s", seconds)
    name = name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
    return runtime.WorkerRuntime(
        settings=settings, store=store, engine=engine, name=name, device=device, delivery=Delivery(settings, store)
    )


def run_worker(settings: Settings, device: str = "", burst: bool = False, name: str | None = None) -> None:
    rt = build_runtime(settings, device, name)
    runtime.install(rt)
    stop = threading.Event()
    rt.store.heartbeat(rt.name, rt.info())
    beat = threading.Thread(target=_heartbeat_loop, args=(rt, stop), name="daydream-heartbeat", daemon=True)
    beat.start()
    worker = DaydreamWorker([rt.store.queue], connection=rt.store.redis, serializer=JSONSerializer, name=rt.name)
    logger.info("worker %s ready on queue %r", rt.name, settings.queue_name)
    try:
        worker.work(burst=burst, with_scheduler=False)
    finally:
        stop.set()
        rt.store.worker_gone(rt.name)
        rt.delivery.close()
        logger.info("worker %s stopped", rt.name)
