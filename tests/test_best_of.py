"""Best four of N (worker/best_of.py): how many candidates, from which seeds,
picked by which ranker; end to end through the worker's pipeline with the
real embedded engine: the kept four are the scorer's best in order, their
seeds are recorded and regenerate the same images, and the record and the
result message say what the model understood of the prompt."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from shared import messages
from shared.grid import decode_image
from shared.job import JobKind, JobState, ReplyTarget
from shared.params import Params
from shared.settings import Settings
from shared.store import JobStore
from tests.support.discord_http import CHANNEL_ID, FakeDiscord
from tests.support.fake_engine import FakeEngine, colour_of
from tests.support.jobs import make_job
from worker import best_of, pipeline
from worker.delivery import Delivery
from worker.embedded import scoring
from worker.engines.base import Request
from worker.engines.embedded import EmbeddedEngine
from worker.runtime import WorkerRuntime


def test_chaos_turns_the_candidates_down_to_four() -> None:
    assert [best_of.candidate_count(8, c) for c in (0, 25, 50, 100)] == [8, 7, 6, 4]
    assert best_of.candidate_count(4, 0) == 4  # BEST_OF=4: no ranking
    assert best_of.candidate_count(16, 0) == 16


def test_chaos_is_read_from_a_record_written_by_a_version_that_knows_it() -> None:
    assert best_of.chaos_of(Params()) == 0
    assert best_of.chaos_of(Params(unknown={"chaos": 50})) == 50
    assert best_of.chaos_of(Params(unknown={"chaos": "lots"})) == 0


def test_candidate_seeds_start_with_the_grids_own_and_never_repeat() -> None:
    seeds = best_of.candidate_seeds((1, 2, 3, 4), 8)
    assert seeds[:4] == (1, 2, 3, 4) and len(set(seeds)) == 8
    assert all(0 <= s < 2**32 for s in best_of.candidate_seeds((2**32 - 1, 0, 5, 6), 12))


class RankedFakeEngine(FakeEngine):
    """The fake engine with a ranker that prefers higher seeds (its colour's red channel encodes the seed)."""

    def rank(self, prompt: str, images: list[Image.Image]) -> list[float]:
        return [float(im.getpixel((0, 0))[2]) for im in images]  # blue channel = seed * 53 % 256


def test_the_best_four_are_kept_in_order_with_their_seeds() -> None:
    engine = RankedFakeEngine()
    req = Request.text("a red circle", [1, 2, 3, 4], 64, 64)
    picked = best_of.sample_grid(engine, req, Settings(), Params(), [], None)
    [sampled] = engine.requests
    assert len(sampled.seeds) == 8  # one batch of eight
    blue = {s: colour_of(s)[2] for s in sampled.seeds}
    want = sorted(sampled.seeds, key=lambda s: -blue[s])[:4]
    assert picked.kept_seeds == want
    assert [im.getpixel((0, 0)) for im in picked.images] == [colour_of(s) for s in want]
    # An expired result regenerates from the same batch, and takes the kept seeds' images: no ranking.
    assert picked.candidates == 8
    again = best_of.sample_grid(engine, req, Settings(), Params(), picked.kept_seeds, None, picked.candidates)
    assert engine.requests[-1].seeds == sampled.seeds and again.kept_seeds == want
    assert [im.getpixel((0, 0)) for im in again.images] == [colour_of(s) for s in want]


def test_no_ranker_or_best_of_four_samples_four() -> None:
    plain = FakeEngine()
    best_of.sample_grid(plain, Request.text("x", [1, 2, 3, 4], 64, 64), Settings(), Params(), [], None)
    assert plain.requests[-1].seeds == (1, 2, 3, 4)
    ranked = RankedFakeEngine()
    off = dataclasses.replace(Settings(), best_of=4)
    picked = best_of.sample_grid(ranked, Request.text("x", [1, 2, 3, 4], 64, 64), off, Params(), [], None)
    assert ranked.requests[-1].seeds == (1, 2, 3, 4) and picked.kept_seeds == []


# -- the real embedded engine ------------------------------------------------------
@pytest.fixture(scope="module")
def embedded() -> EmbeddedEngine:
    return EmbeddedEngine()


def test_the_embedded_scorer_ranks_and_the_kept_seeds_regenerate_the_same_images(embedded: EmbeddedEngine) -> None:
    prompt = "左上角有一个小的绿色三角形，背景是白色"  # a small green triangle top left on white
    req = Request.text(prompt, [21, 22, 23, 24], 64, 64, steps=8)
    picked = best_of.sample_grid(embedded, req, Settings(), Params(), [], None)
    assert len(picked.images) == 4 and len(set(picked.kept_seeds)) == 4
    assert picked.scores == sorted(picked.scores, reverse=True)
    # The scores are the scorer's reading against the prompt's.
    assert picked.scores == [embedded.rank(prompt, [im])[0] for im in picked.images]
    # Regenerated from the same batch of candidates: the same images, exactly.
    again = best_of.sample_grid(embedded, req, Settings(), Params(), picked.kept_seeds, None, picked.candidates)
    assert again.kept_seeds == picked.kept_seeds
    for a, b in zip(picked.images, again.images, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_re_ranking_keeps_no_worse_tiles_than_the_first_four(embedded: EmbeddedEngine) -> None:
    prompt = "a small yellow star in the bottom right corner on a purple background"
    req = Request.text(prompt, [31, 32, 33, 34], 64, 64, steps=8)
    first_four = embedded.rank(prompt, embedded.generate(req))
    picked = best_of.sample_grid(embedded, req, Settings(), Params(), [], None)
    assert sum(picked.scores) >= sum(first_four) - 1e-6


@pytest.fixture
def rt(settings: Settings, discord: FakeDiscord, embedded: EmbeddedEngine) -> Iterator[WorkerRuntime]:
    settings = dataclasses.replace(settings, discord_api_base=discord.base, progress_interval_s=0.0)
    store = JobStore(settings)
    runtime = WorkerRuntime(
        settings=settings, store=store, engine=embedded, delivery=Delivery(settings, store), name="w-e", device="cpu"
    )
    yield runtime
    runtime.delivery.close()
    store.redis.close()


def _reply() -> ReplyTarget:
    return ReplyTarget(
        application_id=1111,
        interaction_token="tok",
        token_expires_at=time.time() + 900,
        guild_id=2,
        channel_id=CHANNEL_ID,
    )


def test_a_chinese_job_records_and_says_what_was_understood(rt: WorkerRuntime, discord: FakeDiscord) -> None:
    job = make_job(prompt="蓝色背景上的红色圆形", params=Params(steps=8), reply=_reply())
    rt.store.submit(job, check=False)
    assert pipeline.run(rt, job.id, job.attempts) == pipeline.DONE
    done = rt.store.get(job.id)
    assert done.state == JobState.DONE
    assert done.understood == "a red circle on blue" and not done.out_of_world
    assert len(done.kept_seeds) == 4 and done.candidates == 8
    assert done.public()["understood"] == "a red circle on blue"
    assert done.drawn == done.public()["drawn"] == "a red circle on a blue background"  # the caption it was drawn from
    shown = [rt.store.images.image(job.id, i) for i in range(1, 5)]
    [posted] = [r for r in discord.requests if r.files.get("files[0]", ("",))[0].startswith("daydream_")]
    assert posted.payload["content"] == messages.result(done)
    assert "\nUnderstood: a red circle on blue" in posted.payload["content"]
    # U on that grid after its images expired: regenerated from the kept seeds.
    rt.store.images.forget(job.id)
    up = make_job(
        kind=JobKind.UPSCALE, parent_id=job.id, index=1, seeds=[done.kept_seeds[0]], params=Params(strength=0.25)
    )
    rt.store.submit(up, check=False)
    assert pipeline.run(rt, up.id, up.attempts) == pipeline.DONE
    assert [rt.store.images.image(job.id, i) for i in range(1, 5)] == shown  # the same four, byte for byte
    assert scoring.score_tile(decode_image(shown[0])).background == "blue"


def test_a_prompt_outside_the_world_is_told_what_the_model_can_draw(rt: WorkerRuntime, discord: FakeDiscord) -> None:
    job = make_job(prompt="a lighthouse at dusk", params=Params(steps=4), reply=_reply())
    rt.store.submit(job, check=False)
    assert pipeline.run(rt, job.id, job.attempts) == pipeline.DONE
    done = rt.store.get(job.id)
    assert done.out_of_world and done.kept_seeds == []  # nothing to rank against
    line = messages.result(done).split("\n")[1]
    assert "circles, squares, triangles or stars" in line and "MODEL=" in line
