"""Counting a prompt's tokens where the model is not loaded (the bot, the CLI).

A worker publishes its model's tokenizer (the `tokenizers` library's JSON
form, a few hundred kB) under its digest, beside its ModelSpec. Loading it
needs only the `tokenizers` package (Rust, no torch), so the bot refuses a
prompt that is too long for the model at submit time, with the model's own
count. Each tokenizer is fetched and built once per process (by digest)."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

Counter = Callable[[str], int]

_cache: dict[str, Counter | None] = {}
_lock = threading.Lock()


def digest(serialized: str) -> str:
    return hashlib.sha256(serialized.encode()).hexdigest()[:32]


def build(serialized: str) -> Counter | None:
    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(serialized)
    except Exception as exc:  # e.g. written by another tokenizers version: the worker still checks
        logger.warning("cannot load a published tokenizer (%s); prompts are checked by the worker", exc)
        return None
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count(text: str) -> int:
        return len(tokenizer.encode(text).ids)

    return count


def counter(key: str | None, fetch: Callable[[str], str | None]) -> Counter | None:
    """The counter of the tokenizer published under digest `key`; `fetch(key)`
    reads it from Redis the first time only."""
    if not key:
        return None
    with _lock:
        if key in _cache:
            return _cache[key]
    serialized = fetch(key)
    built = build(serialized) if serialized else None
    with _lock:
        if serialized is not None:  # an absent one may be published later: ask again then
            _cache[key] = built
    return built
