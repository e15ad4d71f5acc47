"""The `daydream` command as a new user meets it: every mistake answered with
one clear line and the exit code of its class, before anything is queued or
loaded. Real subprocesses against the suite's redis-server; no worker (a
heartbeat stands in where a job must be accepted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from daydream.redis_server import free_port
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import announce_worker
from tests.support.workers import ROOT, worker_env


def daydream(redis_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daydream", *args],
        cwd=ROOT,
        env=worker_env(redis_url, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    return lines[-1]


def test_a_user_id_must_be_a_discord_id(redis_url: str) -> None:
    r = daydream(redis_url, "imagine", "a cat", "--user", "-5")
    assert r.returncode == 2 and "is not a Discord user id" in one_line(r)


def test_an_unwritable_output_is_refused_before_queueing(redis_url: str, tmp_path: Path) -> None:
    store = JobStore(Settings(redis_url=redis_url))
    announce_worker(store)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    r = daydream(redis_url, "imagine", "a cat", "-o", str(blocked / "grid.png"))
    assert r.returncode == 2 and "cannot write there" in one_line(r)
    r = daydream(redis_url, "imagine", "a cat", "-o", str(tmp_path))
    assert r.returncode == 2 and "that is a folder" in one_line(r)
    assert store.recent(1) == []


def test_reaching_the_job_limit_is_the_users_mistake(redis_url: str) -> None:
    store = JobStore(Settings(redis_url=redis_url))
    announce_worker(store)
    limit = Settings().max_queued_per_user
    for n in range(limit):
        assert daydream(redis_url, "imagine", f"a cat {n}", "--user", "7", "--detach").returncode == 0
    r = daydream(redis_url, "imagine", "one too many", "--user", "7", "--detach")
    assert r.returncode == 2  # not 1: no job failed
    assert f"Queue full: you already have {limit} jobs waiting" in one_line(r)


def test_redis_down_is_exit_4_and_says_nothing_of_a_job(tmp_path: Path) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    for args in (["status"], ["job", "a" * 32], ["imagine", "a cat"]):
        r = daydream(nowhere, *args)
        assert r.returncode == 4, args
        line = one_line(r)
        assert "cannot be reached" in line
        assert ("not queued" in line) == (args[0] == "imagine"), line


def test_a_device_this_machine_lacks_is_refused_before_the_model_loads(redis_url: str) -> None:
    for device, hint in (("bogus", "not a device torch knows"), ("mps", "no Apple GPU"), ("cuda:0", "no CUDA GPU")):
        r = daydream(redis_url, "worker", "--device", device, "--burst")
        assert r.returncode == 2, r.stderr
        assert hint in one_line(r)
        assert "loading model" not in r.stderr  # refused first


def test_a_model_folder_that_is_not_there_says_so(redis_url: str, tmp_path: Path) -> None:
    r = daydream(redis_url, "worker", "--burst", MODEL=str(tmp_path / "nope"))
    assert r.returncode == 1
    line = one_line(r)
    assert "there is no folder" in line and "huggingface.co" not in line


def test_fast_relax_turbo_set_a_members_lane_and_turbo_needs_a_grant(redis_url: str) -> None:
    store = JobStore(Settings(redis_url=redis_url))
    r = daydream(redis_url, "relax", "--user", "8")
    assert r.returncode == 0 and "relaxed lane" in r.stdout
    assert store.policy.default_lane(8) == "relax"
    r = daydream(redis_url, "turbo", "--user", "8")
    assert r.returncode == 2 and "an admin granted it to" in one_line(r)
    assert store.policy.default_lane(8) == "relax"  # unchanged
    assert daydream(redis_url, "admin", "lane", "turbo", "--user", "8").returncode == 0
    assert daydream(redis_url, "turbo", "--user", "8").returncode == 0
    assert store.policy.default_lane(8) == "turbo"
    r = daydream(redis_url, "fast")
    assert r.returncode == 2 and "--user" in r.stderr
