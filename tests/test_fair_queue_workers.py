"""The fair queue with real worker processes: two `daydream worker`s running
the fake engine with a fixed cost per job (the image does not matter here,
the time a job holds a worker does), against the real redis-server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from daydream.redis_server import RedisServer
from shared.job import JobState
from shared.params import Params
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import make_job
from tests.support.workers import start_worker, stop_worker, wait_until

pytestmark = pytest.mark.slow

FAKE = "python:tests.support.fake_engine:TimedFakeEngine"


@pytest.fixture(scope="module")
def fleet() -> Iterator[JobStore]:
    with RedisServer() as server:
        procs: list[subprocess.Popen] = []
        try:
            for name in ("fair-1", "fair-2"):
                procs.append(start_worker(server.url, name, MODEL=FAKE, FAKE_ENGINE_JOB_S="0.3", CPU_THREADS="1"))
            yield JobStore(Settings(redis_url=server.url))
        finally:
            for proc in procs:
                stop_worker(proc)


def test_a_newcomer_waits_at_most_one_more_job_per_worker(fleet: JobStore) -> None:
    store = fleet
    backlog = [store.submit(make_job(user=1, prompt=f"a {i}")) for i in range(12)]
    wait_until(lambda: store.get(backlog[1].id).state != JobState.QUEUED, 30, "both workers busy")
    newcomer = store.submit(make_job(user=2, prompt="b"))
    done = store.wait(newcomer.id, timeout=60)
    assert done.state == JobState.DONE
    finished = [store.wait(j.id, timeout=60) for j in backlog]
    started_after = [j for j in finished if (j.started_at or 0) > (newcomer.created_at or 0)]
    started_between = [j for j in started_after if (j.started_at or 0) < (done.started_at or 0)]
    assert len(started_between) <= 2, [(j.prompt, j.started_at) for j in started_between]  # one per worker at most
    assert all(j.state == JobState.DONE for j in finished)


def test_a_running_job_stops_within_a_step_when_cancelled(fleet: JobStore) -> None:
    store = fleet
    job = store.submit(make_job(user=3, params=Params(steps=4)))
    wait_until(lambda: store.get(job.id).state == JobState.RUNNING, 30, "the job to start")
    assert store.cancel(job.id, canceller_id=3) is None  # running: its worker stops it
    ended = store.wait(job.id, timeout=30)
    assert ended.state == JobState.CANCELLED and ended.progress < 1.0  # stopped between steps, not at the end
