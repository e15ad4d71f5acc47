"""Which engine serves a model, loaded once per worker process.

`MODEL=embedded` (the default) is Daydream's own model; `MODEL=python:pkg.mod:Class`
an engine of the host's own (a class implementing worker/engines/base.Engine,
made with no arguments); anything else is a diffusers checkpoint of one of
shared/families.py's families. The model is a fleet entry (shared/fleet.py: a
name in models.toml, or MODEL as one folder or hub id). `loads()` counts the
models this process has loaded: a worker loads one and keeps it resident."""

from __future__ import annotations

import importlib
import logging
import os
import time
from dataclasses import replace

from shared.errors import ModelUnavailable
from shared.fleet import ModelEntry
from shared.models import EMBEDDED, model_name
from shared.settings import Settings
from worker.engines.base import Engine, Request

logger = logging.getLogger(__name__)

_loads = 0
CUSTOM = "python:"  # MODEL=python:package.module:Class — an engine of the host's own
MODEL_TAKES = (
    "MODEL takes a name in the fleet file (MODELS_FILE, models.toml), 'embedded', a diffusers model folder "
    "(with model_index.json) or a Hugging Face hub id (with HF_HUB_OFFLINE=1, one already in the cache)."
)


def _looks_like_a_path(source: str) -> bool:
    """A hub id is `owner/name`; a path starts with / . ~ or has more parts."""
    return source.startswith(("/", ".", "~")) or source.count("/") > 1 or "\\" in source


def loads() -> int:
    """How many models this process has loaded (1 in a healthy worker, however many jobs it ran)."""
    return _loads


def load_engine(model: ModelEntry | str, device: str, settings: Settings | None = None) -> Engine:
    global _loads
    entry = model if isinstance(model, ModelEntry) else ModelEntry(name=model_name(model), source=model)
    source = entry.source
    settings = settings or Settings()
    what = f"{entry.file}, [models.{entry.name}]: source={source!r}" if entry.file else f"MODEL={source!r}"
    if source.startswith(CUSTOM):
        engine: Engine = _custom(source)
    elif model_name(source) == EMBEDDED:
        from worker.engines.embedded import EmbeddedEngine

        engine = EmbeddedEngine(device=device)
        if entry.name != EMBEDDED or entry.lanes:  # a fleet entry naming the embedded model
            engine.spec = replace(engine.spec, name=entry.name, lanes=entry.lanes)
    else:
        from worker.engines.diffusers_engine import DiffusersEngine
        from worker.engines.speed import SpeedOptions

        if _looks_like_a_path(source) and not os.path.isdir(os.path.expanduser(source)):
            # diffusers would go on to treat it as a hub id and talk of huggingface.co.
            raise ModelUnavailable(f"{what} could not be loaded: there is no folder {source}. {MODEL_TAKES}")
        try:
            engine = DiffusersEngine(
                entry,
                device=device,
                lora_dir=settings.lora_dir,
                cpu_offload=settings.cpu_offload,
                vae_tiling_pixels=settings.vae_tiling_pixels,
                speed=SpeedOptions.for_device(settings, device),
            )
        except (OSError, ValueError) as exc:
            # diffusers' own text (no such folder, no model_index.json, not in the
            # offline cache, not a pipeline it knows), prefixed with what to set.
            reason = " ".join(str(exc).split())
            raise ModelUnavailable(f"{what} could not be loaded: {reason} {MODEL_TAKES}") from exc
        if settings.describe_model:
            engine.use_captioner(_captioner(settings.describe_model, device))
    _loads += 1
    return engine


def _captioner(source: str, device: str):
    from worker.engines.captioner import Captioner

    try:
        return Captioner(source, device)
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise ModelUnavailable(
            f"DESCRIBE_MODEL={source!r} could not be loaded: {reason} It takes a BLIP captioning model: "
            "a folder, or a hub id already in the cache."
        ) from exc


def _custom(source: str) -> Engine:
    module_name, _, class_name = source.removeprefix(CUSTOM).partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelUnavailable(
            f"MODEL={source!r} could not be loaded: {exc}. It takes python:package.module:Class."
        ) from exc
    return cls()


def warm_up(engine: Engine) -> float:
    """Short sampling calls so the first real job doesn't pay for lazy
    initialisation (kernels, allocator, caches) — or, with COMPILE, for
    compiling its size: then every --ar size is sampled once."""
    from worker.engines.speed import is_compiled, warm_sizes

    t0 = time.perf_counter()
    pipe = getattr(engine, "pipe", None)
    sizes = warm_sizes(engine.spec, pipe is not None and is_compiled(pipe))
    for width, height in sizes:
        engine.generate(Request.text("warm up", [0, 1, 2, 3], width, height, steps=2))
    if len(sizes) > 1:
        logger.info("warmed up %d sizes (torch.compile) in %.1f s", len(sizes), time.perf_counter() - t0)
    return time.perf_counter() - t0
