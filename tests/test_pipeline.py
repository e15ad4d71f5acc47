"""Every branch of the worker's pipeline, in-process, against the real
redis-server: the fake engine (tests/support/fake_engine.py) stands in for
the model, the real store, handlers and delivery do the rest, and a fake of
Discord's REST API (tests/support/discord_http.py) records what is posted."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator

import pytest
from PIL import Image

from shared import keys, messages, redelivery
from shared.errors import GenerationFailed
from shared.grid import decode_image
from shared.job import JobKind, JobRecord, JobState, ReplyTarget
from shared.params import Params
from shared.settings import Settings
from shared.store import JobStore
from tests.support.discord_http import CHANNEL_ID, Canned, FakeDiscord
from tests.support.fake_engine import FakeEngine, colour_of
from tests.support.jobs import make_job
from worker import pipeline, sweeps
from worker.delivery import Delivery
from worker.runtime import WorkerRuntime

APP_ID = 1111
USER_ID = 4444


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def rt(settings: Settings, discord: FakeDiscord, engine: FakeEngine) -> Iterator[WorkerRuntime]:
    settings = dataclasses.replace(settings, discord_api_base=discord.base, progress_interval_s=0.0)
    store = JobStore(settings)
    runtime = WorkerRuntime(
        settings=settings, store=store, engine=engine, delivery=Delivery(settings, store), name="w-test", device="cpu"
    )
    yield runtime
    runtime.delivery.close()
    store.redis.close()


def discord_reply() -> ReplyTarget:
    return ReplyTarget(
        application_id=APP_ID,
        interaction_token="token-SECRET",
        token_expires_at=time.time() + 900,
        guild_id=2222,
        channel_id=CHANNEL_ID,
    )


def queued(rt: WorkerRuntime, **changes: object) -> JobRecord:
    """A job as the bot leaves it: stored and enqueued (the worker's checks are the ones under test)."""
    job = make_job(user=USER_ID, **changes)
    rt.store.submit(job, check=False)
    return job


def run(rt: WorkerRuntime, job: JobRecord, attempt: int | None = None) -> str:
    return pipeline.run(rt, job.id, job.attempts if attempt is None else attempt)


def finished(rt: WorkerRuntime, job: JobRecord) -> JobRecord:
    return rt.store.get(job.id)


# -- success -------------------------------------------------------------------
def test_an_imagine_job_is_sampled_stored_delivered_and_done(rt: WorkerRuntime, discord: FakeDiscord) -> None:
    job = queued(rt, reply=discord_reply(), params=Params(aspect="3:2", steps=9, guidance=5.0), negative_prompt="text")
    assert run(rt, job) == pipeline.DONE

    done = finished(rt, job)
    assert done.state == JobState.DONE and done.worker == "w-test" and done.error is None
    assert (done.images, done.width, done.height, done.progress) == (4, 80, 48, 1.0)
    # The request carried what the record asks for.
    [req] = rt.engine.requests
    assert (req.prompt, req.negative_prompt, req.seeds, req.steps, req.guidance) == (
        "a red circle",
        "text",
        (1, 2, 3, 4),
        9,
        5.0,
    )
    assert (req.width, req.height) == (80, 48)  # 3:2 at the model's base size, in its size multiple
    # Stored where every worker reads it: each image, and the grid of them.
    tiles = [decode_image(rt.store.images.image(job.id, i)).convert("RGB") for i in range(1, 5)]
    assert [t.getpixel((0, 0)) for t in tiles] == [colour_of(s) for s in (1, 2, 3, 4)]
    assert decode_image(rt.store.images.grid(job.id)).size == (160, 96)
    # Delivered once, with the grid's buttons, and the record knows the message.
    [posted] = [r for r in discord.requests if r.files.get("files[0]", ("",))[0].startswith("daydream_")]
    assert posted.payload["content"] == messages.result(done)
    assert len([b for row in posted.payload["components"] for b in row["components"]]) == 9
    assert done.reply.message_id is not None and rt.store.claims.delivered(job.id) is not None


def test_the_grid_is_posted_as_it_was_stored(rt: WorkerRuntime, discord: FakeDiscord) -> None:
    job = queued(rt, reply=discord_reply())
    run(rt, job)
    [posted] = [r for r in discord.requests if "daydream_" in r.files.get("files[0]", ("",))[0]]
    assert posted.files["files[0]"][1] == rt.store.images.grid(job.id)  # the same bytes: encoded once


def test_an_upscale_and_a_variation_work_from_the_parents_image(rt: WorkerRuntime) -> None:
    parent = queued(rt)
    run(rt, parent)
    upscale = queued(rt, kind=JobKind.UPSCALE, parent_id=parent.id, index=3, seeds=[3], params=Params(strength=0.25))
    assert run(rt, upscale) == pipeline.DONE
    big = finished(rt, upscale)
    assert (big.images, big.width, big.height) == (1, 128, 128)
    assert rt.store.images.grid(upscale.id) is None  # one image, no grid
    variation = queued(rt, kind=JobKind.VARIATION, parent_id=parent.id, index=2, seeds=[5, 6, 7, 8])
    assert run(rt, variation) == pipeline.DONE
    [_, up_req, vary_req] = rt.engine.requests
    assert up_req.upscale == 2 and up_req.strength == 0.25 and up_req.init_images[0].getpixel((0, 0)) == colour_of(3)
    assert vary_req.strength == rt.settings.vary_strong  # no strength on the record: the setting's
    assert vary_req.init_images[0].getpixel((0, 0)) == colour_of(2)


def test_an_expired_parent_is_regenerated_from_its_seeds(rt: WorkerRuntime) -> None:
    parent = queued(rt, seeds=[7, 8, 9, 10])
    run(rt, parent)
    rt.store.images.forget(parent.id)
    child = queued(rt, kind=JobKind.UPSCALE, parent_id=parent.id, index=4, seeds=[10])
    assert run(rt, child) == pipeline.DONE
    assert decode_image(rt.store.images.image(parent.id, 4)).convert("RGB").getpixel((0, 0)) == colour_of(10)
    assert len(rt.engine.requests) == 3  # the parent, its regeneration, the upscale


# -- failures ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "text"),
    [
        (GenerationFailed("The sampler broke."), "The sampler broke."),
        (ValueError("bug"), "unexpected error (ValueError)"),
        (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), messages.OUT_OF_MEMORY),
    ],
)
def test_a_failure_ends_the_job_with_a_clear_error_and_tells_the_user(
    rt: WorkerRuntime, engine: FakeEngine, discord: FakeDiscord, error: Exception, text: str
) -> None:
    engine.fail_with = error
    job = queued(rt, reply=discord_reply())
    assert run(rt, job) == pipeline.FAILED
    failed = finished(rt, job)
    assert failed.state == JobState.FAILED and text in failed.error
    told = discord.requests[-1].payload["content"]
    assert told == messages.failed(failed, failed.error)
    assert rt.store.images.grid(job.id) is None and rt.store.claims.delivered(job.id) is None
    assert job.id not in rt.store.running_ids()


def test_a_prompt_too_long_for_the_engine_fails_before_sampling(rt: WorkerRuntime) -> None:
    job = queued(rt, prompt=" ".join(["a red circle"] * 20))  # 62 tokens with [CLS] and [SEP]
    assert run(rt, job) == pipeline.FAILED
    assert "62 tokens long" in finished(rt, job).error
    assert rt.engine.requests == []


def test_a_kind_this_worker_does_not_know_fails_clearly(rt: WorkerRuntime) -> None:
    job = queued(rt)
    raw = json.loads(rt.store.redis.get(keys.job(job.id)))
    rt.store.redis.set(keys.job(job.id), json.dumps({**raw, "kind": "storyboard"}))  # written by a newer bot
    assert run(rt, job) == pipeline.FAILED
    failed = finished(rt, job)
    assert failed.kind == "storyboard" and messages.unknown_kind("storyboard") == failed.error


# -- cancel -----------------------------------------------------------------------
def test_a_job_cancelled_before_it_starts_never_samples(rt: WorkerRuntime) -> None:
    job = queued(rt)
    rt.store.request_cancel(job.id)
    assert run(rt, job) == pipeline.CANCELLED
    assert finished(rt, job).error == messages.CANCELLED_BEFORE_START
    assert rt.engine.requests == []


def test_a_running_job_stops_at_the_next_step_when_cancelled(
    rt: WorkerRuntime, engine: FakeEngine, discord: FakeDiscord
) -> None:
    job = queued(rt, reply=discord_reply())
    engine.at_step = lambda step: rt.store.request_cancel(job.id) if step == 2 else None
    assert run(rt, job) == pipeline.CANCELLED
    cancelled = finished(rt, job)
    assert cancelled.state == JobState.CANCELLED and cancelled.error == messages.CANCELLED_WHILE_RUNNING
    assert 0 < cancelled.progress < 1
    assert discord.requests[-1].payload["content"].endswith("failed: cancelled while running.")


# -- attempts that are not current -------------------------------------------------
def test_a_stale_attempt_writes_nothing(rt: WorkerRuntime) -> None:
    job = queued(rt)
    rt.store.update(job.id, attempts=1)  # re-queued meanwhile: attempt 1 is the current one
    assert run(rt, job, attempt=0) == pipeline.STALE
    assert finished(rt, job).state == JobState.QUEUED and rt.engine.requests == []


def test_a_worker_whose_job_was_handed_on_mid_run_stops_writing(rt: WorkerRuntime, discord: FakeDiscord) -> None:
    job = queued(rt, reply=discord_reply())

    def taken_over(step: int) -> None:
        if step == 2:  # its lease lapsed: the job was re-queued as attempt 1
            rt.store.requeue(rt.store.get(job.id), reason="test: lease lapsed")

    rt.engine.at_step = taken_over
    assert run(rt, job, attempt=0) == pipeline.STALE
    after = finished(rt, job)
    assert (after.state, after.attempts, after.progress) == (JobState.QUEUED, 1, 0.0)
    assert rt.store.images.grid(job.id) is None and rt.store.claims.delivered(job.id) is None
    assert not any(r.files for r in discord.requests if "daydream_" in str(r.files))  # no result posted


def test_a_job_without_a_record_is_skipped(rt: WorkerRuntime) -> None:
    assert pipeline.run(rt, "f" * 32, 0) == pipeline.MISSING


# -- progress -----------------------------------------------------------------------
def test_progress_is_stored_and_previews_are_made_only_when_an_edit_is_due(
    rt: WorkerRuntime, engine: FakeEngine, discord: FakeDiscord
) -> None:
    engine.steps = 6
    rt.delivery.settings = dataclasses.replace(rt.settings, progress_interval_s=3600.0)
    seen: list[float] = []
    engine.at_step = lambda _step: seen.append(rt.store.get(job.id).progress)
    job = queued(rt, reply=discord_reply())
    assert run(rt, job) == pipeline.DONE
    assert seen[0] == 0.0 and seen[-1] > 0  # the record follows the sampling
    edits = [r for r in discord.requests if r.payload and r.payload.get("content", "").endswith("%)")]
    assert len(edits) == 1  # one edit in the interval…
    assert engine.previews_made == 1  # …so one preview was made, not six


def test_a_preview_is_a_small_png(rt: WorkerRuntime, discord: FakeDiscord) -> None:
    run(rt, queued(rt, reply=discord_reply()))
    previews = [r.files["files[0]"][1] for r in discord.requests if "preview.png" in str(r.files)]
    assert previews
    assert all(max(decode_image(p).size) <= pipeline.PREVIEW_SIDE for p in previews)
    assert isinstance(decode_image(previews[0]), Image.Image)


def test_a_result_discord_fails_to_take_is_posted_later_and_once(rt: WorkerRuntime, discord: FakeDiscord) -> None:
    async def no_wait(_seconds: float) -> None:
        return None

    rt.delivery.rest.sleep = no_wait  # the in-job backoff (its waits are rest's own tests)
    reply = dataclasses.replace(discord_reply(), token_expires_at=time.time() - 1)  # a channel post
    path = f"/channels/{CHANNEL_ID}/messages"
    discord.fail("POST", path, *[Canned(503, {"message": "503: Service Unavailable"})] * 5)
    job = queued(rt, reply=reply)
    assert run(rt, job) == pipeline.DONE
    done = finished(rt, job)
    assert done.state == JobState.DONE and "503" in done.undelivered
    assert rt.store.redeliveries.due() == []  # the next try is not due yet…
    later = time.time() + redelivery.BACKOFF_S[0] + 1
    assert sweeps.redeliver_due(rt.store, rt.delivery.result, now=later) == [job.id]  # …and then it is
    posts = [r for r in discord.requests if r.method == "POST" and r.path == path]
    assert len(posts) == 6 and posts[-1].files  # five refused in the job, the sixth with the grid
    assert finished(rt, job).undelivered is None and rt.store.claims.delivered(job.id) is not None
    assert sweeps.redeliver_due(rt.store, rt.delivery.result, now=later + 3600) == []  # nothing left to post
    assert len([r for r in discord.requests if r.method == "POST" and r.path == path]) == 6


def test_a_post_that_keeps_failing_is_given_up_with_the_reason_kept(rt: WorkerRuntime, discord: FakeDiscord) -> None:
    async def no_wait(_seconds: float) -> None:
        return None

    rt.delivery.rest.sleep = no_wait
    reply = dataclasses.replace(discord_reply(), token_expires_at=time.time() - 1)
    path = f"/channels/{CHANNEL_ID}/messages"
    tries = len(redelivery.BACKOFF_S) + 1
    discord.fail("POST", path, *[Canned(502, {"message": "Bad Gateway"})] * 5 * tries)
    job = queued(rt, reply=reply)
    assert run(rt, job) == pipeline.DONE
    now = time.time()
    for _ in range(len(redelivery.BACKOFF_S)):
        now += max(redelivery.BACKOFF_S) + 1
        assert sweeps.redeliver_due(rt.store, rt.delivery.result, now=now) == []
    assert rt.store.redeliveries.get(job.id) is None and rt.store.redeliveries.due(now + 10**6) == []
    assert "502" in finished(rt, job).undelivered and rt.store.claims.delivered(job.id) is None


def test_a_result_discord_refuses_for_good_keeps_the_job_done(rt: WorkerRuntime, discord: FakeDiscord) -> None:

    reply = dataclasses.replace(discord_reply(), token_expires_at=time.time() - 1)  # past the 15 minutes
    discord.fail("POST", f"/channels/{CHANNEL_ID}/messages", Canned(403, {"code": 50013, "message": "Missing"}))
    job = queued(rt, reply=reply)
    assert run(rt, job) == pipeline.DONE
    done = finished(rt, job)
    assert done.state == JobState.DONE and "lacks Send Messages" in done.undelivered
    assert rt.store.images.grid(job.id) is not None  # `daydream job` can still write it
    assert done.public()["undelivered"] == done.undelivered
    assert rt.store.redeliveries.get(job.id) is None  # refused for good: no later try
