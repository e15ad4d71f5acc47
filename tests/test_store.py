"""Job records and the queue against a real redis-server."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import redis
from rq.serializers import JSONSerializer

from daydream.redis_server import RedisServer, free_port
from shared import keys
from shared.errors import JobNotFound, QueueFull, QueueUnavailable
from shared.job import JobRecord, JobState, ReplyTarget, new_job_id
from shared.settings import Settings
from shared.store import MAX_ATTEMPTS, JobStore
from tests.support.jobs import announce_worker, make_job, queued_rq_ids, queued_rq_job
from worker.sweeps import expire_stale, recover_orphans

make = make_job


@pytest.fixture
def store(settings: Settings) -> JobStore:
    store = JobStore(settings)
    announce_worker(store, "w0")  # submit refuses a job that no live worker could run
    return store


def test_submit_stores_a_json_record_and_enqueues_by_name(store):
    rec = store.submit(make(reply=ReplyTarget(channel_id=5, interaction_token="secret-token")))
    assert store.get(rec.id) == rec
    [rq_id] = queued_rq_ids(store)
    assert rq_id == f"{rec.id}-0"
    job = queued_rq_job(store, rq_id)
    assert job.func_name == "worker.pipeline.run_job" == keys.JOB_FUNC
    assert job.args == [rec.id, 0]
    assert isinstance(job.serializer, type(JSONSerializer)) or job.serializer is not None
    assert store.position(rec.id) == 1
    assert "secret-token" not in str(rec.public())


def test_record_round_trips_through_json():
    rec = make(parent_id="p" * 32, index=2, reply=ReplyTarget(application_id=1, channel_id=2, guild_id=3))
    assert JobRecord.from_json(rec.to_json()) == rec
    public = rec.public()
    for field in (
        "id",
        "kind",
        "state",
        "user_id",
        "prompt",
        "seeds",
        "parent_id",
        "index",
        "worker",
        "created_at",
        "started_at",
        "finished_at",
        "error",
    ):
        assert field in public


def test_queue_position_counts_jobs_ahead(store):
    ids = [store.submit(make(user=i)).id for i in range(3)]
    assert [store.position(i) for i in ids] == [1, 2, 3]
    assert store.dispatch.depth() == 3


def test_per_user_limit(store):
    for _ in range(store.settings.max_queued_per_user):
        store.submit(make(user=7))
    with pytest.raises(QueueFull) as err:
        store.submit(make(user=7))
    assert "limit is" in str(err.value)
    store.submit(make(user=8))  # others are not affected


def test_finished_jobs_free_the_users_slot(store):
    recs = [store.submit(make(user=7)) for _ in range(store.settings.max_queued_per_user)]
    store.finish(recs[0].id, JobState.DONE)
    store.submit(make(user=7))


def test_unknown_job(store):
    with pytest.raises(JobNotFound):
        store.get(new_job_id())


def test_redis_unreachable_is_a_clear_error():
    store = JobStore(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(QueueUnavailable) as err:
        store.submit(make())
    assert "cannot be reached" in str(err.value)


def test_wait_wakes_on_finish_from_another_client(store, settings):
    rec = store.submit(make())
    other = JobStore(settings)
    started = threading.Event()

    def finish() -> None:
        started.wait()
        other.mark_running(rec.id, "w")
        other.finish(rec.id, JobState.DONE)

    t = threading.Thread(target=finish)
    t.start()
    seen = []

    def on_update(r: JobRecord) -> None:
        seen.append(r.state)
        started.set()

    done = store.wait(rec.id, timeout=30, on_update=on_update)
    t.join()
    assert done.state == JobState.DONE
    assert seen[0] == JobState.QUEUED and seen[-1] == JobState.DONE
    assert store.redis.lrange(keys.done_signal(rec.id), 0, -1) == [b"done"]


def test_dead_workers_job_is_requeued_at_the_front(store):
    waiting = store.submit(make(user=1))
    rec = store.submit(make(user=2))
    store.dispatch.withdraw(rec)  # the dead worker had dequeued it
    store.mark_running(rec.id, "dead-worker")  # no heartbeat: it died
    announce_worker(store, "alive")
    assert recover_orphans(store) == [rec.id]
    again = store.get(rec.id)
    assert again.state == JobState.QUEUED and again.attempts == 1
    assert queued_rq_ids(store)[0] == f"{rec.id}-1"  # ahead of the job that was waiting
    assert store.position(waiting.id) == 2
    assert recover_orphans(store) == []  # nothing left to recover


def test_a_job_whose_workers_keep_dying_fails_clearly(store):
    rec = store.submit(make())
    told = []
    for attempt in range(MAX_ATTEMPTS):
        store.mark_running(rec.id, f"dead-{attempt}")
        recover_orphans(store, lambda r, text: told.append(text))
    final = store.get(rec.id)
    assert final.state == JobState.FAILED
    assert "stopped 3 times" in final.error
    assert told and told[0] == final.error


def test_running_job_of_a_live_worker_is_left_alone(store):
    rec = store.submit(make())
    announce_worker(store, "busy")
    store.mark_running(rec.id, "busy")
    assert recover_orphans(store) == []


def test_stale_queued_jobs_expire_with_a_message(store):
    rec = store.submit(make())
    # The same queue seen by a sweeper whose TTL has already run out.
    short = JobStore(dataclasses.replace(store.settings, queued_job_ttl_s=0), store.redis)
    told = []
    assert expire_stale(short, lambda r, text: told.append((r.id, text))) == [rec.id]
    assert short.get(rec.id).state == JobState.EXPIRED
    assert short.dispatch.depth() == 0
    assert told[0][0] == rec.id and "waited more than" in told[0][1]


def test_worker_liveness_follows_the_heartbeat_ttl(settings):
    store = JobStore(dataclasses.replace(settings, worker_heartbeat_s=1))
    announce_worker(store, "w1")
    assert [w["name"] for w in store.dispatch.live_workers()] == ["w1"]
    ttl = store.redis.pttl(keys.worker_heartbeat("w1"))
    assert 0 < ttl <= 3000
    store.dispatch.worker_gone("w1")
    assert store.dispatch.live_workers() == []


def test_records_survive_a_redis_restart_with_aof():
    server = RedisServer(appendonly=True).start()
    try:
        store = JobStore(Settings(redis_url=server.url))
        announce_worker(store)
        rec = store.submit(make())
        server.stop()
        with pytest.raises(QueueUnavailable):
            store.submit(make())
        server.start()
        fresh = JobStore(Settings(redis_url=server.url), redis.Redis.from_url(server.url))
        assert fresh.get(rec.id).state == JobState.QUEUED
        assert fresh.position(rec.id) == 1
    finally:
        server.close()


def test_cancel_flag(store):
    rec = store.submit(make())
    assert not store.cancel_requested(rec.id)
    store.request_cancel(rec.id)
    assert store.cancel_requested(rec.id)
