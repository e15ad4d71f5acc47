"""What admins and users are shown about the queue, as data: per (model,
lane) depths and who is waiting, each live worker's figures, a user's jobs
and usage. The bot's /admin and /info and the CLI's `daydream admin` and
`daydream info` read the same reports; shared/messages.py words them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from shared.job import LANES, JobRecord
from shared.store import JobStore
from shared.usage import Usage


@dataclass(frozen=True)
class QueueReport:
    waiting: dict[str, dict[str, int]]  # model → lane → jobs waiting
    by_user: dict[str, dict[str, int]]  # model → user → jobs waiting (every lane)
    running: int
    paused: set[str]
    workers: int

    @property
    def total(self) -> int:
        return sum(n for lanes in self.waiting.values() for n in lanes.values())


@dataclass(frozen=True)
class WorkerReport:
    name: str
    host: str
    device: str
    models: list[str]
    current_job: str | None
    jobs_done: int
    images_per_minute: float
    last_heartbeat_s: float  # seconds ago
    # Announced since the fleet's metrics (None from workers of earlier versions); the
    # worker's /metrics exports the same heartbeat.
    steps_per_s: float | None = None
    gpu_memory_bytes: int | None = None  # allocated by tensors on its GPU
    version: str | None = None
    capacity: int = 1
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class UserReport:
    jobs: list[JobRecord]
    usage: Usage
    default_lane: str | None
    limits: Any
    positions: dict[str, int | None] = field(default_factory=dict)


def queue_report(store: JobStore) -> QueueReport:
    models = store.dispatch.served_models() or sorted({_model_of_name(n) for n in store.dispatch.depths()})
    waiting: dict[str, dict[str, int]] = {}
    by_user: dict[str, dict[str, int]] = {}
    for model in models:
        waiting[model] = {lane: store.dispatch.depth(model, lane) for lane in LANES}
        users: dict[str, int] = {}
        for lane in LANES:
            for user, n in store.dispatch.scheduler.waiting_by_user(model, lane).items():
                users[user] = users.get(user, 0) + n
        by_user[model] = users
    return QueueReport(
        waiting=waiting,
        by_user=by_user,
        running=len(store.running_ids()),
        paused=store.policy.paused(),
        workers=len(store.dispatch.live_workers()),
    )


def workers_report(store: JobStore, now: float | None = None) -> list[WorkerReport]:
    return workers_report_of(store.dispatch.live_workers(), now)


def workers_report_of(heartbeats: list[dict[str, Any]], now: float | None = None) -> list[WorkerReport]:
    """The report of each heartbeat (`Dispatch.live_workers()`), as `daydream status` shows it too."""
    now = time.time() if now is None else now
    out = []
    for info in heartbeats:
        uptime_min = max(1e-9, (now - float(info.get("started_at") or now)) / 60)
        pace = info.get("images_per_minute")
        memory = info.get("gpu_memory_bytes") or {}
        out.append(
            WorkerReport(
                name=str(info.get("name")),
                host=str(info.get("host", "?")),
                device=str(info.get("device", "?")),
                models=list(info.get("models", [])),
                current_job=info.get("current_job"),
                jobs_done=int(info.get("jobs_done", 0)),
                images_per_minute=float(pace) if pace is not None else float(info.get("images_done", 0)) / uptime_min,
                last_heartbeat_s=max(0.0, now - float(info.get("heartbeat_at") or now)),
                steps_per_s=info.get("steps_per_s"),
                gpu_memory_bytes=memory.get("allocated") if isinstance(memory, dict) else None,
                version=info.get("version"),
                capacity=int(info.get("capacity", 1)),
                outcomes=dict(info.get("outcomes") or {}),
            )
        )
    return out


def user_report(store: JobStore, user_id: int, role_ids: frozenset[int] = frozenset()) -> UserReport:
    jobs = store.jobs_of(user_id)
    return UserReport(
        jobs=jobs,
        usage=store.usage.of(user_id),
        default_lane=store.policy.default_lane(user_id),
        limits=store.policy.limits_for(user_id, role_ids),
        positions={j.id: store.dispatch.position(j) for j in jobs if j.state == "queued"},
    )


def _model_of_name(queue_name: str) -> str:
    parts = queue_name.split(":")
    return parts[1] if len(parts) == 3 else queue_name
