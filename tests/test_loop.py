"""The /imagine loop end to end without Discord: CLI → Redis → a real worker
process (real diffusers/torch path) → grid PNG."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from daydream.redis_server import RedisServer
from shared.grid import split_grid
from shared.settings import Settings
from shared.store import JobStore
from tests.support.workers import ROOT, start_worker, stop_worker, wait_until, worker_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loop_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def worker(loop_redis: RedisServer) -> Iterator[subprocess.Popen]:
    proc = start_worker(loop_redis.url, "loop-worker")
    yield proc
    stop_worker(proc)


def daydream(redis_url: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daydream", *args],
        cwd=ROOT,
        env=worker_env(redis_url),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_imagine_produces_a_grid_of_four_different_images(loop_redis, worker, tmp_path):
    out = tmp_path / "grid.png"
    result = daydream(
        loop_redis.url, "imagine", "a red circle on a blue background --seed 11", "-o", str(out), "--json"
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["state"] == "done"
    assert record["kind"] == "imagine"
    assert record["seeds"] == [11, 12, 13, 14]
    assert record["worker"] == "loop-worker"
    for key in ("id", "user_id", "prompt", "parent_id", "index", "created_at", "started_at", "finished_at", "error"):
        assert key in record
    assert record["created_at"] <= record["started_at"] <= record["finished_at"]
    grid = Image.open(out)
    assert grid.format == "PNG"
    w, h = record["width"], record["height"]
    assert grid.size == (2 * w, 2 * h)
    tiles = [np.asarray(t, dtype=np.float32) for t in split_grid(grid.convert("RGB"))]
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(tiles[i] - tiles[j]).mean() > 1.0, f"tiles {i} and {j} are the same"


def test_second_job_reuses_the_resident_model(loop_redis, worker, tmp_path):
    store = JobStore(Settings(redis_url=loop_redis.url))
    first = daydream(loop_redis.url, "imagine", "a yellow star on a black background --steps 6", "--json", "-q")
    second = daydream(
        loop_redis.url, "imagine", "a green square on a white background --ar 3:2 --steps 6", "--json", "-q"
    )
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    rec = json.loads(second.stdout.strip().splitlines()[-1])
    assert rec["width"] > rec["height"]  # --ar 3:2 reached the worker
    # The worker counts a job after recording it done: wait for its heartbeat to say so.
    info = wait_until(
        lambda: next(
            (w for w in store.dispatch.live_workers() if w["name"] == "loop-worker" and w["jobs_done"] >= 2), None
        ),
        30,
        "the worker's heartbeat to count both jobs",
    )
    assert info["model_loads"] == 1
    assert info["pid"] == worker.pid  # the same process: no fork per job


def test_same_seed_gives_the_same_grid(loop_redis, worker):
    store = JobStore(Settings(redis_url=loop_redis.url))
    ids = []
    for _ in range(2):
        r = daydream(
            loop_redis.url, "imagine", "a purple triangle on an orange background --seed 5 --steps 6", "--json", "-q"
        )
        assert r.returncode == 0, r.stderr
        ids.append(json.loads(r.stdout.strip().splitlines()[-1])["id"])
    a, b = (np.asarray(Image.open(io.BytesIO(store.images.grid(i)))) for i in ids)
    assert np.array_equal(a, b)


def test_detach_returns_the_queued_record_and_job_shows_the_result(loop_redis, worker, tmp_path):
    r = daydream(loop_redis.url, "imagine", "a white circle on a green background --steps 6", "--detach", "--json")
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout)
    assert record["state"] == "queued"
    store = JobStore(Settings(redis_url=loop_redis.url))
    done = store.wait(record["id"], timeout=120)
    assert done.state == "done"
    out = tmp_path / "r.png"
    shown = daydream(loop_redis.url, "job", record["id"], "--json", "-o", str(out))
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["state"] == "done"
    assert Image.open(out).size == (2 * done.width, 2 * done.height)


def test_status_lists_the_worker_and_recent_jobs(loop_redis, worker):
    r = daydream(loop_redis.url, "status", "--json")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert [w["name"] for w in status["workers"]] == ["loop-worker"]
    assert "queue_depth" in status


def test_bad_prompt_is_rejected_with_a_clear_message(loop_redis):
    r = daydream(loop_redis.url, "imagine", "   ")
    assert r.returncode == 2
    assert "prompt is empty" in r.stderr
    r = daydream(loop_redis.url, "imagine", "a cat --ar 16/9")
    assert r.returncode == 2
    assert "Invalid parameter `--ar 16/9`: use two whole numbers W:H, like --ar 16:9." in r.stderr


def test_prompt_too_long_for_the_model_is_refused_before_queueing(loop_redis, worker):
    store = JobStore(Settings(redis_url=loop_redis.url))
    before = store.recent(1)
    long_prompt = " ".join(["a red circle and a blue square"] * 12)
    r = daydream(loop_redis.url, "imagine", long_prompt, "--json", "-q")
    assert r.returncode == 2, r.stderr  # the user's to fix, at once: not a job that failed after its wait
    assert "tokens long" in r.stderr and "reads at most 32" in r.stderr and "Shorten it" in r.stderr
    assert store.recent(1) == before  # nothing was queued


def test_no_worker_alive_fails_within_the_timeout(tmp_path):
    with RedisServer(appendonly=False) as server:
        r = daydream(server.url, "imagine", "a red circle", "--worker-timeout", "1", "--json")
        assert r.returncode == 3
        assert "No worker is alive" in r.stderr
        store = JobStore(Settings(redis_url=server.url))
        assert store.dispatch.depth() == 0  # nothing waits to run hours later
        assert store.recent(1) == []  # refused before a job was recorded


def test_redis_unreachable_is_a_clear_error():
    from daydream.redis_server import free_port

    r = daydream(f"redis://127.0.0.1:{free_port()}/0", "imagine", "a red circle")
    assert r.returncode == 4
    assert "cannot be reached" in r.stderr


def _done(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["state"] == "done", record
    return record


def _tiles(store: JobStore, job_id: str) -> list[np.ndarray]:
    grid = Image.open(io.BytesIO(store.images.grid(job_id))).convert("RGB")
    return [np.asarray(t, dtype=np.float32) for t in split_grid(grid)]


@pytest.fixture(scope="module")
def parent(loop_redis, worker) -> dict:
    return _done(
        daydream(loop_redis.url, "imagine", "a blue star on a yellow background --seed 3 --steps 8", "--json", "-q")
    )


def test_upscale_doubles_a_tile_and_links_to_its_parent(loop_redis, worker, parent, tmp_path):
    out = tmp_path / "u2.png"
    child = _done(daydream(loop_redis.url, "upscale", parent["id"], "2", "-o", str(out), "--json", "-q"))
    assert child["kind"] == "upscale"
    assert (child["parent_id"], child["index"]) == (parent["id"], 2)
    assert child["seeds"] == [parent["seeds"][1]]
    assert Image.open(out).size == (2 * parent["width"], 2 * parent["height"])
    assert child["images"] == 1


def test_variations_stay_close_to_their_source_tile(loop_redis, worker, parent):
    store = JobStore(Settings(redis_url=loop_redis.url))
    child = _done(daydream(loop_redis.url, "vary", parent["id"], "3", "--subtle", "--json", "-q"))
    assert child["kind"] == "variation" and child["index"] == 3 and child["parent_id"] == parent["id"]
    assert child["params"]["strength"] == pytest.approx(0.4)
    source = _tiles(store, parent["id"])
    variations = _tiles(store, child["id"])
    for v in variations:
        distances = [np.abs(v - s).mean() for s in source]
        assert int(np.argmin(distances)) == 2, distances


def test_reroll_keeps_the_prompt_with_new_seeds(loop_redis, worker, parent):
    store = JobStore(Settings(redis_url=loop_redis.url))
    child = _done(daydream(loop_redis.url, "reroll", parent["id"], "--json", "-q"))
    assert child["kind"] == "reroll" and child["prompt"] == parent["prompt"]
    assert set(child["seeds"]).isdisjoint(parent["seeds"])
    assert child["params"]["seed"] is None
    a, b = _tiles(store, parent["id"]), _tiles(store, child["id"])
    assert all(np.abs(x - y).mean() > 1.0 for x, y in zip(a, b, strict=True))


def test_expired_images_are_regenerated_from_seeds(loop_redis, worker, parent):
    store = JobStore(Settings(redis_url=loop_redis.url))
    first = _done(daydream(loop_redis.url, "upscale", parent["id"], "4", "--json", "-q"))
    kept = store.images.image(parent["id"], 4)
    # Storage TTL passed: the parent's images are gone.
    store.images.forget(parent["id"])
    second = _done(daydream(loop_redis.url, "upscale", parent["id"], "4", "--json", "-q"))
    assert store.images.image(parent["id"], 4) == kept  # regenerated bit for bit
    a = np.asarray(Image.open(io.BytesIO(store.images.image(first["id"], 1))))
    b = np.asarray(Image.open(io.BytesIO(store.images.image(second["id"], 1))))
    assert np.array_equal(a, b)


def test_unknown_parent_and_bad_index_are_clear_errors(loop_redis, worker, parent):
    r = daydream(loop_redis.url, "upscale", "0" * 32, "1")
    assert r.returncode == 2 and "No job" in r.stderr
    r = daydream(loop_redis.url, "upscale", parent["id"], "7")
    assert r.returncode == 2 and "Image 7 does not exist" in r.stderr
