"""The diffusers engine on a tiny, randomly initialised SD pipeline built in
the test (no download): the real AutoPipeline code path on the CPU."""

from __future__ import annotations

import functools
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from daydream.redis_server import RedisServer
from shared.fleet import ModelEntry
from shared.models import Task
from tests.support.tiny_sd import build_tiny_sd, build_tiny_sdxl
from tests.support.workers import ROOT, start_worker, stop_worker, worker_env
from worker.engines.base import GenerationCancelled, Request
from worker.engines.diffusers_engine import NSFW_NOTICE, DiffusersEngine, notice_image


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return build_tiny_sd(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> DiffusersEngine:
    return DiffusersEngine(str(tiny_model))


def req(seeds: list[int], **kw) -> Request:
    return Request.text("a red circle", seeds, 32, 32, steps=3, **kw)


def from_image(source: Image.Image, seeds: list[int], strength: float, **kw) -> Request:
    return req(seeds, init_images=(source,), strength=strength, **kw)


def upscaled(engine: DiffusersEngine, source: Image.Image, r: Request, strength: float) -> Image.Image:
    big = replace(
        r, init_images=(source,), strength=strength, upscale=2, width=2 * source.width, height=2 * source.height
    )
    [image] = engine.generate(big)
    return image


def arrays(images: list[Image.Image]) -> list[np.ndarray]:
    return [np.asarray(im, dtype=np.int16) for im in images]


def test_one_generator_per_image_and_determinism(engine):
    a = arrays(engine.generate(req([1, 2, 3, 4])))
    b = arrays(engine.generate(req([1, 2, 3, 4])))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    # Image i depends on seed i alone: the same seed at another position gives the same image.
    c = arrays(engine.generate(req([9, 9, 2, 9])))
    assert np.array_equal(c[2], a[1])
    assert not np.array_equal(a[0], a[1])


def test_img2img_shares_weights_and_keeps_size(engine):
    assert engine.img2img_pipe.unet is engine.pipe.unet
    source = engine.generate(req([1, 2, 3, 4]))[0]
    out = engine.generate(from_image(source, [5, 6, 7, 8], strength=0.5))
    assert [im.size for im in out] == [(32, 32)] * 4
    assert upscaled(engine, source, req([5]), strength=0.3).size == (64, 64)


def test_progress_callback_and_cooperative_cancel(engine, monkeypatch):
    seen: list[float] = []
    previews: list[Image.Image] = []

    def report(fraction: float, preview) -> None:
        seen.append(fraction)
        previews.append(preview())  # asked for at every step here; the worker asks when an edit is due

    engine.generate(req([1, 2, 3, 4]), progress=report)
    assert seen == pytest.approx([1 / 3, 2 / 3, 1.0])
    # A 2×2 grid of the four latents mapped to RGB: 16×16 latents for 32×32 images.
    assert [p.size for p in previews] == [(32, 32)] * 3
    assert len({p.tobytes() for p in previews}) == 3  # it follows the sampling

    def cancel(fraction: float, _preview) -> None:
        raise GenerationCancelled

    with pytest.raises(GenerationCancelled):
        engine.generate(req([1, 2, 3, 4]), progress=cancel)


def test_progress_ends_at_one_with_pndm_and_img2img(engine, monkeypatch):
    from diffusers import PNDMScheduler

    # SD 1.5 ships PNDM, which runs one timestep more than it is asked for.
    pndm = PNDMScheduler.from_config(engine.pipe.scheduler.config, skip_prk_steps=True)
    monkeypatch.setattr(engine.pipe, "scheduler", pndm)
    seen: list[float] = []
    engine.generate(req([1, 2, 3, 4]), progress=lambda f, _p: seen.append(f))
    assert len(seen) == 4 and seen[-1] == 1.0
    assert all(a < b for a, b in itertools.pairwise(seen))

    seen.clear()
    engine.generate(from_image(Image.new("RGB", (32, 32)), [5, 6, 7, 8], 0.5), progress=lambda f, _p: seen.append(f))
    assert seen and seen[-1] == 1.0 and max(seen) == 1.0


def test_prompt_token_count(engine):
    assert engine.spec.max_prompt_tokens == 77
    assert engine.count_tokens("a red circle") == 5  # with start and end tokens


def test_sdxl_folder_loads_as_sdxl_and_samples(tmp_path):
    engine = DiffusersEngine(str(build_tiny_sdxl(tmp_path)))
    assert type(engine.pipe).__name__ == "StableDiffusionXLPipeline"
    assert type(engine.img2img_pipe).__name__ == "StableDiffusionXLImg2ImgPipeline"
    assert engine.img2img_pipe.text_encoder_2 is engine.pipe.text_encoder_2
    assert engine.spec.base_size == 64  # the UNet's sample size × the VAE's scale factor
    size = engine.spec.base_size
    sdxl_req = Request.text("a red circle", [1, 2, 3, 4], size, size, steps=2)
    a = arrays(engine.generate(sdxl_req))
    b = arrays(engine.generate(replace(sdxl_req, seeds=(7, 7, 1, 7))))
    assert np.array_equal(b[2], a[0]) and not np.array_equal(a[0], a[1])
    source = Image.fromarray(a[0].astype(np.uint8))
    assert upscaled(engine, source, replace(sdxl_req, seeds=(5,)), 0.3).size == (128, 128)
    previews: list[Image.Image] = []
    engine.generate(replace(sdxl_req, steps=3), progress=lambda _f, p: previews.append(p()))
    assert [p.size for p in previews] == [(64, 64)] * 3  # SDXL latents, 32×32 each, as a 2×2 grid


def test_preview_scales_sigma_latents_back_to_unit_variance():
    from diffusers import DDIMScheduler, EulerDiscreteScheduler

    from worker.engines.diffusers_engine import SD_LATENT_RGB, latent_preview

    euler = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    euler.set_timesteps(10)
    euler._step_index = 0  # as after the first step's scale_model_input
    noise = torch.randn(4, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    latents = noise * float(euler.sigmas[0])  # Euler's start: pure noise at σ_max ≈ 14.6

    def saturated(image: Image.Image) -> float:
        a = np.asarray(image)
        return float(((a == 0) | (a == 255)).mean())

    bias = (0.0, 0.0, 0.0)
    scaled = latent_preview(latents, SD_LATENT_RGB, bias, euler)
    unscaled = latent_preview(latents, SD_LATENT_RGB, bias, DDIMScheduler())  # variance-preserving: left alone
    assert scaled.size == (32, 32)
    assert saturated(unscaled) > 0.8 and saturated(scaled) < 0.2
    assert latent_preview(torch.zeros(1, 16, 8, 8), SD_LATENT_RGB, bias, euler) is None  # not 4 channels


def test_safety_checker_is_kept_and_flagged_images_become_notices(tmp_path):
    # Scores are cosine similarities minus the threshold: -2 flags every image.
    flag_all = DiffusersEngine(str(build_tiny_sd(tmp_path, safety_threshold=-2.0, name="flag-all")))
    assert type(flag_all.pipe.safety_checker).__name__ == "StableDiffusionSafetyChecker"
    assert flag_all.img2img_pipe.safety_checker is flag_all.pipe.safety_checker
    notice = np.asarray(notice_image(32, 32, NSFW_NOTICE), dtype=np.int16)
    assert notice.mean() > 40  # grey with text, not the checker's black square
    for tiles in (
        flag_all.generate(req([1, 2, 3, 4])),
        flag_all.generate(from_image(Image.new("RGB", (32, 32)), [5, 6, 7, 8], 0.5)),
    ):
        assert all(np.array_equal(t, notice) for t in arrays(tiles))

    flag_none = DiffusersEngine(str(build_tiny_sd(tmp_path, safety_threshold=2.0, name="flag-none")))
    kept = arrays(flag_none.generate(req([1, 2, 3, 4])))
    assert not any(np.array_equal(t, notice) for t in kept)
    assert not np.array_equal(kept[0], kept[1])


@pytest.fixture(scope="module")
def tiny_worker(tiny_model: Path) -> Iterator[tuple[RedisServer, Path]]:
    with RedisServer() as server:
        proc = start_worker(server.url, "tiny-worker", MODEL=str(tiny_model))
        yield server, tiny_model
        stop_worker(proc)


def test_worker_with_a_model_folder_makes_a_grid(tiny_worker, tmp_path):
    server, model = tiny_worker
    out = tmp_path / "grid.png"
    r = subprocess.run(
        [sys.executable, "-m", "daydream", "imagine", "a blue square --steps 2", "-o", str(out), "--json"],
        cwd=ROOT,
        env=worker_env(server.url, MODEL=str(model)),  # jobs name the model the worker holds (one .env)
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout.strip().splitlines()[-1])
    assert record["model"] == "tiny-sd"  # the model's name: the last part of its folder
    assert (record["width"], record["height"]) == (32, 32)
    assert Image.open(out).size == (64, 64)


def test_a_wrong_model_stops_the_worker_with_what_to_set(redis_url, tmp_path):
    missing = tmp_path / "no-such-model"
    r = subprocess.run(
        [sys.executable, "-m", "daydream", "worker", "--burst"],
        cwd=ROOT,
        env=worker_env(redis_url, MODEL=str(missing), HF_HUB_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    message = r.stderr.strip().splitlines()[-1]
    assert message.startswith(f"daydream: MODEL='{missing}' could not be loaded:")
    assert "model_index.json" in message and "hub id" in message


# -- painting through a mask (issue 19) ------------------------------------------------
def _half_mask(size: int) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (0, 0, size // 2, size))  # paint the left half, keep the right
    return mask


def test_masked_denoising_holds_the_known_latents_and_paints_the_rest(engine, monkeypatch):
    from worker.engines import masking

    assert engine.masked_denoising and "inpaint" in engine.spec.tasks
    source = engine.generate(Request.text("a red circle", [1], 64, 64, steps=3))[0]
    r = Request.text("a red circle", [5, 6], 64, 64, steps=3, init_images=(source,), mask=_half_mask(64))
    pasted = arrays(engine.generate(r))
    assert all(np.array_equal(p[:, 32:], np.asarray(source, dtype=np.int16)[:, 32:]) for p in pasted)
    # Without the final paste, what the sampler itself made: two seeds agree where the
    # known latents were held (away from the seam) and differ where they painted; two
    # seeds without a mask differ everywhere.
    monkeypatch.setattr(masking, "paste", lambda generated, source, mask: generated)
    a, b = arrays(engine.generate(r))
    free_a, free_b = arrays(engine.generate(Request.text("a red circle", [5, 6], 64, 64, steps=3)))
    assert np.abs(a[:, 48:] - b[:, 48:]).mean() < 3
    assert np.abs(a[:, :16] - b[:, :16]).mean() > 10
    assert np.abs(free_a[:, 48:] - free_b[:, 48:]).mean() > 10


def paints_with_its_inpainting_pipeline(engine: DiffusersEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Half an image repainted: one call of the inpainting pipeline, with an L mask; the kept half exact."""
    seen: list[dict] = []
    call = type(engine.inpaint_pipe).__call__

    @functools.wraps(call)  # the engine reads the pipeline's signature
    def recording(self, *args, **kwargs):
        seen.append(kwargs)
        return call(self, *args, **kwargs)

    monkeypatch.setattr(type(engine.inpaint_pipe), "__call__", recording)
    source = Image.new("RGB", (32, 32), (200, 30, 30))
    [out] = engine.generate(req([3], init_images=(source,), mask=_half_mask(32), strength=1.0))
    assert len(seen) == 1 and seen[0]["mask_image"].mode == "L"
    assert np.array_equal(np.asarray(out)[:, 16:], np.asarray(source)[:, 16:])


def test_an_inpainting_variant_paints_regions_with_its_unet_and_the_base_models_encoders(tmp_path, monkeypatch):
    base = build_tiny_sd(tmp_path, name="tiny-sd")
    variant = build_tiny_sd(tmp_path, name="tiny-sd-inpainting", in_channels=9)
    engine = DiffusersEngine(ModelEntry(name="tiny", source=str(base), inpaint=str(variant)))
    assert engine.inpainting_checkpoint and not engine.masked_denoising and Task.INPAINT in engine.spec.tasks
    assert engine.pipe.unet.config.in_channels == 4 and engine.inpaint_pipe.unet.config.in_channels == 9
    assert engine.inpaint_pipe.text_encoder is engine.pipe.text_encoder and engine.inpaint_pipe.vae is engine.pipe.vae
    paints_with_its_inpainting_pipeline(engine, monkeypatch)
    # A plain checkpoint named as the variant is refused at load, saying what to name.
    with pytest.raises(ValueError, match="reads 4 channels, not an inpainting model's 9"):
        DiffusersEngine(ModelEntry(name="tiny", source=str(base), inpaint=str(base)))


def test_an_inpainting_checkpoint_paints_with_its_inpainting_pipeline(tmp_path, monkeypatch):
    engine = DiffusersEngine(str(build_tiny_sd(tmp_path, name="tiny-sd-inpainting", in_channels=9)))
    assert engine.inpainting_checkpoint and not engine.masked_denoising
    paints_with_its_inpainting_pipeline(engine, monkeypatch)
