"""What a worker process keeps resident between jobs: the engine (model on its
device), the Redis store, the Discord delivery. Made once before the worker
takes jobs (`build`), handed to every job through `current()`, torn down in
one place (`close`), after arq's ctx: RQ has no context of its own to give a
job, so the worker process owns this one."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from PIL import Image

from shared import fleet, tokens
from shared.errors import ConfigError
from shared.models import ModelSpec
from shared.settings import Settings
from shared.store import JobStore
from worker.delivery import Delivery
from worker.engines import registry
from worker.engines.base import Engine
from worker.imagecheck import ImageCheck

logger = logging.getLogger(__name__)


def resolve_device(requested: str) -> str:
    """The torch device to load the model on; a device this machine lacks is a
    clear ConfigError before anything is loaded."""
    if requested in {"", "auto"}:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ConfigError(
            "DEVICE", f"--device {requested!r} is not a device torch knows; use cpu, cuda or cuda:N (or auto)."
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError("DEVICE", f"--device {requested} was asked for, but torch sees no CUDA GPU.")
        if device.index is not None and device.index >= count:
            raise ConfigError(
                "DEVICE", f"--device {requested}: torch sees {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}."
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("DEVICE", "--device mps was asked for, but this machine has no Apple GPU (MPS).")
    elif device.type not in {"cpu", "cuda", "mps"}:
        raise ConfigError("DEVICE", f"--device {requested}: Daydream runs on cpu, cuda or mps devices.")
    return requested


@dataclass
class WorkerRuntime:
    settings: Settings
    store: JobStore
    engine: Engine
    delivery: Delivery
    name: str
    device: str
    tokenizer: str | None = None  # the engine's tokenizer JSON, published with the spec
    started_at: float = field(default_factory=time.time)
    current_job: str | None = None
    jobs_done: int = 0
    images_done: int = 0
    # (job id, attempt) of jobs given up during a Redis outage: handed back once it is over.
    abandoned: set[tuple[str, int]] = field(default_factory=set)
    image_check: ImageCheck | None = None  # the NSFW classifier (IMAGE_CHECK); None: results are not scored

    @property
    def spec(self) -> ModelSpec:
        return self.engine.spec

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "device": self.device,
            "model": self.spec.name,
            "family": self.spec.family,
            "lanes": list(self.spec.lanes),
            "current_job": self.current_job,
            "jobs_done": self.jobs_done,
            "images_done": self.images_done,
            "model_loads": registry.loads(),
            "started_at": self.started_at,
        }

    def announce(self) -> None:
        """Heartbeat: alive, holding this model (`daydream status`, submit-time checks)."""
        self.store.dispatch.announce(self.name, self.info(), [(self.spec, self.tokenizer)])

    def close(self) -> None:
        try:
            self.store.dispatch.worker_gone(self.name)
        finally:
            self.delivery.close()


def build(settings: Settings, device: str, name: str | None = None, model: str | None = None) -> WorkerRuntime:
    """`model`: a name in the fleet file (default MODEL), loaded before anything else happens."""
    entry = fleet.resolve(settings, model)  # a bad fleet file fails here, before Redis or the device
    device = resolve_device(device or settings.device)
    if device == "cpu":
        torch.set_num_threads(settings.cpu_threads or max(1, os.cpu_count() or 1))
    store = JobStore(settings)
    store.ping()
    logger.info("loading model %r (%s) on %s", entry.name, entry.source, device)
    engine = registry.load_engine(entry, device, settings)
    seconds = registry.warm_up(engine)
    logger.info("model warm in %.1f s", seconds)
    image_check = None
    if settings.image_check:
        image_check = ImageCheck(threads=settings.cpu_threads or None)
        image_check.judge([Image.new("RGB", (64, 64))], 1.0)  # warm: the first call builds its kernels
    tokenizer = engine.tokenizer_json()
    if tokenizer is not None:
        engine.spec = replace(engine.spec, tokenizer=tokens.digest(tokenizer))
    return WorkerRuntime(
        settings=settings,
        store=store,
        engine=engine,
        delivery=Delivery(settings, store),
        name=name or f"{socket.gethostname()}.{os.getpid()}.{os.urandom(3).hex()}",
        device=device,
        tokenizer=tokenizer,
        image_check=image_check,
    )


_runtime: WorkerRuntime | None = None


def install(runtime: WorkerRuntime | None) -> None:
    global _runtime
    _runtime = runtime


def current() -> WorkerRuntime:
    if _runtime is None:
        raise RuntimeError("run_job called outside a Daydream worker (start one with `daydream worker`).")
    return _runtime
