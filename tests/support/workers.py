"""Real worker processes for tests: `daydream worker` in a subprocess against
a test redis-server, and a helper to wait until it has announced itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from shared.settings import Settings
from shared.store import JobStore

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str, proc: subprocess.Popen | None = None) -> T:
    """Poll `condition` until it returns something truthy. Used only where the
    thing awaited lives in another process and announces itself in Redis."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def worker_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "WORKER_HEARTBEAT_S": "1",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    env.pop("DISCORD_TOKEN", None)
    return env


def start_worker(redis_url: str, name: str, *args: str, **extra: str) -> subprocess.Popen:
    """`args`: more of `daydream worker`'s options (`--model NAME`); `extra`: its environment."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "daydream", "worker", "--name", name, "--device", "cpu", *args],
        cwd=ROOT,
        env=worker_env(redis_url, **extra),
    )
    store = JobStore(Settings(redis_url=redis_url))
    wait_until(lambda: any(w["name"] == name for w in store.dispatch.live_workers()), 180, f"worker {name}", proc)
    return proc


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
