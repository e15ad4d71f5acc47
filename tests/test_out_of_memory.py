"""Out of GPU memory fails that job clearly and the worker serves on: a tiny
SD pipeline (the real diffusers engine) whose step callback raises
`torch.OutOfMemoryError` once, run through the worker's pipeline against the
real redis-server — the user is told why, the next job on the same worker is
done, and the worker's figures count one of each."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
import torch

from shared import messages
from shared.job import JobState, ReplyTarget
from shared.params import Params
from shared.settings import Settings
from shared.store import JobStore
from tests.support.discord_http import CHANNEL_ID, FakeDiscord
from tests.support.jobs import make_job
from tests.support.tiny_sd import build_tiny_sd
from worker import pipeline
from worker.delivery import Delivery
from worker.engines.diffusers_engine import DiffusersEngine
from worker.runtime import WorkerRuntime

APP_ID = 6161


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> DiffusersEngine:
    torch.set_num_threads(1)
    return DiffusersEngine(str(build_tiny_sd(tmp_path_factory.mktemp("tiny"))))


@pytest.fixture
def rt(settings: Settings, discord: FakeDiscord, engine: DiffusersEngine) -> Iterator[WorkerRuntime]:
    settings = dataclasses.replace(settings, discord_api_base=discord.base)
    store = JobStore(settings)
    runtime = WorkerRuntime(
        settings=settings, store=store, engine=engine, delivery=Delivery(settings, store), name="w-oom", device="cpu"
    )
    yield runtime
    runtime.delivery.close()
    store.redis.close()


def discord_job(rt: WorkerRuntime, token: str):
    job = make_job(
        model=rt.spec.name,
        params=Params(steps=3),
        reply=ReplyTarget(
            application_id=APP_ID, interaction_token=token, token_expires_at=time.time() + 900, channel_id=CHANNEL_ID
        ),
    )
    return rt.store.submit(job, check=False)


def test_out_of_memory_fails_that_job_clearly_and_the_worker_serves_on(
    rt: WorkerRuntime, engine: DiffusersEngine, discord: FakeDiscord, monkeypatch
) -> None:
    callback = engine._callback
    raised = []

    def oom_once(progress, total):
        on_step_end = callback(progress, total)

        def step(pipe, i, timestep, kwargs):
            if not raised:
                raised.append(i)
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
            return on_step_end(pipe, i, timestep, kwargs)

        return step

    monkeypatch.setattr(engine, "_callback", oom_once)
    first = discord_job(rt, "token-first")
    assert pipeline.run(rt, first.id, 0) == pipeline.FAILED
    failed = rt.store.get(first.id)
    assert failed.state == JobState.FAILED and failed.error == messages.OUT_OF_MEMORY
    told = [r for r in discord.requests if "token-first" in r.path and r.payload and "content" in r.payload]
    assert told and messages.OUT_OF_MEMORY in told[-1].payload["content"]

    second = discord_job(rt, "token-second")
    assert pipeline.run(rt, second.id, 0) == pipeline.DONE
    assert rt.store.get(second.id).state == JobState.DONE and rt.store.images.grid(second.id)
    assert raised == [0] and rt.outcomes == {"failed": 1, "done": 1}
