"""The embedded engine's guidance interval: below `guidance_min_t` it runs the
conditional model alone (half the work), and nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest

from worker.engines.base import GenerationRequest
from worker.engines.embedded import EmbeddedEngine


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine()


def _pixels(engine: EmbeddedEngine, guidance: float, min_t: int) -> np.ndarray:
    engine.guidance_min_t = min_t
    req = GenerationRequest(
        prompt="a red star on a blue background", seeds=[3, 4], width=64, height=64, steps=6, guidance=guidance
    )
    return np.stack([np.asarray(im) for im in engine.txt2img(req)]).astype(int)


def test_guidance_below_the_interval_is_the_conditional_model_alone(engine: EmbeddedEngine) -> None:
    default_min_t = engine.guidance_min_t
    try:
        unguided = _pixels(engine, 1.0, 0)
        never = _pixels(engine, 4.0, 1000)  # no step reaches t ≥ 1000
        always = _pixels(engine, 4.0, 0)
        partly = _pixels(engine, 4.0, 500)
    finally:
        engine.guidance_min_t = default_min_t
    assert np.abs(never - unguided).max() <= 1  # same computation, up to batch-size float noise
    assert np.abs(always - unguided).mean() > 5  # guidance changes the picture...
    # ...and the interval matters: guided early, unguided late is neither.
    assert np.abs(partly - always).mean() > 0.5
    assert np.abs(partly - unguided).mean() > 0.5
