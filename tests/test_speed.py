"""The speed switches (worker/engines/speed.py) reach the pipeline a worker
loads: each setting, read from the environment the way a worker reads it, is
checked on the modules of a tiny random pipeline on the CPU. torch.compile is
checked as "would compile" (wrapped, compiled lazily at the first call): a
CPU compile takes longer than the suite should."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.errors import ConfigError
from shared.params import ASPECT_RATIOS
from shared.settings import Settings
from tests.support.tiny_families import build_tiny_flux
from tests.support.tiny_sd import build_tiny_sd
from worker.engines import registry
from worker.engines.base import Request
from worker.engines.speed import SpeedOptions, is_compiled, warm_sizes


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return build_tiny_sd(tmp_path_factory.mktemp("speed"))


def load(model: Path, **env: str):
    settings = Settings.from_env(env)
    return registry.load_engine(str(model), "cpu", settings)


def grid(engine, steps: int = 2, **kw) -> list[np.ndarray]:
    images = engine.generate(Request.text("a red circle", [1, 2, 3, 4], 32, 32, steps=steps, **kw))
    return [np.asarray(im, dtype=np.int16) for im in images]


def test_auto_is_on_on_cuda_and_off_on_the_cpu():
    settings = Settings.from_env({})
    on_cuda, on_cpu = SpeedOptions.for_device(settings, "cuda"), SpeedOptions.for_device(settings, "cpu")
    assert (on_cuda.bf16, on_cuda.channels_last, on_cuda.compile, on_cuda.fuse_qkv) == (True, True, True, True)
    assert (on_cpu.bf16, on_cpu.channels_last, on_cpu.compile, on_cpu.fuse_qkv) == (False, False, False, False)
    assert not on_cuda.cuda_graphs and on_cuda.quantize == "none" and on_cuda.step_cache == 0.0
    assert on_cuda.latent_previews and on_cpu.latent_previews
    off = SpeedOptions.for_device(Settings.from_env({"COMPILE": "false", "DAYDREAM_BF16": "off"}), "cuda:1")
    assert not off.compile and not off.bf16 and off.channels_last
    assert off.dtype("cpu") == torch.float32 and on_cpu.dtype("cpu") == torch.float32
    assert SpeedOptions(bf16=True).dtype("cpu") == torch.bfloat16
    # CUDA_GRAPHS asked for on a CPU worker is not applied there.
    assert not SpeedOptions.for_device(Settings.from_env({"CUDA_GRAPHS": "true"}), "cpu").cuda_graphs


@pytest.mark.parametrize(
    ("env", "variable"),
    [({"COMPILE": "sometimes"}, "COMPILE"), ({"QUANTIZE": "int4"}, "QUANTIZE"), ({"STEP_CACHE": "2"}, "STEP_CACHE")],
)
def test_a_bad_value_names_the_variable_and_what_it_takes(env, variable):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert variable in str(caught.value)
    assert {"COMPILE": "true, false or auto", "QUANTIZE": "none or int8 or fp8", "STEP_CACHE": "threshold"}[
        variable
    ] in str(caught.value)


def test_each_switch_reaches_the_pipeline(tiny_sd):
    plain = load(tiny_sd)
    fast = load(tiny_sd, DAYDREAM_BF16="true", CHANNELS_LAST="true", FUSE_QKV="true", LATENT_PREVIEWS="false")
    assert plain.speedups == () and plain.pipe.unet.dtype == torch.float32
    assert fast.speedups == ("fuse_qkv", "channels_last")
    unet = fast.pipe.unet
    assert unet.dtype == torch.bfloat16 and fast.pipe.text_encoder.dtype == torch.bfloat16
    assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert not plain.pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert fast.pipe.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    processors = {type(p).__name__ for p in unet.attn_processors.values()}
    assert processors == {"FusedAttnProcessor2_0"}
    assert {type(p).__name__ for p in plain.pipe.unet.attn_processors.values()} == {"AttnProcessor2_0"}
    # img2img shares the modules, so it samples with the same switches.
    assert fast.img2img_pipe.unet is unet
    # LATENT_PREVIEWS=false: previews decoded by the VAE, at the images' size (a 2×2 grid of 32² tiles),
    # where the latent map gives one pixel per latent (16² tiles).
    sizes: dict[str, list] = {"fast": [], "plain": []}
    fast.generate(Request.text("a red circle", [1, 2, 3, 4], 32, 32, steps=2), lambda _f, p: sizes["fast"].append(p()))
    plain.generate(
        Request.text("a red circle", [1, 2, 3, 4], 32, 32, steps=2), lambda _f, p: sizes["plain"].append(p())
    )
    assert [p.size for p in sizes["fast"]] == [(64, 64)] * 2
    assert [p.size for p in sizes["plain"]] == [(32, 32)] * 2


def test_fused_projections_and_channels_last_keep_the_images(tiny_sd):
    plain = grid(load(tiny_sd))
    fused = grid(load(tiny_sd, CHANNELS_LAST="true", FUSE_QKV="true"))
    # The same arithmetic regrouped: the same images, up to float rounding.
    assert max(int(np.abs(a - b).max()) for a, b in zip(plain, fused, strict=True)) <= 2


def test_compile_wraps_the_denoiser_and_warm_up_covers_every_aspect(tiny_sd):
    compiled = load(tiny_sd, COMPILE="true")
    assert compiled.speedups == ("compile",)
    assert is_compiled(compiled.pipe) and not is_compiled(load(tiny_sd).pipe)
    # Regional compilation: the UNet's repeated transformer blocks, each wrapped (compiled at first call).
    blocks = [m for m in compiled.pipe.unet.modules() if type(m).__name__ == "BasicTransformerBlock"]
    assert blocks and all(b._compiled_call_impl is not None for b in blocks)
    expected = {compiled.spec.image_size(a) for a in ASPECT_RATIOS}
    assert len(expected) > 1
    assert set(warm_sizes(compiled.spec, compiled=True)) == expected
    assert warm_sizes(compiled.spec, compiled=False) == [(32, 32)]

    class Recording:  # the warm-up's requests, without running a CPU compile for each
        spec, pipe = compiled.spec, compiled.pipe

        def __init__(self) -> None:
            self.asked: list[tuple[int, int, int]] = []

        def generate(self, req, progress=None):
            self.asked.append((req.width, req.height, len(req.seeds)))
            return []

    engine = Recording()
    registry.warm_up(engine)
    assert {(w, h) for w, h, _n in engine.asked} == expected and {n for *_s, n in engine.asked} == {4}


def test_step_cache_on_a_transformer_and_refused_for_a_unet(tmp_path, tiny_sd, caplog):
    flux = load(build_tiny_flux(tmp_path), STEP_CACHE="0.5")
    assert flux.speedups == ("step_cache",) and flux.pipe.transformer.is_cache_enabled
    a = [np.asarray(im) for im in flux.generate(Request.text("a red circle", [1, 2, 3, 4], 32, 32, steps=3))]
    b = [np.asarray(im) for im in flux.generate(Request.text("a red circle", [1, 2, 3, 4], 32, 32, steps=3))]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))  # the cache starts afresh each job
    with caplog.at_level(logging.WARNING, logger="worker.engines.speed"):
        unet = load(tiny_sd, STEP_CACHE="0.5")
    assert unet.speedups == ()
    assert "STEP_CACHE skipped" in caplog.text and "UNet2DConditionModel" in caplog.text


def test_quantize_applies_with_torchao_and_says_why_not_without(tiny_sd, caplog):
    with caplog.at_level(logging.WARNING, logger="worker.engines.speed"):
        engine = load(tiny_sd, QUANTIZE="int8")
    if importlib.util.find_spec("torchao") is None:
        assert engine.speedups == ()
        assert "QUANTIZE=int8 skipped: torchao is not installed" in caplog.text
    else:
        # The tiny UNet's linear layers are all below QUANTIZE_MIN_FEATURES: applied, nothing quantized.
        assert engine.speedups == ("int8",)


def test_deep_cache_runs_the_whole_unet_every_nth_step_only(tiny_sd):
    plain, cached = load(tiny_sd), load(tiny_sd, DEEP_CACHE="2")
    assert cached.speedups == ("deep_cache",) and plain.speedups == ()
    full_passes: list[int] = []
    cached.pipe.unet.mid_block.resnets[0].register_forward_hook(lambda *_a: full_passes.append(1))
    first = grid(cached, steps=4)
    assert len(full_passes) == 2  # steps 1 and 3 in full; 2 and 4 from the kept deep features
    again = grid(cached, steps=4)
    assert len(full_passes) == 4  # a new job starts with a full step
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    reference = grid(plain, steps=4)
    assert any(not np.array_equal(a, b) for a, b in zip(first, reference, strict=True))  # it did skip work


def test_deep_cache_is_refused_for_a_transformer(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="worker.engines.speed"):
        flux = load(build_tiny_flux(tmp_path), DEEP_CACHE="3")
    assert flux.speedups == () and "DEEP_CACHE skipped" in caplog.text


def test_with_loras_loaded_fusing_and_compiling_are_left_off(tmp_path, tiny_sd, caplog):
    from tests.support.tiny_families import make_lora

    make_lora(tiny_sd, tmp_path / "loras" / "sd" / "ink.safetensors")
    with caplog.at_level(logging.WARNING, logger="worker.engines.speed"):
        engine = load(tiny_sd, LORA_DIR=str(tmp_path / "loras"), FUSE_QKV="true", COMPILE="true", CHANNELS_LAST="true")
    assert engine.spec.loras == ("ink",)
    assert engine.speedups == ("channels_last",) and not is_compiled(engine.pipe)
    assert "FUSE_QKV skipped: LoRAs are loaded" in caplog.text and "COMPILE skipped: LoRAs are loaded" in caplog.text


def test_a_denoiser_whose_text_length_varies_compiles_with_dynamic_shapes(tmp_path, caplog):
    from tests.support.tiny_families import build_tiny_z_image
    from worker.engines import speed

    z_image = load(build_tiny_z_image(tmp_path))
    calls: list[dict] = []
    for block in z_image.pipe.transformer.modules():
        block.compile = lambda *a, **kw: calls.append(kw)  # record how, without compiling
    with caplog.at_level(logging.WARNING, logger="worker.engines.speed"):
        applied = speed.apply(z_image.pipe, SpeedOptions(compile=True, cuda_graphs=True))
    assert applied == ("compile",) and "CUDA_GRAPHS skipped" in caplog.text
    assert calls and all(kw["dynamic"] is None for kw in calls)  # automatic dynamic: one graph for all lengths
