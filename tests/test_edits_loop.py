"""Vary (Region), Zoom Out, Pan and Make Square end to end: the `daydream`
twins → Redis → a real worker process on the embedded model → four images.
Measured on the images themselves: their sizes, the kept part near the
source, the painted part changed (and different in each of the four)."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from daydream.redis_server import RedisServer
from shared.canvas import cell_box
from shared.job import JobRecord
from shared.settings import Settings
from shared.store import JobStore
from tests.support.workers import ROOT, start_worker, stop_worker, worker_env

pytestmark = pytest.mark.slow

KEPT_MAX = 1.0  # mean |Δ| (0–255) the kept part may differ from the source: the source's pixels are pasted back
PAINTED_MIN = 3.0  # mean |Δ| between two of the four images where they are painted


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as s:
        yield s


@pytest.fixture(scope="module")
def worker(server: RedisServer) -> Iterator[subprocess.Popen]:
    proc = start_worker(server.url, "edit-worker")
    yield proc
    stop_worker(proc)


@pytest.fixture(scope="module")
def store(server: RedisServer) -> JobStore:
    return JobStore(Settings(redis_url=server.url))


def daydream(url: str, *args: str) -> JobRecord:
    r = subprocess.run(
        [sys.executable, "-m", "daydream", *args, "--json", "-q"],
        cwd=ROOT, env=worker_env(url), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return JobRecord.from_json(r.stdout.strip().splitlines()[-1])


def images(store: JobStore, job: JobRecord) -> list[np.ndarray]:
    out = []
    for i in range(1, job.images + 1):
        data = store.images.image(job.id, i)
        assert data is not None
        out.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32))
    return out


@pytest.fixture(scope="module")
def upscaled(server: RedisServer, worker, store: JobStore) -> tuple[JobRecord, np.ndarray]:
    grid = daydream(server.url, "imagine", "a red star on a blue background --seed 5 --steps 8")
    up = daydream(server.url, "upscale", grid.id, "2")
    assert (up.width, up.height) == (128, 128)
    return up, images(store, up)[0]


def differ_where(tiles: list[np.ndarray], where: np.ndarray) -> float:
    """The smallest mean |Δ| between two of the images over `where`."""
    return min(np.abs(a - b)[where].mean() for i, a in enumerate(tiles) for b in tiles[i + 1 :])


def test_zoom_out_2x_keeps_the_size_and_puts_the_source_shrunk_in_the_centre(server, store, upscaled) -> None:
    up, source = upscaled
    job = daydream(server.url, "zoom", up.id, "1", "--factor", "2")
    assert job.kind == "zoom" and job.parent_id == up.id and job.images == 4
    tiles = images(store, job)
    assert all(t.shape == (128, 128, 3) for t in tiles)
    shrunk = np.asarray(Image.fromarray(source.astype(np.uint8)).resize((64, 64), Image.Resampling.LANCZOS))
    for t in tiles:
        assert np.abs(t[32:96, 32:96] - shrunk).mean() <= KEPT_MAX
    border = np.ones((128, 128), bool)
    border[32:96, 32:96] = False
    assert differ_where(tiles, border) > PAINTED_MIN


def test_zoom_out_1_5x_with_a_new_aspect_ratio(server, store, upscaled) -> None:
    up, _ = upscaled
    job = daydream(server.url, "zoom", up.id, "1", "--factor", "1.5", "--ar", "3:2")
    w, h = job.width, job.height
    assert w > h and w % 16 == 0 and h % 16 == 0
    assert abs(w * h - 128 * 128) / (128 * 128) < 0.2  # about the same pixel count


@pytest.mark.parametrize(
    ("direction", "size", "kept"),
    [
        ("left", (128, 192), (slice(None), slice(64, 192))),
        ("right", (128, 192), (slice(None), slice(0, 128))),
        ("up", (192, 128), (slice(64, 192), slice(None))),
        ("down", (192, 128), (slice(0, 128), slice(None))),
    ],
)
def test_pan_grows_the_canvas_by_half_and_keeps_the_rest(server, store, upscaled, direction, size, kept) -> None:
    up, source = upscaled
    job = daydream(server.url, "pan", up.id, "1", direction)
    tiles = images(store, job)
    assert all(t.shape[:2] == size for t in tiles)
    for t in tiles:
        assert np.abs(t[kept] - source).mean() <= KEPT_MAX
    new = np.ones(size, bool)
    new[kept] = False
    assert differ_where(tiles, new) > PAINTED_MIN


def test_make_square_outpaints_a_pan_to_one_to_one(server, store, upscaled) -> None:
    up, _ = upscaled
    pan = daydream(server.url, "pan", up.id, "1", "right")
    wide = images(store, pan)[0]
    job = daydream(server.url, "square", pan.id, "1")
    tiles = images(store, job)
    assert all(t.shape == (192, 192, 3) for t in tiles)
    for t in tiles:
        assert np.abs(t[32:160] - wide).mean() <= KEPT_MAX
    new = np.ones((192, 192), bool)
    new[32:160] = False
    assert differ_where(tiles, new) > PAINTED_MIN


def test_vary_region_repaints_its_cells_only(server, store, upscaled) -> None:
    up, source = upscaled
    job = daydream(server.url, "region", up.id, "1", "--cells", "1,2,5,6", "a green circle")
    assert job.prompt == "a green circle" and job.edit is not None and job.edit.cells == (1, 2, 5, 6)
    tiles = images(store, job)
    inside = np.zeros((128, 128), bool)
    for cell in job.edit.cells:
        left, top, right, bottom = cell_box(cell, (128, 128))
        inside[top:bottom, left:right] = True
    for t in tiles:
        assert t.shape == (128, 128, 3)
        assert np.abs(t - source)[~inside].mean() <= KEPT_MAX
        assert np.abs(t - source)[inside].mean() > PAINTED_MIN  # a green circle where a blue sky was
    assert differ_where(tiles, inside) > PAINTED_MIN


def test_a_reroll_of_an_edit_is_the_same_edit_with_new_seeds(server, store, upscaled) -> None:
    up, _ = upscaled
    pan = daydream(server.url, "pan", up.id, "1", "up")
    again = daydream(server.url, "reroll", pan.id)
    assert again.kind == "pan" and again.parent_id == up.id and again.edit == pan.edit
    assert again.seeds != pan.seeds and (again.width, again.height) == (pan.width, pan.height)


def test_edit_mistakes_are_refused_before_queueing(server, worker, upscaled) -> None:
    up, _ = upscaled
    for args, text in (
        (["region", up.id, "1", "--cells", "0,17"], "is not a cell"),
        (["zoom", up.id, "1", "--factor", "3"], "from 1 to 2"),
        (["square", up.id, "1"], "square already"),
        (["pan", up.id, "2", "left"], "Image 2 does not exist"),
    ):
        r = subprocess.run(
            [sys.executable, "-m", "daydream", *args], cwd=ROOT, env=worker_env(server.url),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert r.returncode == 2 and text in r.stderr, (args, r.stderr)
