"""Nothing lost, nothing done twice, with real processes: workers SIGKILLed
mid-job and in the window between dequeue and "running", frozen (SIGSTOP)
and resumed, stopped with SIGTERM once and twice; redis-server SIGKILLed and
restarted mid-run; fifty submits at once. Each scenario submits its jobs and
checks that each one ended exactly once, with nothing left queued, running
or leased. Heartbeats are 1 s here, so a lease lapses after 4 s."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daydream.redis_server import RedisServer
from shared.errors import QueueFull
from shared.job import JobState
from shared.leases import lease_ttl_s
from shared.settings import Settings
from shared.store import JobStore
from tests.faults.fleet import Fleet, rq_ids_waiting, take_and_die
from tests.support.jobs import make_job
from tests.support.workers import ROOT, wait_until, worker_env

pytestmark = pytest.mark.slow

LONG_STEPS = 20  # a job long enough to be caught in the middle (~2 s on one core)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with RedisServer(appendonly=True) as server:
        fleet = Fleet(server, tmp_path_factory.mktemp("fault-logs"))
        try:
            yield fleet
        finally:
            fleet.stop_all()


@pytest.fixture
def two_workers(fleet: Fleet) -> Fleet:
    """Two live workers at the start of each scenario (earlier ones may have been killed)."""
    if not fleet.redis.proc:
        fleet.redis.start()
    for worker in list(fleet.workers.values()):
        if not worker.alive:
            del fleet.workers[worker.name]
    while sum(w.alive for w in fleet.workers.values()) < 2:
        fleet.start()
    fleet.assert_nothing_left()
    return fleet


def requeue_bound_s(fleet: Fleet) -> float:
    """Lease TTL, then at most two sweeps (each live worker sweeps every heartbeat)."""
    return lease_ttl_s(fleet.heartbeat_s) + 2 * fleet.heartbeat_s + 2


def test_sigkill_mid_job_loses_nothing_and_runs_nothing_twice(two_workers: Fleet) -> None:
    fleet = two_workers
    jobs = fleet.submit(8, steps=LONG_STEPS)
    latencies = []
    for _ in range(3):
        victim = fleet.wait_running(at_least=0.1, of=jobs)
        if victim is None:
            break  # all done before the next kill
        fleet.kill(victim.worker)
        killed_at = time.monotonic()
        wait_until(
            lambda v=victim: fleet.store.get(v.id).attempts > v.attempts or fleet.store.get(v.id).finished,
            60,
            f"job {victim.id} to be re-queued",
        )
        latencies.append(time.monotonic() - killed_at)
        fleet.start()
    assert latencies, "no job was caught running"
    done = fleet.wait_all(jobs)
    for job in done:
        # A job killed three times ends failed, clearly; any other ends done.
        assert job.state == JobState.DONE or "stopped 3 times" in (job.error or ""), job
        assert fleet.finishes(job.id) == [job.state.value]
    fleet.assert_nothing_left()
    assert max(latencies) < requeue_bound_s(fleet), latencies


def test_a_worker_killed_between_dequeue_and_running_loses_nothing(two_workers: Fleet) -> None:
    fleet = two_workers
    for name in list(fleet.workers):  # nobody else takes the job first
        fleet.signal(name, signal.SIGSTOP)
    try:
        [job] = fleet.submit(1)
        took = take_and_die(fleet.redis.url)
        died_at = time.monotonic()
        assert f"{job.id}-0" in took.stdout, took.stderr
        # Off the queue, still "queued", held by a lease of a process that is gone.
        assert rq_ids_waiting(fleet.store) == [] and fleet.store.get(job.id).state == JobState.QUEUED
        assert fleet.holder(job.id) == "doomed"
    finally:
        for name in list(fleet.workers):
            fleet.signal(name, signal.SIGCONT)
    wait_until(lambda: fleet.store.get(job.id).attempts == 1, 60, "the lapsed lease's job to be re-queued")
    assert time.monotonic() - died_at < requeue_bound_s(fleet)
    [done] = fleet.wait_all([job])
    assert done.worker in fleet.workers and done.attempts == 1
    fleet.assert_each_exactly_once([job])


def test_a_lease_a_live_worker_took_without_knowing_lapses(two_workers: Fleet) -> None:
    """The pick ran in Redis but its answer never reached the worker (Redis went
    down in between, or RQ's copy could not be fetched): the lease names a live
    worker whose heartbeat must not keep it, or the job waits for ever."""
    fleet = two_workers
    names = list(fleet.workers)
    for name in names:  # nobody takes the job first
        fleet.signal(name, signal.SIGSTOP)
    try:
        [job] = fleet.submit(1)
        took = take_and_die(fleet.redis.url, holder=names[0])  # as if names[0]'s pick had been lost
        assert f"{job.id}-0" in took.stdout, took.stderr
        assert fleet.holder(job.id) == names[0] and fleet.store.get(job.id).state == JobState.QUEUED
    finally:
        for name in names:
            fleet.signal(name, signal.SIGCONT)
    taken_at = time.monotonic()
    wait_until(lambda: fleet.store.get(job.id).attempts == 1, 60, "the unknown lease to lapse and its job re-queued")
    assert time.monotonic() - taken_at < requeue_bound_s(fleet)
    [done] = fleet.wait_all([job])
    assert done.state == JobState.DONE and done.attempts == 1
    fleet.assert_each_exactly_once([job])


def test_a_frozen_worker_resumes_and_writes_nothing(two_workers: Fleet) -> None:
    fleet = two_workers
    [job] = fleet.submit(1, steps=LONG_STEPS * 2)
    running = fleet.wait_running(at_least=0.1)
    frozen = running.worker
    fleet.signal(frozen, signal.SIGSTOP)
    try:
        # Its lease lapses; the other worker runs the job to the end.
        [done] = fleet.wait_all([job], timeout=180)
    finally:
        fleet.signal(frozen, signal.SIGCONT)
    assert done.state == JobState.DONE and done.worker != frozen and done.attempts == 1
    # Resumed, it finds its attempt superseded at its next write, and stops.
    wait_until(lambda: "superseded" in fleet.workers[frozen].log.read_text(), 60, "the resumed worker to notice")
    wait_until(
        lambda: any(w["name"] == frozen and w["current_job"] is None for w in fleet.store.dispatch.live_workers()),
        60,
        "the resumed worker to be idle",
    )
    after = fleet.store.get(job.id)
    assert (after.state, after.worker, after.progress, after.attempts) == (JobState.DONE, done.worker, 1.0, 1)
    fleet.assert_each_exactly_once([job])


def test_sigterm_finishes_the_job_in_hand_then_exits(two_workers: Fleet) -> None:
    fleet = two_workers
    [job] = fleet.submit(1, steps=LONG_STEPS)
    running = fleet.wait_running(at_least=0.1)
    stopping = fleet.workers[running.worker]
    fleet.signal(stopping.name, signal.SIGTERM)
    later = fleet.submit(1)  # must go to the other worker
    assert stopping.proc.wait(timeout=120) == 0
    [done, other] = fleet.wait_all([job, *later])
    assert done.worker == stopping.name and done.attempts == 0  # finished where it was
    assert other.worker != stopping.name
    fleet.assert_each_exactly_once([job, *later])


def test_a_second_sigterm_hands_the_job_back(two_workers: Fleet) -> None:
    fleet = two_workers
    [job] = fleet.submit(1, steps=LONG_STEPS * 2)
    running = fleet.wait_running(at_least=0.05)
    stopping = fleet.workers[running.worker]
    fleet.signal(stopping.name, signal.SIGTERM)
    time.sleep(1.2)  # RQ ignores a second signal within a second of the first (its duplicate guard)
    fleet.signal(stopping.name, signal.SIGTERM)
    stopping.proc.wait(timeout=60)
    [done] = fleet.wait_all([job])
    assert done.attempts == 1 and done.worker != stopping.name
    fleet.assert_each_exactly_once([job])


def test_redis_killed_and_restarted_mid_run(two_workers: Fleet, tmp_path: Path) -> None:
    fleet = two_workers
    pids = {w.name: w.pid for w in fleet.workers.values() if w.alive}
    jobs = fleet.submit(5, steps=LONG_STEPS)
    waiting = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daydream",
            "imagine",
            "a blue square --steps 8",
            "--json",
            "-q",
            "--redis-timeout",
            "60",
        ],
        cwd=ROOT,
        env=worker_env(fleet.redis.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Once its job is in Redis: before that, an outage is refused at once (exit 4, nothing queued).
    wait_until(lambda: any(r.prompt == "a blue square" for r in fleet.store.recent(20)), 120, "the CLI's job", waiting)
    fleet.wait_running(at_least=0.1)
    fleet.redis.kill()
    time.sleep(3)  # the outage itself
    fleet.redis.start()
    done = fleet.wait_all(jobs, timeout=300)
    _out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err  # rode through the outage
    assert all(job.state == JobState.DONE for job in done), [(j.id, j.state, j.error) for j in done]
    # Every worker survived it, model loaded: same processes.
    assert {w.name: w.pid for w in fleet.workers.values() if w.alive} == pids
    fleet.assert_each_exactly_once(jobs)


def test_a_worker_whose_redis_dies_while_it_loads_its_model_waits_and_serves(two_workers: Fleet) -> None:
    fleet = two_workers
    others = [name for name, w in fleet.workers.items() if w.alive]
    for name in others:  # the new worker must be the one that serves
        fleet.signal(name, signal.SIGSTOP)
    try:
        new = fleet.start(wait=False)
        wait_until(lambda: "loading model" in new.tail(200), 60, "the new worker to reach Redis and load", new.proc)
        fleet.redis.kill()  # while the model loads (or just after: the work loop rides it out too)
        wait_until(
            lambda: "the model stays loaded" in new.tail(200) or "Redis unavailable" in new.tail(200) or not new.alive,
            60,
            "the new worker to notice the outage",
        )
        assert new.alive, new.tail()
        fleet.redis.start()
        wait_until(lambda: fleet.announced(new.name), 60, "the new worker to announce itself", new.proc)
        [job] = fleet.submit(1)
        [done] = fleet.wait_all([job])
        assert done.state == JobState.DONE and done.worker == new.name
    finally:
        for name in others:
            fleet.signal(name, signal.SIGCONT)
    fleet.assert_each_exactly_once([job])


def test_fifty_submits_at_once_admit_exactly_the_limit(two_workers: Fleet) -> None:
    fleet = two_workers
    limit = Settings().max_queued_per_user
    stores = [JobStore(fleet.settings) for _ in range(50)]
    start = threading.Barrier(len(stores))
    admitted, refused = [], []

    def submit(store: JobStore) -> None:
        start.wait()
        try:
            admitted.append(store.submit(make_job(user=4242, params=make_job().params)))
        except QueueFull:
            refused.append(store)

    fleet.store.policy.pause()  # the limit counts waiting jobs: none may start during the burst
    try:
        threads = [threading.Thread(target=submit, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        fleet.store.policy.resume()
    assert len(admitted) == limit and len(refused) == 50 - limit
    fleet.wait_all(admitted)
    fleet.assert_each_exactly_once(admitted)
