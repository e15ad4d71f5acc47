"""Nothing is lost: a worker killed mid-job (SIGKILL, no chance to clean up)
has its job re-queued by a live worker and finished there."""

from __future__ import annotations

import signal

import pytest

from daydream.redis_server import RedisServer
from shared.job import JobState
from shared.params import Params
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import make_job
from tests.support.workers import start_worker, stop_worker, wait_until

pytestmark = pytest.mark.slow


def test_job_of_a_killed_worker_is_finished_by_another():
    with RedisServer() as server:
        store = JobStore(Settings(redis_url=server.url))
        victim = start_worker(server.url, "victim")
        rescuer = None
        try:
            record = make_job(
                user=None,
                prompt="a green circle on a black background",
                params=Params(steps=40),  # long enough to be killed in the middle
            )
            store.submit(record)
            wait_until(lambda: store.get(record.id).progress > 0.05, 120, "the job to be half-way", victim)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            assert store.get(record.id).state == JobState.RUNNING  # as the dead worker left it
            rescuer = start_worker(server.url, "rescuer")
            done = store.wait(record.id, timeout=300)
            assert done.state == JobState.DONE, done.error
            assert done.worker == "rescuer"
            assert done.attempts == 1
            assert store.images.grid(record.id) is not None
        finally:
            stop_worker(victim)
            if rescuer is not None:
                stop_worker(rescuer)
