"""`daydream worker --devices`: one real worker process per device, supervised
— a killed one starts again and the fleet serves on, SIGTERM stops them all
together, a settings error stops the lot, and none outlives a killed
supervisor. Run with `--devices cpu,cpu` (two CPU workers) on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from daydream.supervisor import parse_devices
from shared.errors import ConfigError
from shared.job import JobState
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import make_job
from tests.support.workers import ROOT, wait_until, worker_env

START_S = 240  # two models loading on a busy 2-core machine


def supervise(redis_url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "daydream", "worker", *args], cwd=ROOT, env=worker_env(redis_url, CPU_THREADS="1")
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) is gone for our purposes.
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] != "Z"


def workers_by_name(store: JobStore) -> dict[str, dict]:
    return {w["name"]: w for w in store.dispatch.live_workers()}


def test_devices_are_checked_before_any_worker_starts() -> None:
    assert parse_devices("cpu,cpu") == ["cpu", "cpu"]
    assert parse_devices(" cpu ") == ["cpu"]
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        parse_devices("all")  # this machine has none
    with pytest.raises(ConfigError, match="cuda:1"):
        parse_devices("cpu,cuda:1")
    with pytest.raises(ConfigError, match="names no device"):
        parse_devices(",")


@pytest.mark.slow
def test_a_killed_worker_starts_again_and_sigterm_stops_them_together(redis_url) -> None:
    store = JobStore(Settings(redis_url=redis_url))
    sup = supervise(redis_url, "--devices", "cpu,cpu", "--name", "sup")
    try:
        first = wait_until(
            lambda: (w := workers_by_name(store)).keys() >= {"sup.0", "sup.1"} and w, START_S, "two workers", sup
        )
        assert {first["sup.0"]["device"], first["sup.1"]["device"]} == {"cpu"}
        killed, kept = first["sup.0"]["pid"], first["sup.1"]["pid"]
        os.kill(killed, signal.SIGKILL)  # as the kernel's OOM killer would
        again = wait_until(lambda: workers_by_name(store).get("sup.0.1"), START_S, "the restarted worker", sup)
        assert again["pid"] != killed and not alive(killed)
        assert workers_by_name(store)["sup.1"]["pid"] == kept  # its sibling was left alone

        job = store.submit(make_job(prompt="a blue square"))
        assert store.wait(job.id, timeout=120).state == JobState.DONE

        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=90) == 0
        assert not alive(again["pid"]) and not alive(kept)
        wait_until(lambda: not store.dispatch.live_workers() or None, 10, "every heartbeat gone")
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()


@pytest.mark.slow
def test_a_worker_that_cannot_start_stops_the_supervisor_with_it(redis_url) -> None:
    # A model that is nowhere: each worker fails before it announces itself, and would again.
    sup = supervise(redis_url, "--devices", "cpu,cpu", "--model", "no-such-model")
    assert sup.wait(timeout=120) == 1  # ModelUnavailable's exit code


@pytest.mark.slow
def test_no_worker_outlives_a_killed_supervisor(redis_url) -> None:
    store = JobStore(Settings(redis_url=redis_url))
    sup = supervise(redis_url, "--devices", "cpu", "--name", "orphan")
    try:
        child = wait_until(lambda: workers_by_name(store).get("orphan.0"), START_S, "the worker", sup)
        sup.kill()
        sup.wait()
        wait_until(lambda: not alive(child["pid"]), 60, "the worker to stop with its supervisor")
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
