"""The fair queue's discipline, against the real redis-server: the very pick
the workers run (`Dispatch.take`, one Lua step), called here for workers that
finish each job at once (`done`), so the order is exact and needs no clock."""

from __future__ import annotations

import pytest

from shared.errors import NotAllowed, QueueFull
from shared.job import JobKind, JobRecord, JobState
from shared.policy import Limits
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import announce_worker, make_job


@pytest.fixture
def store(settings: Settings) -> JobStore:
    store = JobStore(settings)
    announce_worker(store)
    return store


def submit(store: JobStore, user: int | None, n: int = 1, **changes: object) -> list[JobRecord]:
    return [store.submit(make_job(user=user, prompt=f"job {user} {i}", **changes)) for i in range(n)]


def take(store: JobStore, worker: str = "w1") -> JobRecord | None:
    """What a free worker takes next (its lease and all), as the record it runs."""
    picked = store.dispatch.take(worker, ["embedded"])
    if picked is None:
        return None
    job = store.get(picked[1].rsplit("-", 1)[0])
    return store.mark_running(job.id, worker, attempt=job.attempts)


def done(store: JobStore, job: JobRecord) -> None:
    store.finish(job.id, JobState.DONE, attempt=job.attempts)


def drain(store: JobStore) -> list[JobRecord]:
    """Run everything with one worker, one job at a time; the order they ran in."""
    order = []
    while (job := take(store)) is not None:
        order.append(job)
        done(store, job)
    return order


def users(jobs: list[JobRecord]) -> list[int | None]:
    return [j.user_id for j in jobs]


# -- fair between users -----------------------------------------------------------
def test_one_users_backlog_costs_a_newcomer_at_most_one_more_of_theirs(store: JobStore) -> None:
    a_jobs = submit(store, 1, 10)
    first = take(store)  # A's first is running when B submits
    submit(store, 2)
    assert first is not None and first.user_id == 1
    done(store, first)
    order = drain(store)
    assert users(order)[0] == 2, users(order)  # B's job is next, not the 11th
    assert len(order) == len(a_jobs)  # and nothing was lost or run twice


def test_users_are_served_in_turn_not_in_arrival_order(store: JobStore) -> None:
    submit(store, 1, 3)
    submit(store, 2, 3)
    submit(store, 3, 3)
    assert users(drain(store)) == [1, 2, 3, 1, 2, 3, 1, 2, 3]


def test_a_users_own_jobs_keep_their_order(store: JobStore) -> None:
    mine = submit(store, 1, 4)
    assert [j.id for j in drain(store)] == [j.id for j in mine]


def test_positions_follow_the_turns(store: JobStore) -> None:
    a = submit(store, 1, 3)
    [b] = submit(store, 2)
    assert [store.position(j.id) for j in a] == [1, 3, 4]
    assert store.position(b.id) == 2
    assert store.dispatch.next_position(make_job(user=3)) == 3  # a newcomer: after B, before A's second


# -- lanes and tiers ----------------------------------------------------------------
def test_lanes_in_order_turbo_fast_relax(store: JobStore) -> None:
    submit(store, 1, lane="relax")
    submit(store, 2, lane="fast")
    submit(store, 3, lane="turbo")
    assert [j.lane for j in drain(store)] == ["turbo", "fast", "relax"]


def test_follow_ups_go_ahead_of_new_grids_in_their_lane(store: JobStore) -> None:
    submit(store, 1, 2)
    [follow_up] = submit(store, 2, kind=JobKind.UPSCALE, parent_id="p" * 32, index=1, seeds=[1])
    order = drain(store)
    assert order[0].id == follow_up.id and order[0].kind == JobKind.UPSCALE


def test_relax_serves_the_least_recent_gpu_time_first(store: JobStore) -> None:
    # User 1 has used the GPU a lot lately; user 2 little.
    for user, seconds in ((1, 500.0), (2, 5.0)):
        submit(store, user)
        running = take(store)
        assert running is not None
        store.update(running.id, started_at=(running.started_at or 0) - seconds)
        done(store, running)
    submit(store, 1, lane="relax")
    submit(store, 2, lane="relax")
    assert users(drain(store)) == [2, 1]


# -- limits -------------------------------------------------------------------------
def test_a_user_at_their_running_cap_waits_while_others_start(store: JobStore) -> None:
    store.policy.set_limits(user_id=1, limits=Limits(running=1, queued=10))
    submit(store, 1, 3)
    submit(store, 2, 1)
    first = take(store, "w1")
    second = take(store, "w2")  # user 1 is at their cap: user 2's job starts
    assert (first.user_id, second.user_id) == (1, 2)
    assert take(store, "w3") is None  # only user 1's jobs wait, and they may not start
    assert store.waiting_status(store.get(store.jobs_of(1)[1].id)).running == 1  # "Job queued"
    done(store, first)
    third = take(store, "w3")
    assert third is not None and third.user_id == 1


def test_waiting_jobs_are_capped_and_the_refusal_lists_them(store: JobStore, settings: Settings) -> None:
    limit = settings.max_queued_per_user
    mine = submit(store, 1, limit)
    with pytest.raises(QueueFull) as err:
        submit(store, 1)
    assert err.value.active == limit and [j.id for j in err.value.jobs] == [j.id for j in mine]
    assert str(err.value).startswith("Queue full")
    running = take(store)  # one starts: a waiting slot frees
    assert running is not None and running.user_id == 1
    submit(store, 1)


def test_limits_by_role_and_by_user(store: JobStore) -> None:
    policy = store.policy
    policy.set_limits(role_id=50, limits=Limits(running=2, queued=4))
    policy.set_limits(role_id=51, limits=Limits(running=5, queued=2))
    assert policy.limits_for(9, frozenset({50, 51})) == Limits(5, 4)  # the most generous of their roles
    policy.set_limits(user_id=9, limits=Limits(running=1, queued=1))
    assert policy.limits_for(9, frozenset({50, 51})) == Limits(1, 1)  # their own wins
    assert policy.limits_for(10) == policy.defaults


# -- the lanes a user may use ---------------------------------------------------------
def test_turbo_is_for_those_granted_it_and_relax_can_be_imposed(store: JobStore) -> None:
    policy = store.policy
    with pytest.raises(NotAllowed):
        policy.resolve_lane(7, frozenset(), "turbo")
    policy.set_grant("turbo", role_id=70)
    assert policy.resolve_lane(7, frozenset({70}), "turbo") == "turbo"
    policy.set_default_lane(7, "relax")
    assert policy.resolve_lane(7, frozenset(), None) == "relax"  # their default
    assert policy.resolve_lane(7, frozenset(), "fast") == "fast"  # the prompt wins
    policy.set_grant("relax", user_id=8)
    assert policy.resolve_lane(8, frozenset(), "fast") == "relax"  # imposed


# -- pause and resume -----------------------------------------------------------------
def test_a_paused_lane_starts_nothing_and_keeps_its_jobs(store: JobStore) -> None:
    [fast] = submit(store, 1)
    [relax] = submit(store, 2, lane="relax")
    store.policy.pause("fast")
    started = take(store)
    assert started is not None and started.id == relax.id  # other lanes go on
    done(store, started)
    assert take(store) is None and store.get(fast.id).state == JobState.QUEUED
    assert store.waiting_status(store.get(fast.id)).paused
    store.policy.resume("fast")
    again = take(store)
    assert again is not None and again.id == fast.id
    store.policy.pause()  # every lane
    submit(store, 3, lane="turbo")
    assert take(store) is None


# -- cancel and usage -----------------------------------------------------------------
def test_a_cancelled_waiting_job_leaves_the_fair_index(store: JobStore) -> None:
    a, b = submit(store, 1, 2)
    assert store.cancel(a.id, canceller_id=1) is not None
    assert [j.id for j in drain(store)] == [b.id]
    assert store.get(a.id).state == JobState.CANCELLED


def test_gpu_time_is_accounted_per_user_and_lane(store: JobStore) -> None:
    submit(store, 5, lane="relax")
    running = take(store)
    assert running is not None
    store.update(running.id, started_at=(running.started_at or 0) - 12.0)
    done(store, running)
    usage = store.usage.of(5)
    assert usage.today_s == pytest.approx(12.0, abs=0.5) and usage.total_s == pytest.approx(12.0, abs=0.5)
    assert set(usage.by_lane_today) == {"relax"}
    assert store.usage.of(6).total_s == 0.0
