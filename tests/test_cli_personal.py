"""`daydream settings|prefer|info|show|admin defaults`, the CLI twins, as real
subprocesses against the suite's redis-server: they change what the bot and
`daydream imagine` read."""

from __future__ import annotations

import json
import subprocess
import sys

from shared.job import JobState
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import announce_worker, make_job
from tests.support.workers import ROOT, worker_env


def daydream(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daydream", *args],
        cwd=ROOT,
        env=worker_env(redis_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_twins_set_what_imagine_reads(redis_url: str) -> None:
    store = JobStore(Settings(redis_url=redis_url))
    announce_worker(store)
    r = daydream(redis_url, "settings", "--user", "5", "set", "stylize", "300")
    assert r.returncode == 0 and "Stylize: 300" in r.stdout, r.stderr
    r = daydream(redis_url, "settings", "--user", "5", "set", "quality", "3")
    assert r.returncode == 2 and "Invalid parameter `--quality 3`" in r.stderr
    assert daydream(redis_url, "prefer", "--user", "5", "suffix", "at dusk").returncode == 0
    r = daydream(redis_url, "prefer", "--user", "5", "option", "set", "poster", "--ar 2:3 --c 20")
    assert r.returncode == 0 and "`--poster` → `--ar 2:3 --c 20`" in r.stdout, r.stderr
    r = daydream(redis_url, "admin", "defaults", "--channel", "77", "--defaults", "--w 100", "--limit", "max_jobs=3")
    assert r.returncode == 0 and "max_jobs = 3" in r.stdout, r.stderr
    announce_worker(store)  # again: its heartbeat's TTL may have run out behind the slow subprocesses
    r = daydream(redis_url, "imagine", "--dry-run", "a boat --poster", "--user", "5", "--channel", "77")
    [line] = [json.loads(x) for x in r.stdout.splitlines()]
    assert (line["prompt"], line["stylize"], line["chaos"], line["weird"]) == ("a boat at dusk", 300, 20, 100)
    assert (line["width"], line["height"]) == (48, 80)  # 2:3 on the embedded model
    r = daydream(redis_url, "imagine", "--dry-run", "{a, b, c, d} boat", "--channel", "77")
    assert r.returncode == 2 and "more than 3 prompts; this server allows 3 jobs per command" in r.stderr
    r = daydream(redis_url, "info", "--user", "5")
    assert r.returncode == 0 and "none waiting or running" in r.stdout and "Suffix: at dusk" in r.stdout


def test_show_prints_the_prompt_as_text_and_writes_the_result(redis_url: str, tmp_path) -> None:
    store = JobStore(Settings(redis_url=redis_url))
    job = make_job(state=JobState.DONE, images=4, seeds=[7, 8, 9, 10])
    store.save(job)
    store.images.put(job.id, [b"a"] * 4, b"grid-bytes")
    out = tmp_path / "grid.png"
    r = daydream(redis_url, "show", job.id, "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "prompt: a red circle" in r.stdout and "seeds: 7, 8, 9, 10" in r.stdout
    assert out.read_bytes() == b"grid-bytes"
