"""Every model family through the real diffusers engine, each as a tiny random
pipeline built in code (tests/support/tiny_sd.py, tiny_families.py): its
spec and defaults, text-to-image with one seed per image, image-to-image and
inpainting on the same weights, a LoRA switched on and off (its effect on
the pixels measured), and a Chinese prompt through Qwen-Image's tokenizer."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from shared import tokens
from shared.fleet import ModelEntry
from shared.loras import LoraRef
from tests.support import tiny_families
from tests.support.tiny_sd import build_tiny_sd, build_tiny_sdxl
from worker.engines.base import Request, WeightedPrompt
from worker.engines.diffusers_engine import DiffusersEngine

BUILDERS: dict[str, Callable[[Path], Path]] = {
    "sd": build_tiny_sd,
    "sdxl": build_tiny_sdxl,
    "sd3.5": tiny_families.build_tiny_sd3,
    "flux-schnell": tiny_families.build_tiny_flux,
    "z-image-turbo": tiny_families.build_tiny_z_image,
    "qwen-image": tiny_families.build_tiny_qwen_image,
}
ARCH = {"sd": "sd", "sdxl": "sdxl", "sd3.5": "sd3", "flux-schnell": "flux", "z-image-turbo": "z-image"}
ARCH["qwen-image"] = "qwen-image"
FAMILIES = list(BUILDERS)
CHINESE = "夜晚的城市天际线"


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("loras")


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, lora_dir: Path) -> dict[str, DiffusersEngine]:
    """Each family's tiny pipeline, with a LoRA of its own in LORA_DIR/<architecture>/, loaded once."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("families")
    folders = {family: build(root / family) for family, build in BUILDERS.items()}
    for family, folder in folders.items():
        tiny_families.make_lora(folder, lora_dir / ARCH[family] / f"style-{ARCH[family]}.safetensors")
    return {
        family: DiffusersEngine(ModelEntry(name=f"tiny-{family}", source=str(folder)), lora_dir=str(lora_dir))
        for family, folder in folders.items()
    }


def size_of(engine: DiffusersEngine) -> int:
    return 64 if engine.arch == "sdxl" else 32


def request(engine: DiffusersEngine, seeds: list[int], prompt: str = "a red circle", **kw) -> Request:
    side = size_of(engine)
    return Request.text(prompt, seeds, side, side, steps=2, **kw)


def spy_on_calls(monkeypatch: pytest.MonkeyPatch, pipe: object) -> list[dict]:
    """Record the arguments each call of `pipe` gets (its signature kept: the engine reads it)."""
    seen: list[dict] = []
    call = type(pipe).__call__

    @functools.wraps(call)
    def recording(self, *args, **kwargs):
        seen.append(kwargs)
        return call(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe), "__call__", recording)
    return seen


def pixels(images: list[Image.Image]) -> list[np.ndarray]:
    return [np.asarray(im, dtype=np.int16) for im in images]


@pytest.mark.parametrize(
    ("family", "title", "steps", "guidance", "negative", "tokens"),
    [
        ("sd", "Stable Diffusion 1.x/2.x", 25, 7.0, True, 77),
        ("sdxl", "Stable Diffusion XL", 25, 7.0, True, 77),
        ("sd3.5", "Stable Diffusion 3.5", 28, 3.5, True, 256),  # T5's length
        ("flux-schnell", "FLUX.1 [schnell]", 4, 0.0, False, 256),
        ("z-image-turbo", "Z-Image-Turbo", 9, 0.0, False, None),  # 512 less the chat template's tokens
        ("qwen-image", "Qwen-Image", 50, 4.0, True, None),
    ],
)
def test_each_family_declares_its_defaults(engines, family, title, steps, guidance, negative, tokens) -> None:
    spec = engines[family].spec
    assert (spec.family, spec.title, spec.default_steps, spec.default_guidance) == (family, title, steps, guidance)
    assert spec.negative_prompt is negative
    if tokens is not None:
        assert spec.max_prompt_tokens == tokens
    else:
        assert 400 < spec.max_prompt_tokens < 512
    assert spec.loras == (f"style-{ARCH[family]}",)
    # The LoRAs of every other architecture are named, for a clear refusal at submit.
    assert set(spec.other_loras) == {f"style-{a}" for f in FAMILIES if (a := ARCH[f]) != ARCH[family]}
    assert {"text-to-image", "image-to-image", "inpaint"} <= set(spec.tasks)


@pytest.mark.parametrize("family", FAMILIES)
def test_text_to_image_with_one_seed_per_image(engines, family) -> None:
    engine = engines[family]
    a = pixels(engine.generate(request(engine, [1, 2, 3, 4])))
    b = pixels(engine.generate(request(engine, [9, 9, 1, 9])))
    assert [x.shape[:2] for x in a] == [(size_of(engine),) * 2] * 4
    assert np.array_equal(b[2], a[0])  # image i depends on seed i alone, wherever it sits in the batch
    assert not np.array_equal(a[0], a[1])


@pytest.mark.parametrize("family", FAMILIES)
def test_image_to_image_and_inpainting_share_the_weights(engines, family, monkeypatch) -> None:
    engine = engines[family]
    denoiser = "unet" if engine.arch in {"sd", "sdxl"} else "transformer"
    assert getattr(engine.img2img_pipe, denoiser) is getattr(engine.pipe, denoiser)
    assert getattr(engine.inpaint_pipe, denoiser) is getattr(engine.pipe, denoiser)
    source = engine.generate(request(engine, [1, 2, 3, 4]))[0]
    varied = engine.generate(request(engine, [5, 6, 7, 8], init_images=(source,), strength=0.6))
    assert [im.size for im in varied] == [source.size] * 4

    mask = Image.new("L", source.size, 0)
    mask.paste(255, (8, 8, source.width - 8, source.height - 8))
    # A UNet model without an inpainting checkpoint paints by masked denoising on its own
    # pipeline; the transformer families through diffusers' inpainting pipelines.
    masked = engine.arch in {"sd", "sdxl"}
    calls = spy_on_calls(monkeypatch, engine.pipe if masked else engine.inpaint_pipe)
    painted = pixels(engine.generate(request(engine, [5, 6, 7, 8], init_images=(source,), strength=0.9, mask=mask)))
    again = pixels(engine.generate(request(engine, [5, 6, 7, 8], init_images=(source,), strength=0.9, mask=mask)))
    if masked:
        assert [c["latents"].shape[0] for c in calls] == [4, 4]
    else:
        assert [c["mask_image"].mode for c in calls] == ["L", "L"]
    assert all(np.array_equal(x, y) for x, y in zip(painted, again, strict=True))
    assert not np.array_equal(painted[0], pixels(varied)[0])


@pytest.mark.parametrize("family", FAMILIES)
def test_a_lora_is_applied_for_one_job_and_removed_for_the_next(engines, family) -> None:
    engine = engines[family]
    lora = f"style-{ARCH[family]}"
    plain = pixels(engine.generate(request(engine, [1, 2, 3, 4])))[0]
    full = pixels(engine.generate(request(engine, [1, 2, 3, 4], loras=(LoraRef(lora, 1.0),))))[0]
    half = pixels(engine.generate(request(engine, [1, 2, 3, 4], loras=(LoraRef(lora, 0.5),))))[0]
    after = pixels(engine.generate(request(engine, [1, 2, 3, 4])))[0]
    effect_full, effect_half = np.abs(full - plain).mean(), np.abs(half - plain).mean()
    assert effect_full > 0.1 and effect_half > 0  # the LoRA moves the pixels, by its weight
    assert not np.array_equal(full, half)
    assert np.array_equal(after, plain)  # and nothing of it is left for a job without it
    assert engine.loras.active == ()


def test_a_chinese_prompt_goes_through_qwen_images_own_tokenizer(engines) -> None:
    engine = engines["qwen-image"]
    ids = engine.tokenizer(CHINESE).input_ids
    # Four words of the vocabulary (夜晚 的 城市 天际线), not 24 bytes.
    assert [engine.tokenizer.decode([i]) for i in ids] == ["夜晚", "的", "城市", "天际线"]
    assert engine.count_tokens(CHINESE) == 4
    # The bot counts with the tokenizer the worker publishes: the same four.
    count = tokens.build(engine.tokenizer_json())
    assert count is not None and count(CHINESE) == 4
    chinese = pixels(engine.generate(request(engine, [1, 2, 3, 4], prompt=CHINESE)))
    english = pixels(engine.generate(request(engine, [1, 2, 3, 4], prompt="a red circle")))
    assert not np.array_equal(chinese[0], english[0])  # the text reaches the image


def test_the_negative_prompt_reaches_families_that_read_one(engines) -> None:
    engine = engines["sd3.5"]
    plain = pixels(engine.generate(request(engine, [1, 2, 3, 4])))[0]
    avoided = pixels(engine.generate(request(engine, [1, 2, 3, 4], negative_prompt="blue square")))[0]
    assert not np.array_equal(plain, avoided)


def test_qwen_image_guides_with_a_blank_negative_prompt_when_none_is_given(engines, monkeypatch) -> None:
    engine = engines["qwen-image"]
    seen = spy_on_calls(monkeypatch, engine.pipe)
    engine.generate(replace(request(engine, [1, 2, 3, 4]), guidance=4.0))
    assert seen[0]["true_cfg_scale"] == 4.0 and seen[0]["negative_prompt"] == [" "] * 4
    assert "guidance_scale" not in seen[0]


def test_flux_is_given_no_negative_prompt_and_its_t5_length(engines, monkeypatch) -> None:
    engine = engines["flux-schnell"]
    seen = spy_on_calls(monkeypatch, engine.pipe)
    engine.generate(request(engine, [1, 2, 3, 4]))
    assert "negative_prompt" not in seen[0] and seen[0]["max_sequence_length"] == 256


def test_large_images_are_decoded_in_tiles(engines) -> None:
    engine = engines["flux-schnell"]
    engine.vae_tiling_pixels = 16 * 16
    try:
        engine.generate(request(engine, [1]))
        assert engine.pipe.vae.use_tiling
        engine.vae_tiling_pixels = 64 * 64
        engine.generate(request(engine, [1]))
        assert not engine.pipe.vae.use_tiling
    finally:
        engine.vae_tiling_pixels = 2048 * 2048


def test_out_of_memory_gives_the_memory_back_and_the_engine_serves_on(engines, monkeypatch) -> None:
    engine = engines["z-image-turbo"]
    forward = type(engine.pipe.transformer).forward

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(type(engine.pipe.transformer), "forward", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError) as raised:
        engine.generate(request(engine, [1, 2, 3, 4]))
    # What worker/pipeline.py turns into "The GPU ran out of memory…" for that job alone.
    assert isinstance(raised.value, RuntimeError) and "out of memory" in str(raised.value)
    monkeypatch.setattr(type(engine.pipe.transformer), "forward", forward)
    assert len(engine.generate(request(engine, [1, 2, 3, 4]))) == 4


def parts(*texts: str) -> tuple[WeightedPrompt, ...]:
    return tuple(WeightedPrompt(text) for text in texts)


@pytest.mark.parametrize("family", FAMILIES)
def test_chaos_weird_stop_and_weighted_parts_each_change_the_images_reproducibly(engines, family) -> None:
    """worker/engines/conditioning.py and early_stop.py on every family's own encode_prompt and
    scheduler (Qwen-Image's and Z-Image's parts have sequences of different lengths: padded)."""
    engine = engines[family]
    assert engine.spec.unsupported == ()
    plain = pixels(engine.generate(request(engine, [1, 2, 3, 4])))
    variants = {
        "chaos": dict(chaos=100),
        "weird": dict(weird=3000),
        "stop": dict(stop=0.5),
        "weights": dict(prompts=parts("a red circle", "a blue square on a green background")),
    }
    for name, change in variants.items():
        changed = pixels(engine.generate(replace(request(engine, [1, 2, 3, 4]), **change)))
        again = pixels(engine.generate(replace(request(engine, [1, 2, 3, 4]), **change)))
        assert all(np.array_equal(x, y) for x, y in zip(changed, again, strict=True)), name
        assert not all(np.array_equal(x, y) for x, y in zip(changed, plain, strict=True)), name
    # Image-to-image goes through the same call: --chaos moves its conditioning too.
    source = engine.generate(request(engine, [1]))[0]
    varied = request(engine, [5, 6, 7, 8], init_images=(source,), strength=0.8)
    assert not np.array_equal(
        pixels(engine.generate(varied))[0], pixels(engine.generate(replace(varied, chaos=100)))[0]
    )
