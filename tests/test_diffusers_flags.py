"""--chaos, --weird, --stop, weighted parts and --tile through the real diffusers
engine on the tiny random SD pipeline (tests/support/tiny_sd.py), measured where
an image property can be: the spread of the four tiles, the distance to the plain
run, the denoised estimate at the stop step, the conditioning the UNet receives,
the jump across the wrap. The other families: tests/test_families.py."""

from __future__ import annotations

import functools
import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from shared.errors import Unsupported
from shared.families import FAMILIES
from shared.job import JobRecord
from shared.models import check_servable, used_flags
from shared.params import Params, PromptPart
from tests.support.jobs import make_job
from tests.support.tiny_sd import build_tiny_sd
from worker.engines import early_stop
from worker.engines.base import Request, WeightedPrompt
from worker.engines.diffusers_engine import DiffusersEngine

SEEDS = [1, 2, 3, 4]
STEPS = 4


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> DiffusersEngine:
    torch.set_num_threads(1)
    return DiffusersEngine(str(build_tiny_sd(tmp_path_factory.mktemp("flags"))))


def req(seeds: list[int] = SEEDS, prompt: str = "a red circle", **kw) -> Request:
    return Request.text(prompt, seeds, 32, 32, steps=STEPS, **kw)


def pixels(images: list[Image.Image]) -> list[np.ndarray]:
    return [np.asarray(im, dtype=np.float32) for im in images]


def spread(tiles: list[np.ndarray]) -> float:
    """The mean pairwise distance between the tiles (mean |Δ|, 0–255)."""
    return float(np.mean([np.abs(a - b).mean() for a, b in itertools.combinations(tiles, 2)]))


def distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(x - y).mean() for x, y in zip(a, b, strict=True)]))


def same_noise(engine: DiffusersEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every image starts from seed 0's noise, whatever its seed: what still tells the four
    tiles apart is what their seeds do to the conditioning (--chaos)."""
    make = type(engine)._generators
    monkeypatch.setattr(engine, "_generators", lambda seeds: make(engine, [0] * len(seeds)))


def test_the_flags_are_served(engine):
    assert engine.spec.unsupported == ()  # DDIM gives its denoised estimate: --stop too


def test_higher_chaos_spreads_the_four_tiles_further_apart(engine, monkeypatch):
    same_noise(engine, monkeypatch)
    spreads = [spread(pixels(engine.generate(req(chaos=c)))) for c in (0, 50, 100)]
    assert spreads[0] == 0.0  # the same noise, the same prompt: four equal tiles
    assert 0.0 < spreads[1] < spreads[2], spreads
    # Reproducible: each image's offset comes from its seed.
    again = pixels(engine.generate(req(chaos=100)))
    assert distance(again, pixels(engine.generate(req(chaos=100)))) == 0.0


def test_weird_changes_the_images_reproducibly_and_more_as_it_grows(engine):
    plain = pixels(engine.generate(req()))
    weird = {w: pixels(engine.generate(req(weird=w))) for w in (1000, 3000)}
    assert 0.0 < distance(weird[1000], plain) < distance(weird[3000], plain)
    assert distance(weird[3000], pixels(engine.generate(req(weird=3000)))) == 0.0
    # One offset common to every image: the same seed at another position gives the same image.
    moved = pixels(engine.generate(req([9, 9, 2, 9], weird=3000)))
    assert np.array_equal(moved[2], weird[3000][1])


def recording_steps(monkeypatch: pytest.MonkeyPatch, scheduler) -> list:
    """Each step's output (prev_sample and pred_original_sample), as the scheduler gives it."""
    seen: list = []
    step = type(scheduler).step

    @functools.wraps(step)
    def recording(self, *args, **kwargs):
        kwargs["return_dict"] = True
        out = step(self, *args, **kwargs)
        seen.append(out)
        return out

    monkeypatch.setattr(type(scheduler), "step", recording)
    return seen


def decode(engine: DiffusersEngine, latents: torch.Tensor) -> list[np.ndarray]:
    vae = engine.pipe.vae
    with torch.inference_mode():
        image = vae.decode(latents / vae.config.scaling_factor).sample
    return pixels(engine.pipe.image_processor.postprocess(image, output_type="pil"))


def test_stop_returns_the_denoised_estimate_at_that_step(engine, monkeypatch):
    full = pixels(engine.generate(req()))
    seen = recording_steps(monkeypatch, engine.pipe.scheduler)
    stopped = pixels(engine.generate(req(stop=0.5)))
    assert len(seen) == early_stop.stop_step(STEPS, 0.5) == 2  # the remaining steps were skipped
    # The image is the scheduler's own x0 prediction at the stop step, decoded …
    assert distance(stopped, decode(engine, seen[-1].pred_original_sample)) < 1.0
    # … not the noisy latents of that step, nor the full run.
    assert distance(stopped, decode(engine, seen[-1].prev_sample)) > 5 * distance(
        stopped, decode(engine, seen[-1].pred_original_sample)
    )
    assert distance(stopped, full) > 0.0


def test_stop_in_masked_denoising_keeps_the_known_part_and_paints_an_estimate(engine):
    source = engine.generate(req([7]))[0]
    mask = Image.new("L", source.size, 0)
    mask.paste(255, (0, 0, 16, 32))  # repaint the left half
    painting = req(SEEDS, init_images=(source,), strength=1.0, mask=mask)
    full = pixels(engine.generate(painting))
    stopped = pixels(engine.generate(replace(painting, stop=0.5)))
    kept = np.asarray(source, dtype=np.float32)[:, 16:]
    assert all(np.array_equal(s[:, 16:], kept) for s in stopped)  # the source, exactly, where kept
    assert distance([s[:, :16] for s in stopped], [f[:, :16] for f in full]) > 0.0


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_stop_with_pndm_computes_the_estimate_from_the_noise_schedule(engine, monkeypatch, prediction):
    from diffusers import DDIMScheduler, PNDMScheduler

    # SD 1.5 ships PNDM, whose steps give no pred_original_sample: x0 from ᾱ at the step's timestep.
    config = dict(engine.pipe.scheduler.config, prediction_type=prediction)
    pndm = PNDMScheduler.from_config(config, skip_prk_steps=True)
    assert early_stop.can_stop(pndm)
    sample, noise = torch.randn(1, 4, 4, 4), torch.randn(1, 4, 4, 4)
    ddim = DDIMScheduler.from_config(config)
    pndm.set_timesteps(STEPS)
    ddim.set_timesteps(STEPS)
    t = pndm.timesteps[0]
    x0 = early_stop.denoised(pndm, pndm.step(noise, t, sample), noise, t, sample)
    torch.testing.assert_close(x0, ddim.step(noise, t, sample).pred_original_sample)
    # Through the engine: fewer steps than the full run, and a finished-looking image.
    monkeypatch.setattr(engine.pipe, "scheduler", pndm)
    stopped = pixels(engine.generate(req(stop=0.3)))
    assert distance(stopped, pixels(engine.generate(req()))) > 0.0


def test_a_scheduler_without_a_denoised_estimate_refuses_stop_at_load(tmp_path):
    from diffusers import IPNDMScheduler

    folder = build_tiny_sd(tmp_path)
    scheduler = IPNDMScheduler.from_pretrained(folder / "scheduler")
    assert not early_stop.can_stop(scheduler)
    index = folder / "model_index.json"
    index.write_text(index.read_text().replace('"DDIMScheduler"', '"IPNDMScheduler"'))
    assert DiffusersEngine(str(folder)).spec.unsupported == ("stop",)


def conditioning_seen(engine: DiffusersEngine, r: Request) -> torch.Tensor:
    """The text conditioning the UNet's first call receives for `r` (its conditional half)."""
    seen: list[torch.Tensor] = []

    def hook(_module, _args, kwargs):
        seen.append(kwargs["encoder_hidden_states"])

    handle = engine.pipe.unet.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        engine.generate(r)
    finally:
        handle.remove()
    return seen[0].chunk(2)[1]  # classifier-free guidance: [negative, positive]


def encoded(engine: DiffusersEngine, prompt: str) -> torch.Tensor:
    with torch.inference_mode():
        return engine.pipe.encode_prompt([prompt] * len(SEEDS), engine.device, 1, True, None)[0]


def test_weighted_parts_blend_their_conditioning_by_weight(engine):
    a, b = "a red circle", "blue square"
    both = Request(prompts=(WeightedPrompt(a, 1.0), WeightedPrompt(b, 3.0)), **req_fields())
    torch.testing.assert_close(conditioning_seen(engine, both), 0.25 * encoded(engine, a) + 0.75 * encoded(engine, b))
    # a::1 b::1 is neither a alone nor b alone.
    even = pixels(engine.generate(Request(prompts=(WeightedPrompt(a), WeightedPrompt(b)), **req_fields())))
    assert distance(even, pixels(engine.generate(req(prompt=a)))) > 0.0
    assert distance(even, pixels(engine.generate(req(prompt=b)))) > 0.0


def req_fields() -> dict:
    return dict(seeds=tuple(SEEDS), width=32, height=32, steps=STEPS)


def test_chaos_moves_each_images_conditioning_by_its_own_seed(engine):
    plain = conditioning_seen(engine, req())
    moved = conditioning_seen(engine, req(chaos=100))
    shift = (moved - plain).flatten(1)
    assert all(s.norm() > 0 for s in shift)
    assert not torch.allclose(shift[0], shift[1])  # a different offset for each image
    # Relative to each token's size: chaos 100 moves a token about 0.8 of its length.
    ratio = (moved - plain).norm(dim=-1) / plain.norm(dim=-1)
    assert 0.5 < float(ratio.mean()) < 1.1


def test_tile_makes_the_image_wrap_at_its_edges(engine, monkeypatch):
    """Tiled, the image is a torus: the same noise shifted around the edges gives the same
    image shifted by as much, the left edge continuing the right as the inside continues
    itself (exactly, up to rounding). Untiled, the edges are borders and the shift shows."""
    shift = 2  # latent columns: a multiple of the UNet's downsampling
    prepare = engine.pipe.prepare_latents
    r = Request.text("a red circle", SEEDS, 64, 64, steps=STEPS)

    def shifted(*args, **kwargs):
        return torch.roll(prepare(*args, **kwargs), shift, dims=-1)

    def jump(tile: bool) -> float:
        with monkeypatch.context() as m:
            m.setattr(engine.pipe, "prepare_latents", shifted)
            moved = pixels(engine.generate(replace(r, tile=tile)))
        plain = pixels(engine.generate(replace(r, tile=tile)))
        return distance(moved, [np.roll(p, shift * engine.pipe.vae_scale_factor, axis=1) for p in plain])

    untiled, tiled = jump(False), jump(True)
    assert tiled < 1.0 and tiled < 0.1 * untiled, (tiled, untiled)


def test_the_flow_matching_estimate_is_the_sample_less_sigma_times_the_velocity():
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(STEPS)
    x0, noise = torch.randn(1, 4, 4, 4), torch.randn(1, 4, 4, 4)
    sigma = scheduler.sigmas[0]
    sample, velocity = (1 - sigma) * x0 + sigma * noise, noise - x0  # what a perfect model predicts
    t = scheduler.timesteps[0]
    out = scheduler.step(velocity, t, sample)
    torch.testing.assert_close(early_stop.denoised(scheduler, out, velocity, t, sample), x0)


def flagged_job(**params) -> JobRecord:
    prompts = [PromptPart("a red circle", 2.0), PromptPart("blue square", 1.0)]
    return make_job(prompt="a red circle, blue square", prompts=prompts, params=Params(**params))


def test_the_flags_are_accepted_at_submit_and_refused_where_a_family_declares_it(tmp_path, monkeypatch):
    folder = build_tiny_sd(tmp_path)
    job = flagged_job(chaos=40, weird=500, stop=30, tile=True)
    assert set(used_flags(job)) == {"chaos", "weird", "stop", "tile", "weights"}
    check_servable(job, DiffusersEngine(str(folder)).spec, None)  # every one is served
    # A family that cannot (data in shared/families.py) is refused at submit, with the message.
    monkeypatch.setitem(FAMILIES, "sd", replace(FAMILIES["sd"], unsupported=("weights",)))
    spec = DiffusersEngine(str(folder)).spec
    assert spec.unsupported == ("weights",)
    with pytest.raises(Unsupported, match=r"cannot do weighted prompt parts \(`text::2`\), so it would change"):
        check_servable(job, spec, None)
