"""The embedded engine's sampling settings: the guidance interval (below
`guidance_min_t` it runs the conditional model alone, and nothing else
changes) and the clip of the solver's image estimate (`clip_x0`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worker.engines.base import Request
from worker.engines.embedded import EmbeddedEngine


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine()


def test_a_folder_that_is_not_a_model_gets_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not an embedded model folder"):
        EmbeddedEngine(tmp_path)


def _pixels(engine: EmbeddedEngine, guidance: float, min_t: int) -> np.ndarray:
    engine.guidance_min_t = min_t
    req = Request.text("a red star on a blue background", [3, 4], 64, 64, steps=6, guidance=guidance)
    return np.stack([np.asarray(im) for im in engine.generate(req)]).astype(int)


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


def test_clip_x0_keeps_the_solvers_image_estimate_in_pixel_range(engine: EmbeddedEngine) -> None:
    # A v prediction whose image estimate lies far outside [-1, 1], as guided
    # predictions do where the two branches disagree.
    x = torch.zeros(1, 48, 16, 16)
    v = torch.full_like(x, -20.0)
    default = engine.clip_x0
    try:
        engine.clip_x0 = True
        clipped = engine.scheduler()
        engine.clip_x0 = False
        raw = engine.scheduler()
    finally:
        engine.clip_x0 = default
    # One step from t = 500 to the end of the schedule returns the image estimate itself.
    out = {}
    for name, solver in (("clipped", clipped), ("raw", raw)):
        solver.set_timesteps(timesteps=[500])
        out[name] = solver.step(v, solver.timesteps[0], x).prev_sample
    assert out["raw"].abs().max() > 2  # the estimate really is out of range...
    assert out["clipped"].abs().max() <= 1.0 + 1e-6  # ...and the solver clips it


def test_clip_x0_changes_guided_samples(engine: EmbeddedEngine) -> None:
    default = engine.clip_x0
    try:
        engine.clip_x0 = False
        raw = _pixels(engine, 8.0, 0)
        engine.clip_x0 = True
        clipped = _pixels(engine, 8.0, 0)
    finally:
        engine.clip_x0 = default
    assert np.abs(clipped - raw).mean() > 0.5


def test_bf16_autocast_draws_what_float32_draws(engine: EmbeddedEngine) -> None:
    """Issue 21: the denoiser runs under bfloat16 autocast where the CPU has
    bf16 units; the scorer must read the same tiles as in float32."""
    from worker.embedded import scoring
    from worker.engines.embedded import bf16_supported

    assert engine.bf16 == bf16_supported(engine.device)  # on by default exactly where it is native
    req = Request.text("a small white square in the top right corner on a red background", [1, 2, 3, 4], 64, 64)
    default = engine.bf16
    try:
        engine.bf16 = False
        full = engine.generate(req)
        engine.bf16 = True
        half = engine.generate(req)
    finally:
        engine.bf16 = default
    attrs = ("background", "foreground", "shape", "position", "size")
    same = sum(
        all(getattr(scoring.score_tile(a), n) == getattr(scoring.score_tile(b), n) for n in attrs)
        for a, b in zip(full, half, strict=True)
    )
    assert same >= 3
    diff = np.abs(
        np.stack([np.asarray(a, dtype=int) - np.asarray(b, dtype=int) for a, b in zip(full, half, strict=True)])
    )
    assert 0 < diff.mean() < 8  # bf16 really ran, and moved pixels only slightly
