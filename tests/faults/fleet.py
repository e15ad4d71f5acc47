"""Real processes to break: `daydream worker`s on the CPU with the embedded
model, against a real redis-server with the append-only file on, each
killed, frozen or stopped by pid, and the checks that nothing was lost or
done twice. The fault suite (tests/faults/) and benchmarks/faults.py share it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from daydream.redis_server import RedisServer
from shared import keys
from shared.dispatch import LANES
from shared.job import JobRecord, JobState
from shared.params import Params
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import make_job
from tests.support.workers import ROOT, wait_until, worker_env

WORKER_START_S = 240.0  # model load and warm-up on a busy 2-core machine


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Fleet:
    redis: RedisServer
    log_dir: Path
    heartbeat_s: int = 1  # the test suite's; benchmarks/faults.py runs the defaults
    env: dict[str, str] = field(default_factory=lambda: {"CPU_THREADS": "1"})  # two workers, two cores
    workers: dict[str, Worker] = field(default_factory=dict)
    starts: int = 0

    def __post_init__(self) -> None:
        self.settings = Settings(redis_url=self.redis.url, worker_heartbeat_s=self.heartbeat_s)
        self.store = JobStore(self.settings)

    # -- workers ---------------------------------------------------------------
    def start(self, name: str | None = None, *, wait: bool = True) -> Worker:
        self.starts += 1
        name = name or f"w{self.starts}"
        log = self.log_dir / f"{name}.log"
        env = worker_env(self.redis.url, WORKER_HEARTBEAT_S=str(self.heartbeat_s), **self.env)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "daydream", "worker", "--name", name, "--device", "cpu"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(name, proc, log)
        self.workers[name] = worker
        if wait:
            wait_until(lambda: self.announced(name), WORKER_START_S, f"worker {name} to announce itself", proc)
        return worker

    def announced(self, name: str) -> bool:
        return any(w["name"] == name for w in self.store.dispatch.live_workers())

    def signal(self, name: str, sig: int) -> None:
        os.kill(self.workers[name].pid, sig)

    def kill(self, name: str) -> None:
        """SIGKILL: no clean-up, as a crash or an OOM kill."""
        worker = self.workers[name]
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait()

    def stop_all(self) -> None:
        for worker in self.workers.values():
            if worker.alive:
                worker.proc.send_signal(signal.SIGCONT)  # a frozen one must hear the SIGTERM
                worker.proc.terminate()
        for worker in self.workers.values():
            try:
                worker.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()

    def holder(self, job_id: str) -> str | None:
        """The worker whose lease the job is under now."""
        lease = self.store.leases.get(job_id)
        return lease.worker if lease else None

    # -- jobs ------------------------------------------------------------------
    def submit(self, count: int, steps: int = 8, user: int | None = None) -> list[JobRecord]:
        jobs = []
        for n in range(count):
            job = make_job(user=user, prompt="a red circle on a blue background", params=Params(steps=steps, seed=n))
            jobs.append(self.store.submit(job))
        return jobs

    def wait_running(
        self, timeout: float = 120, at_least: float = 0.05, of: list[JobRecord] | None = None
    ) -> JobRecord | None:
        """A job some worker is sampling (its progress past `at_least`); with `of`,
        one of those jobs, or None once they have all finished."""

        def running() -> JobRecord | bool | None:
            for job_id in self.store.running_ids():
                job = self.store.find(job_id)
                if job and job.state == JobState.RUNNING and job.progress >= at_least:
                    return job
            if of is not None and all(self.store.get(j.id).finished for j in of):
                return True  # nothing left to catch
            return None

        found = wait_until(running, timeout, "a job to be running")
        return found if isinstance(found, JobRecord) else None

    def wait_all(self, jobs: list[JobRecord], timeout: float = 300) -> list[JobRecord]:
        deadline = time.monotonic() + timeout
        out = []
        for job in jobs:
            done = self.store.wait(job.id, timeout=max(1.0, deadline - time.monotonic()))
            if not done.finished:
                logs = "\n".join(f"--- {w.name}\n{w.tail()}" for w in self.workers.values())
                raise AssertionError(f"job {job.id} still {done.state} after {timeout} s\n{logs}")
            out.append(done)
        return out

    # -- the promise -----------------------------------------------------------
    def finishes(self, job_id: str) -> list[str]:
        """Every time the job was finished: the done signal gets one entry per finish."""
        return [raw.decode() for raw in self.store.redis.lrange(keys.done_signal(job_id), 0, -1)]

    def assert_each_exactly_once(self, jobs: list[JobRecord], state: JobState = JobState.DONE) -> None:
        """Each job ended once, in `state`, with its result if done; nothing left behind."""
        for job in jobs:
            record = self.store.get(job.id)
            assert record.state == state, (record.id, record.state, record.error)
            assert self.finishes(job.id) == [state.value], (job.id, self.finishes(job.id))
            if state == JobState.DONE:
                assert self.store.images.grid(job.id) is not None
        self.assert_nothing_left()

    def assert_nothing_left(self) -> None:
        store = self.store
        assert store.queued_before(time.time() + 3600) == [], "jobs left waiting"
        assert store.running_ids() == [], "jobs left running"
        assert store.redis.zcard(keys.LEASES) == 0, "leases left"
        queues = [store.dispatch.queue_name("embedded", lane) for lane in LANES] + [store.dispatch.legacy_queue_name]
        assert all(store.redis.llen(f"rq:queue:{q}") == 0 for q in queues), "RQ queues not empty"


def rq_ids_waiting(store: JobStore) -> list[str]:
    key = f"rq:queue:{store.dispatch.queue_name('embedded')}"
    return [raw.decode() for raw in store.redis.lrange(key, 0, -1)]


def take_and_die(redis_url: str, holder: str = "doomed") -> subprocess.CompletedProcess[str]:
    """A process that takes the next job off the queue, lease and all, through
    the workers' own pick, and dies before doing anything with it: the window
    between RQ's dequeue and "running" in which a worker can be killed."""
    code = (
        "import os, sys; from shared.settings import Settings; from shared.store import JobStore;"
        f"s = JobStore(Settings(redis_url={redis_url!r}, worker_heartbeat_s=1));"
        f"print(s.dispatch.take({holder!r}, ['embedded']), flush=True); os._exit(0)"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)


def measure(fn: Callable[[], object]) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0
