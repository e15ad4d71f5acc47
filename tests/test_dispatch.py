"""Dispatch by model and lane, and the refusals made at submit, against the
real redis-server: a job goes to the queue of its (model, lane), waits in a
place read with LPOS, and is refused before anything is stored when no live
worker holds its model or that model cannot serve it."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from shared import keys, tokens
from shared.errors import NoWorkerAlive, PromptTooLong, QueueFull, Unsupported
from shared.job import JobKind, JobState
from shared.models import Task
from shared.settings import Settings
from shared.store import JobStore
from tests.support.fake_engine import FakeEngine
from tests.support.jobs import EMBEDDED_SPEC, announce_worker, make_job, queued_rq_ids

SDXL = dataclasses.replace(EMBEDDED_SPEC, name="sdxl-turbo", family="sdxl", max_prompt_tokens=77)


@pytest.fixture
def store(settings: Settings) -> JobStore:
    return JobStore(settings)


def test_a_job_goes_to_the_queue_of_its_model_and_lane(store: JobStore) -> None:
    announce_worker(store, "a", EMBEDDED_SPEC)
    announce_worker(store, "b", SDXL)
    one = store.submit(make_job(user=1))
    two = store.submit(make_job(user=2, model="sdxl-turbo", lane="relax"))
    assert queued_rq_ids(store) == [f"{one.id}-0"]
    assert queued_rq_ids(store, "sdxl-turbo", "relax") == [f"{two.id}-0"]
    assert store.dispatch.depth("embedded") == 1 and store.dispatch.depth("sdxl-turbo") == 1
    assert store.dispatch.depth() == 2
    assert store.dispatch.depths("sdxl-turbo") == {"daydream:sdxl-turbo:turbo": 0, "daydream:sdxl-turbo:fast": 0,
                                                  "daydream:sdxl-turbo:relax": 1}  # fmt: skip


def test_positions_count_the_lanes_ahead(store: JobStore) -> None:
    announce_worker(store)
    fast = [store.submit(make_job(user=i)) for i in range(3)]
    relax = store.submit(make_job(user=9, lane="relax"))
    turbo = store.submit(make_job(user=8, lane="turbo"))
    assert [store.position(j.id) for j in fast] == [2, 3, 4]  # behind the turbo job
    assert store.position(turbo.id) == 1
    assert store.position(relax.id) == 5
    assert store.dispatch.next_position(make_job(user=50)) == 5  # behind turbo and the three fast ones
    assert store.dispatch.next_position(make_job(user=51, lane="turbo")) == 2
    store.finish(fast[0].id, JobState.DONE)
    assert store.position(fast[0].id) is None  # not waiting


def test_a_model_no_live_worker_holds_is_refused_with_the_models_served(store: JobStore) -> None:
    announce_worker(store, "a", EMBEDDED_SPEC)
    job = make_job(model="flux-dev")
    with pytest.raises(NoWorkerAlive) as err:
        store.submit(job)
    assert err.value.served == ["embedded"] and "`embedded`" in str(err.value) and "`flux-dev`" in str(err.value)
    assert err.value.exit_code == 3
    assert store.find(job.id) is None and store.dispatch.depth() == 0


def test_no_worker_at_all_says_to_start_one(store: JobStore) -> None:
    with pytest.raises(NoWorkerAlive, match="daydream worker"):
        store.submit(make_job())


def test_the_models_tokenizer_counts_a_prompt_at_submit(store: JobStore) -> None:
    engine = FakeEngine()
    spec = dataclasses.replace(EMBEDDED_SPEC, max_prompt_tokens=9, tokenizer=tokens.digest(engine.tokenizer_json()))
    announce_worker(store, spec=spec, tokenizer=engine.tokenizer_json())
    store.submit(make_job(prompt="a red circle on the blue square"))  # 7 words + [CLS] and [SEP]: 9
    with pytest.raises(PromptTooLong) as err:
        store.submit(job := make_job(prompt="a red circle on a blue background and the square"))
    assert (err.value.tokens, err.value.limit) == (12, 9) == (engine.count_tokens(job.prompt), 9)
    assert err.value.exit_code == 2 and store.find(job.id) is None
    with pytest.raises(PromptTooLong, match="negative prompt"):
        store.submit(make_job(prompt="a red circle", negative_prompt="the blue square on a red circle background"))


def test_what_the_model_cannot_do_is_refused_at_submit(store: JobStore) -> None:
    announce_worker(store, spec=dataclasses.replace(EMBEDDED_SPEC, tasks=frozenset({Task.TEXT_TO_IMAGE})))
    parent = make_job(state=JobState.DONE, images=4)
    store.save(parent)
    upscale = make_job(kind=JobKind.UPSCALE, parent_id=parent.id, index=1, seeds=[1])
    with pytest.raises(Unsupported, match="cannot do upscale"):
        store.submit(upscale)
    assert store.find(upscale.id) is None


def test_a_worker_of_an_earlier_version_still_counts(store: JobStore) -> None:
    """Its heartbeat names its MODEL source and no ModelSpec: jobs are accepted, checked on arrival."""
    store.redis.sadd(keys.WORKERS, "old")
    store.redis.set(keys.worker_heartbeat("old"), '{"name": "old", "model": "embedded", "device": "cpu"}', ex=15)
    assert [w["models"] for w in store.dispatch.live_workers("embedded")] == [["embedded"]]
    assert store.dispatch.require("embedded") is None  # no spec to check against
    store.submit(make_job(prompt=" ".join(["word"] * 100)))  # the worker will refuse it clearly


def test_a_worker_listens_on_its_models_lanes_in_order_and_the_old_queue(store: JobStore) -> None:
    worker = store.dispatch.worker("w", ["embedded"])
    assert worker.queue_names() == [
        "daydream:embedded:turbo",
        "daydream:embedded:fast",
        "daydream:embedded:relax",
        "daydream",  # jobs queued by the version before dispatch by model, until drained
    ]


def test_withdraw_takes_the_current_attempt_off_its_queue(store: JobStore) -> None:
    announce_worker(store)
    job = store.submit(make_job())
    assert store.dispatch.withdraw(job) is True
    assert queued_rq_ids(store) == [] and store.dispatch.withdraw(job) is False


def test_concurrent_submits_never_pass_the_users_limit(store: JobStore, settings: Settings) -> None:
    announce_worker(store)
    limit = settings.max_queued_per_user
    stores = [JobStore(settings) for _ in range(20)]
    start = threading.Barrier(len(stores))
    admitted: list[str] = []
    refused: list[QueueFull] = []

    def submit(s: JobStore) -> None:
        start.wait()
        try:
            admitted.append(s.submit(make_job(user=77)).id)
        except QueueFull as exc:
            refused.append(exc)

    threads = [threading.Thread(target=submit, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == limit and len(refused) == len(stores) - limit
    assert {exc.active for exc in refused} == {limit} and refused[0].exit_code == 2
    assert len(queued_rq_ids(store)) == limit
