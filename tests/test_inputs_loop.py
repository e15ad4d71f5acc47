"""Image prompts, /blend and /describe end to end: the `daydream` twins → Redis →
a real worker process on the embedded model. Measured on the pictures: an image
prompt at --iw 3 keeps the image's colours where --iw 0 follows the text; a
blend's colours come from its inputs, both of them; /describe of a picture the
model drew names its colours and its shape."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from daydream.redis_server import RedisServer
from shared.job import JobRecord
from shared.settings import Settings
from shared.store import JobStore
from tests.support.workers import ROOT, start_worker, stop_worker, worker_env
from worker.embedded import scenes
from worker.embedded.scoring import nearest_colour, score_tile

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as s:
        yield s


@pytest.fixture(scope="module")
def worker(server: RedisServer) -> Iterator[subprocess.Popen]:
    proc = start_worker(server.url, "input-worker")
    yield proc
    stop_worker(proc)


@pytest.fixture(scope="module")
def store(server: RedisServer) -> JobStore:
    return JobStore(Settings(redis_url=server.url))


def run(url: str, *args: str, json_out: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daydream", *args, *(["--json"] if json_out else []), "-q"],
        cwd=ROOT, env=worker_env(url), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def record(r: subprocess.CompletedProcess[str]) -> JobRecord:
    assert r.returncode == 0, r.stderr
    return JobRecord.from_json(r.stdout.strip().splitlines()[-1])


def images(store: JobStore, job: JobRecord) -> list[Image.Image]:
    return [Image.open(io.BytesIO(store.images.image(job.id, i))).convert("RGB") for i in range(1, job.images + 1)]


def scene_file(folder: Path, name: str, scene: scenes.Scene, size: int = 256) -> Path:
    path = folder / name
    scenes.render(scene, size).save(path)
    return path


def colour_shares(image: Image.Image) -> dict[str, float]:
    """The share of the picture's pixels nearest each palette colour."""
    arr = np.asarray(image.resize((32, 32)), dtype=np.float32).reshape(-1, 3)
    names = [nearest_colour(p) for p in arr]
    return {c: names.count(c) / len(names) for c in set(names)}


def test_an_image_prompt_at_iw_3_keeps_its_colours_and_iw_0_follows_the_text(server, worker, store, tmp_path) -> None:
    yellow_on_black = scenes.Scene("black", (scenes.SceneObject("yellow", "circle", "centre", "large"),))
    path = scene_file(tmp_path, "prompt.png", yellow_on_black)
    text = "a red star on a blue background --seed 3"
    near = record(run(server.url, "imagine", text, "--image", str(path), "--iw", "3"))
    far = record(run(server.url, "imagine", text, "--image", str(path), "--iw", "0"))
    assert near.inputs and near.inputs[0].width == 256 and near.params.image_weight == 3
    assert all(score_tile(im).background == "black" for im in images(store, near))
    assert all(score_tile(im).background == "blue" for im in images(store, far))


def test_blend_draws_its_colours_from_both_inputs(server, worker, store, tmp_path) -> None:
    a = scene_file(tmp_path, "a.png", scenes.Scene("white", (scenes.SceneObject("red", "circle", "centre", "large"),)))
    b = scene_file(
        tmp_path, "b.webp", scenes.Scene("blue", (scenes.SceneObject("yellow", "square", "centre", "medium"),))
    )
    job = record(run(server.url, "blend", str(a), str(b), "--dimensions", "landscape"))
    assert job.kind == "blend" and len(job.inputs) == 2 and job.images == 4
    assert job.width > job.height  # landscape
    inputs = {"white", "red", "blue", "yellow"}
    for image in images(store, job):
        shares = colour_shares(image)
        assert sum(v for c, v in shares.items() if c in inputs) > 0.9, shares  # colours from the inputs...
        assert shares.get("white", 0) > 0.1 and shares.get("blue", 0) > 0.1, shares  # ...from both of them


def test_describe_names_the_colours_and_shape_of_a_picture_the_model_drew(server, worker, store, tmp_path) -> None:
    drawn = record(run(server.url, "imagine", "a red star on a blue background --seed 5"))
    path = tmp_path / "drawn.png"
    images(store, drawn)[0].save(path)
    job = record(run(server.url, "describe", str(path)))
    assert job.kind == "describe" and len(job.described) == 4
    assert job.described[0] == "a red star on a blue background", job.described  # the plain reading first
    for prompt in job.described[1:]:  # then other wordings of the same reading, in the model's own synonyms
        assert any(w in prompt for w in scenes.SHAPE_WORDS["star"]), prompt
        assert any(w in prompt for w in scenes.COLOUR_WORDS["red"]), prompt
        assert any(w in prompt for w in scenes.COLOUR_WORDS["blue"]), prompt
    # 🔄: the same image (read where the first /describe stored it), the same reading, other seeds.
    again = record(run(server.url, "reroll", job.id))
    assert again.kind == "describe" and again.parent_id == job.id and again.described[0] == job.described[0]
    # Without --json: the four prompts, numbered.
    plain = run(server.url, "describe", str(path), json_out=False)
    assert plain.returncode == 0, plain.stderr
    assert [line.split(". ", 1)[0] for line in plain.stdout.strip().splitlines()] == ["1", "2", "3", "4"]


def test_a_bad_input_file_is_refused_before_anything_is_queued(server, worker, store, tmp_path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    before = len(store.recent(100))
    for args, words in (
        (["describe", str(text)], "not an image Daydream reads"),
        (["blend", str(text)], "not an image Daydream reads"),
        (["imagine", "a red star --iw 2"], "`--iw` weighs image prompts"),
        (["imagine", "https://example.com/a.png a red star"], "with `--image FILE`"),
    ):
        r = run(server.url, *args, json_out=False)
        assert r.returncode == 2 and words in r.stderr, (args, r.stderr)
    one = scene_file(tmp_path, "one.png", scenes.Scene("blue", ()))
    r = run(server.url, "blend", str(one), json_out=False)
    assert r.returncode == 2 and "mixes 2 to 5 images; it got 1" in r.stderr
    assert len(store.recent(100)) == before
