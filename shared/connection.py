"""The Redis client, and Redis failures as Daydream's `QueueUnavailable`.

The store's classes wrap their public methods with `redis_errors`, so the
bot, the CLI and the worker meet one error with a message for the user, and
nothing outside the store needs to know about `redis` at all."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from shared.errors import QueueUnavailable

T = TypeVar("T")

CONNECT_TIMEOUT_S = 3
SOCKET_TIMEOUT_S = 30  # above any blocking call Daydream makes (waits poll every second)
HEALTH_CHECK_INTERVAL_S = 30


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
    )


def _translated(fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(fn):
        return fn

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            if isinstance(exc, redis.WatchError):
                raise
            raise QueueUnavailable() from exc

    return call


def redis_errors(cls: type[T]) -> type[T]:
    """Class decorator: every public method raises QueueUnavailable, not a RedisError."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _translated(member))
    return cls
