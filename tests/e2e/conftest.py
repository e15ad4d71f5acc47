"""Fixtures of the end-to-end scenarios: one Discord stand-in, one private
redis-server, one real `daydream worker` and one real `daydream bot` process
per module, shared by its tests (starting a worker loads the model).

When the module is done, every request sent to the stand-in is checked
against Discord's OpenAPI description (`request_schemas`).

The module's tests run on one event loop (`loop_scope="module"`), the
stand-in's. A test may kill the bot, stop Redis or the worker; `deployment`
brings back whatever is down before the next test, so each test also runs
on its own (`-k`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from daydream.redis_server import RedisServer
from shared.settings import Settings
from shared.store import JobStore

from .processes import BotProcess, WorkerProcess, daydream_env
from .request_schemas import RequestSchemas
from .scenario_helpers import Deployment
from .standin import Standin


@pytest.fixture(scope="module")
def e2e_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the bot's and the worker's output goes (the tail is also in failure messages)."""
    return tmp_path_factory.mktemp("e2e-logs")


@pytest.fixture(scope="module")
def e2e_redis() -> Iterator[RedisServer]:
    """A private redis-server: scenario 6 stops and restarts it, so not the session's."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def request_schemas() -> RequestSchemas:
    """Discord's OpenAPI description, read once (1.2 MB of JSON)."""
    return RequestSchemas.load()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def e2e_standin(request_schemas: RequestSchemas) -> AsyncIterator[Standin]:
    """The module's Discord. When the module is done, every request the bot, the worker and the
    tests sent it is checked against Discord's OpenAPI description: a violation fails the module."""
    async with Standin() as server:
        yield server
    problems = request_schemas.violations(server.requests)
    assert not problems, f"{len(problems)} request(s) Discord's API description refuses:\n" + "\n".join(problems)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def daydream(
    request: pytest.FixtureRequest, e2e_standin: Standin, e2e_redis: RedisServer, e2e_logs: Path
) -> AsyncIterator[Deployment]:
    # A module may set more of the processes' environment (DEPLOYMENT_ENV), e.g. the shipped BEST_OF.
    env = daydream_env(e2e_standin.env(), e2e_redis.url, **getattr(request.module, "DEPLOYMENT_ENV", {}))
    store = JobStore(Settings(redis_url=e2e_redis.url))
    deployment = Deployment(
        standin=e2e_standin,
        redis_server=e2e_redis,
        store=store,
        bot=BotProcess(env, e2e_logs),
        worker=WorkerProcess(env, e2e_logs),
    )
    try:
        yield deployment
    finally:
        await asyncio.gather(deployment.bot.stop(timeout=10), deployment.worker.stop())
        store.redis.close()


@pytest_asyncio.fixture(loop_scope="module")
async def deployment(daydream: Deployment) -> Deployment:
    """The module's deployment, all of it running when the test starts."""
    daydream.standin.clear_faults()  # a failed test may leave an injected fault unused
    await daydream.ensure_running()
    return daydream
