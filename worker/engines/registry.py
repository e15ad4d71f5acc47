"""Which engine serves a MODEL, loaded once per worker process.

`MODEL=embedded` (the default) is Daydream's own model; `MODEL=python:pkg.mod:Class`
an engine of the host's own (a class implementing worker/engines/base.Engine,
made with no arguments); anything else is a diffusers checkpoint (a local
folder or a hub id). `loads()` counts the models this process has loaded: a
worker loads one and keeps it resident."""

from __future__ import annotations

import importlib
import logging
import os
import time

from shared.errors import ModelUnavailable
from shared.models import EMBEDDED, model_name
from worker.engines.base import Engine, Request

logger = logging.getLogger(__name__)

_loads = 0
CUSTOM = "python:"  # MODEL=python:package.module:Class — an engine of the host's own
MODEL_TAKES = (
    "MODEL takes 'embedded', a diffusers model folder (with model_index.json) or a Hugging Face hub id "
    "(with HF_HUB_OFFLINE=1, one already in the cache)."
)


def _looks_like_a_path(source: str) -> bool:
    """A hub id is `owner/name`; a path starts with / . ~ or has more parts."""
    return source.startswith(("/", ".", "~")) or source.count("/") > 1 or "\\" in source


def loads() -> int:
    """How many models this process has loaded (1 in a healthy worker, however many jobs it ran)."""
    return _loads


def load_engine(source: str, device: str) -> Engine:
    global _loads
    if source.startswith(CUSTOM):
        engine: Engine = _custom(source)
    elif model_name(source) == EMBEDDED:
        from worker.engines.embedded import EmbeddedEngine

        engine = EmbeddedEngine(device=device)
    else:
        from worker.engines.diffusers_engine import DiffusersEngine

        if _looks_like_a_path(source) and not os.path.isdir(os.path.expanduser(source)):
            # diffusers would go on to treat it as a hub id and talk of huggingface.co.
            raise ModelUnavailable(f"MODEL={source!r} could not be loaded: there is no folder {source}. {MODEL_TAKES}")
        try:
            engine = DiffusersEngine(source, device=device)
        except (OSError, ValueError) as exc:
            # diffusers' own text (no such folder, no model_index.json, not in the
            # offline cache, not a pipeline it knows), prefixed with what to set.
            reason = " ".join(str(exc).split())
            raise ModelUnavailable(f"MODEL={source!r} could not be loaded: {reason} {MODEL_TAKES}") from exc
    _loads += 1
    return engine


def _custom(source: str) -> Engine:
    module_name, _, class_name = source.removeprefix(CUSTOM).partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelUnavailable(f"MODEL={source!r} could not be loaded: {exc}. It takes python:package.module:Class.") from exc
    return cls()


def warm_up(engine: Engine) -> float:
    """One short sampling call so the first real job doesn't pay for lazy
    initialisation (kernels, allocator, caches)."""
    t0 = time.perf_counter()
    size = engine.spec.base_size
    engine.generate(Request.text("warm up", [0, 1, 2, 3], size, size, steps=2))
    return time.perf_counter() - t0
