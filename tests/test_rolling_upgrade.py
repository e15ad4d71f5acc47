"""A rolling upgrade: this version and the previous one share one Redis. The
previous version is the real code, the repository's tree just before workers
announced their version (`git archive` of that commit into a temporary
folder), run as its own processes: its worker serves this version's jobs
(with fields it does not know, which survive its writes), and this version's
worker serves the jobs its CLI submits; each side reads the other's
heartbeats."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import keys, messages, reports
from shared.job import JobState
from shared.params import Params
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import make_job
from tests.support.workers import ROOT, start_worker, stop_worker, wait_until, worker_env

pytestmark = pytest.mark.slow

MARKER = "shared/version.py"  # added with the version announcement: its parent is the previous version


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous version's tree, extracted from git."""

    def git(*args: str) -> bytes:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=True).stdout

    added = git("log", "--format=%H", "--diff-filter=A", "--", MARKER).decode().split()
    if not added and git("rev-parse", "--is-shallow-repository").strip() == b"true":
        git("fetch", "-q", "--unshallow")  # a CI's shallow clone: its origin has the history
        added = git("log", "--format=%H", "--diff-filter=A", "--", MARKER).decode().split()
    assert added, f"git knows no commit that added {MARKER} (a shallow clone?)"
    tree = tmp_path_factory.mktemp("previous")
    with tarfile.open(fileobj=io.BytesIO(git("archive", f"{added[-1]}^")), mode="r") as tar:
        tar.extractall(tree, filter="data")
    assert not (tree / MARKER).exists()
    return tree


def previous_env(tree: Path, redis_url: str) -> dict[str, str]:
    return {**worker_env(redis_url), "PYTHONPATH": str(tree)}


def start_previous_worker(tree: Path, redis_url: str, name: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "daydream", "worker", "--name", name, "--device", "cpu"],
        cwd=tree,
        env=previous_env(tree, redis_url),
    )
    store = JobStore(Settings(redis_url=redis_url))
    wait_until(lambda: any(w["name"] == name for w in store.dispatch.live_workers()), 180, name, proc)
    return proc


@pytest.fixture
def store(redis_url: str) -> Iterator[JobStore]:
    store = JobStore(Settings(redis_url=redis_url))
    yield store
    store.redis.close()


def test_the_previous_worker_serves_this_versions_jobs_and_keeps_their_new_fields(previous, redis_url, store) -> None:
    proc = start_previous_worker(previous, redis_url, "previous-worker")
    try:
        [beat] = store.dispatch.live_workers()
        assert "version" not in beat  # it is the previous code indeed
        job = make_job(prompt="a red circle", params=Params(steps=4))
        # Fields of a version newer than both, at the top and inside: read past, written back.
        job.unknown["priority_hint"] = "soon"
        job.params.unknown["style"] = "raw"
        store.submit(job)
        done = store.wait(job.id, timeout=120)
        assert done.state == JobState.DONE and done.worker == "previous-worker", done.error
        assert store.images.grid(job.id)
        raw = json.loads(store.redis.get(keys.job(job.id)) or b"{}")
        assert raw["priority_hint"] == "soon" and raw["params"]["style"] == "raw"
        # /admin workers and daydream status read its heartbeat, which lacks this version's figures
        # (the one it sends after the job, once it has counted it).
        wait_until(lambda: any(w.get("jobs_done") for w in store.dispatch.live_workers()), 30, "its beat", proc)
        [report] = reports.workers_report(store)
        assert report.version is None and report.steps_per_s is None and report.jobs_done == 1
        assert "previous-worker" in messages.workers_report([report])
    finally:
        stop_worker(proc)


def test_this_versions_worker_serves_the_previous_clis_jobs(previous, redis_url, store) -> None:
    proc = start_worker(redis_url, "current-worker")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "daydream", "imagine", "a blue square --steps 4", "--json", "-q"],
            cwd=previous, env=previous_env(previous, redis_url), capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        record = json.loads(result.stdout.strip().splitlines()[-1])
        assert record["state"] == "done" and record["worker"] == "current-worker"
        # The previous CLI's status reads this version's heartbeat (more fields than it knows).
        status = subprocess.run(
            [sys.executable, "-m", "daydream", "status", "--json"],
            cwd=previous, env=previous_env(previous, redis_url), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        [beat] = json.loads(status.stdout)["workers"]
        assert beat["name"] == "current-worker" and beat["version"] and beat["capacity"] == 1
    finally:
        stop_worker(proc)
