"""What a worker process keeps resident between jobs: the engine (model on
its device), the Redis store, the Discord delivery. Built once before
`work()`; `run_job` reads it from here."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field

import torch

from shared.errors import ModelUnavailable
from shared.settings import Settings
from shared.store import JobStore
from worker.engines.base import Engine, GenerationRequest

logger = logging.getLogger(__name__)


def resolve_device(requested: str) -> str:
    if requested in {"", "auto"}:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {requested} was asked for, but torch sees no CUDA GPU.")
    return requested


def load_engine(model: str, device: str) -> Engine:
    if model in {"", "embedded"}:
        from worker.engines.embedded import EmbeddedEngine

        return EmbeddedEngine(device=device)
    from worker.engines.diffusers_engine import DiffusersEngine

    try:
        return DiffusersEngine(model, device=device)
    except (OSError, ValueError) as exc:
        # diffusers' own text (no such folder, no model_index.json, not in the
        # offline cache, not a pipeline it knows), prefixed with what to set.
        reason = " ".join(str(exc).split())
        raise ModelUnavailable(
            f"MODEL={model!r} could not be loaded: {reason} "
            "MODEL takes 'embedded', a diffusers model folder (with model_index.json) or a Hugging Face hub id "
            "(with HF_HUB_OFFLINE=1, one already in the cache)."
        ) from exc


def warm_up(engine: Engine) -> float:
    """One short sampling call so the first real job doesn't pay for lazy
    initialisation (kernels, allocator, caches)."""
    t0 = time.perf_counter()
    size = engine.base_size
    engine.txt2img(GenerationRequest(prompt="warm up", seeds=[0, 1, 2, 3], width=size, height=size, steps=2))
    return time.perf_counter() - t0


@dataclass
class WorkerRuntime:
    settings: Settings
    store: JobStore
    engine: Engine
    name: str
    device: str
    delivery: object  # worker.delivery.Delivery; typed loosely to keep imports light
    started_at: float = field(default_factory=time.time)
    current_job: str | None = None
    jobs_done: int = 0
    model_loads: int = 1

    def info(self) -> dict[str, object]:
        return {
            "name": self.name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "device": self.device,
            "model": self.settings.model,
            "current_job": self.current_job,
            "jobs_done": self.jobs_done,
            "model_loads": self.model_loads,
            "started_at": self.started_at,
        }


_runtime: WorkerRuntime | None = None


def install(runtime: WorkerRuntime) -> None:
    global _runtime
    _runtime = runtime


def current() -> WorkerRuntime:
    if _runtime is None:
        raise RuntimeError("run_job called outside a Daydream worker (start one with `daydream worker`).")
    return _runtime
