"""A worker's own figures: its sampling pace (steps per second of the last
job), images per minute (over the last ten minutes), GPU memory in use. They
go into the worker's heartbeat, which `/admin workers` and `daydream status`
read, and the worker's Prometheus endpoint exports the same heartbeat
(`figures`), so both views show one number."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import torch

from shared import metrics

IMAGES_WINDOW_S = 600.0  # images per minute: over the last ten minutes (or the uptime, if shorter)


class StepMeter:
    """Times one job's sampling steps: the progress callback marks each step.
    The first mark starts the clock, so the text encoder's time is not a step."""

    def __init__(self) -> None:
        self.steps = 0
        self._first: float | None = None
        self._last: float | None = None

    def step(self) -> None:
        now = time.perf_counter()
        if self._first is None:
            self._first = now
        self._last = now
        self.steps += 1

    @property
    def per_second(self) -> float | None:
        if self.steps < 2 or self._first is None or self._last is None or self._last <= self._first:
            return None
        return (self.steps - 1) / (self._last - self._first)


class Pace:
    """What a worker has done lately: the last job's steps per second, images per minute."""

    def __init__(self, started_at: float | None = None) -> None:
        self.started_at = time.time() if started_at is None else started_at
        self.steps_per_s: float | None = None
        self.steps_done = 0
        self._images: deque[tuple[float, int]] = deque()  # (finished at, images)
        self._lock = threading.Lock()  # the job thread writes, the heartbeat and scrapes read

    def job_done(self, model: str, images: int, meter: StepMeter) -> None:
        with self._lock:
            self._images.append((time.time(), images))
            self.steps_done += meter.steps
            if meter.per_second is not None:
                self.steps_per_s = meter.per_second
        metrics.IMAGES.labels(model).inc(images)
        metrics.SAMPLING_STEPS.labels(model).inc(meter.steps)

    def images_per_minute(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        with self._lock:
            while self._images and self._images[0][0] < now - IMAGES_WINDOW_S:
                self._images.popleft()
            made = sum(n for _, n in self._images)
        minutes = max(min(IMAGES_WINDOW_S, now - self.started_at), 1.0) / 60
        return made / minutes


def gpu_memory(device: str) -> dict[str, int] | None:
    """Bytes of GPU memory this process holds on `device` (None off CUDA):
    `allocated` by tensors, `reserved` by PyTorch's caching allocator."""
    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        return None
    return {"allocated": int(torch.cuda.memory_allocated(dev)), "reserved": int(torch.cuda.memory_reserved(dev))}


def figures(info: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, str], float]]:
    """The gauges of one worker, from its heartbeat (`WorkerRuntime.info()`)."""
    who = {"worker": str(info["name"]), "model": ",".join(info.get("models") or [str(info.get("model", ""))])}
    yield "daydream_worker_busy", "1 while the worker runs a job", who, 1.0 if info.get("current_job") else 0.0
    yield (
        "daydream_worker_images_per_minute", "Images per minute over the last ten minutes", who,
        float(info.get("images_per_minute") or 0.0),
    )  # fmt: skip
    if info.get("steps_per_s") is not None:
        yield "daydream_sampling_steps_per_second", "Sampling pace of the last job", who, float(info["steps_per_s"])
    yield "daydream_worker_capacity", "Jobs the worker runs at once", who, float(info.get("capacity", 1))
    memory = info.get("gpu_memory_bytes")
    if memory:
        for kind, value in memory.items():
            labels = {"device": str(info.get("device", "")), "kind": kind}
            yield "daydream_gpu_memory_bytes", "GPU memory this worker holds", labels, float(value)
