"""What the prompt's parameters do to the engine's request, for a given model:
the size of `--ar`, the steps of `--quality`, the guidance of `--stylize`.
One place for both sides: the submit-time resolution (shared/resolution.py,
and so `daydream imagine --dry-run`) and the worker's request
(worker/handlers.py) compute them here, so what a dry run prints is what the
engine receives."""

from __future__ import annotations

import math

from shared.models import ModelSpec
from shared.params import Params

STYLIZE_DEFAULT = 100


def size_for(params: Params, spec: ModelSpec) -> tuple[int, int]:
    """`--ar W:H` at about the model's native pixel count, sides a multiple of its size multiple."""
    return spec.image_size(params.aspect)


def steps_for(params: Params, spec: ModelSpec) -> int:
    """`--steps` if given, else the model's default steps × `--quality` (at least one)."""
    if params.steps is not None:
        return params.steps
    if params.quality is not None:
        return max(1, round(spec.default_steps * params.quality))
    return spec.default_steps


def guidance_for(params: Params, spec: ModelSpec) -> float:
    """`--cfg` if given, else the model's guidance × (0.5 + 0.5·√(stylize/100)): `--s 100`
    is the model's own, `--s 0` half of it, `--s 1000` about twice it. A model sampled
    without guidance (a turbo) stays at its guidance whatever the stylize."""
    if params.guidance is not None:
        return params.guidance
    if params.stylize is None or spec.default_guidance <= 1.0:
        return spec.default_guidance
    factor = 0.5 + 0.5 * math.sqrt(params.stylize / STYLIZE_DEFAULT)
    return round(max(1.0, spec.default_guidance * factor), 3)
