"""Shared fixtures: one real redis-server per test session, flushed per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The workers the suite starts sample four candidates a grid, not the shipped eight: best-of-N
# doubles every embedded grid's cost, and it is the subject of tests/test_best_of.py (which builds
# its Settings in process, with the shipped default) and of the modules that set BEST_OF themselves.
os.environ.setdefault("BEST_OF", "4")

from daydream.redis_server import RedisServer
from shared.settings import Settings
from tests.support.discord_api import Harness, start_bot
from tests.support.discord_http import FakeDiscord


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings(redis_url=redis_url, discord_token="test-token-not-real")


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    """A started bot against the real redis-server and a recording Discord (tests/support/discord_api.py)."""
    async for h in start_bot(settings):
        yield h


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    """Discord's REST API as a worker's delivery meets it (tests/support/discord_http.py)."""
    server = FakeDiscord()
    server.start()
    yield server
    server.close()
