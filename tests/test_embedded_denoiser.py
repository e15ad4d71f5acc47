"""The embedded denoiser's coordinate channels, and the warm start that adds
them to a model trained without."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from worker.embedded.denoiser import (
    ARCHITECTURE_FILE,
    COORD_CHANNELS,
    PIXEL_CHANNELS,
    PixelNorm,
    build_unet,
    load_unet,
    norm_of,
    use_pixel_norm,
    uses_coords,
    widen_for_coords,
    with_coords,
)
from worker.embedded.textenc import EMBED_DIM, MAX_TOKENS


def test_coordinates_span_minus_one_to_one_whatever_the_aspect_ratio() -> None:
    x = torch.zeros(2, PIXEL_CHANNELS, 12, 20)
    out = with_coords(x)
    assert out.shape == (2, PIXEL_CHANNELS + COORD_CHANNELS, 12, 20)
    xs, ys = out[0, -2], out[0, -1]
    assert xs[0, 0] == -1 and xs[0, -1] == 1 and torch.all(xs[:, 0] == -1)  # x grows to the right
    assert ys[0, 0] == -1 and ys[-1, 0] == 1 and torch.all(ys[0, :] == -1)  # y grows downwards
    assert torch.equal(out[:, :PIXEL_CHANNELS], x)


def test_widening_keeps_what_the_model_computes() -> None:
    torch.manual_seed(0)
    narrow = build_unet(coords=False).eval()
    assert not uses_coords(narrow)
    wide = widen_for_coords(narrow).eval()
    assert uses_coords(wide)
    x = torch.randn(1, PIXEL_CHANNELS, 16, 16)
    tokens = torch.randn(1, MAX_TOKENS, EMBED_DIM)
    mask = torch.ones(1, MAX_TOKENS, dtype=torch.bool)
    pooled = torch.nn.functional.normalize(torch.randn(1, EMBED_DIM), dim=-1)
    t = torch.tensor([500])
    with torch.no_grad():
        before = narrow(x, t, encoder_hidden_states=tokens, encoder_attention_mask=mask, class_labels=pooled).sample
        after = wide(
            with_coords(x), t, encoder_hidden_states=tokens, encoder_attention_mask=mask, class_labels=pooled
        ).sample
    assert torch.allclose(before, after, atol=1e-5)
    # ...and the new input weights are there to learn: the coordinates now reach conv_in.
    assert wide.conv_in.weight.shape[1] == PIXEL_CHANNELS + COORD_CHANNELS


def test_loss_weighting_keeps_high_noise_steps_in_play() -> None:
    from worker.embedded.objective import MIN_SNR_GAMMA, loss_weight

    snr = torch.tensor([1e-4, 1.0, 100.0])
    plain = loss_weight(snr, "min-snr")
    plus = loss_weight(snr, "min-snr+1")
    assert plain[0] < 1e-3  # min-SNR all but ignores the noisiest steps...
    assert torch.isclose(plus[0], torch.tensor(1.0), atol=1e-3)  # ...min-SNR+1 weighs them like plain v-loss
    assert torch.isclose(plus[2], torch.tensor((MIN_SNR_GAMMA + 1) / 101))  # low noise: still clamped
    assert torch.all(plus > plain)


def test_learning_rate_warms_up_then_decays_over_the_whole_run() -> None:
    from worker.embedded.objective import learning_rate

    def lr(step: int, warm_from: int = 0, decay: str = "cosine") -> float:
        return learning_rate(step, 4e-4, warm_from=warm_from, warmup=200, start=0, total=7000, decay=decay, floor=0.1)

    assert lr(0) < lr(100) < lr(199)  # warm-up ramps...
    assert lr(199) == pytest.approx(4e-4, rel=1e-2)  # ...to the base rate (the cosine barely begun)
    assert lr(3500) == pytest.approx(4e-4 * 0.55)  # half-way down the cosine
    assert lr(7000) == pytest.approx(4e-5) and lr(9000) == pytest.approx(4e-5)  # the floor, and no lower
    assert lr(3500, decay="none") == lr(6999, decay="none") == 4e-4
    # A resume warms up again from where it started, then joins the same curve.
    assert lr(3000, warm_from=3000) < lr(3000)
    assert lr(3300, warm_from=3000) == pytest.approx(lr(3300))
    with pytest.raises(ValueError, match="unknown lr decay 'linear'"):
        lr(10, decay="linear")


def test_sampling_timesteps_follow_the_shift_and_the_strength() -> None:
    from worker.embedded.denoiser import sampling_timesteps, shifted_timesteps

    plain = sampling_timesteps(20, shift=1.0)
    shifted = sampling_timesteps(20, shift=4.0)
    for ts in (plain, shifted):
        assert len(ts) == 20 and ts[0] == 999 and ts == sorted(ts, reverse=True) and len(set(ts)) == 20
    assert abs(plain[10] - 500) <= 1  # no shift: evenly spaced in t, like DPM-Solver's "linspace" spacing
    assert shifted[10] > 800  # a shift spends more of the steps at high noise
    # Image to image: the strength names the plain schedule's noise level, whatever the shift.
    for shift in (1.0, 2.0, 4.0):
        ts = sampling_timesteps(8, strength=0.4, shift=shift)
        assert abs(ts[0] - 0.4 * 999) <= 1 and len(ts) == 8, ts
    table = shifted_timesteps(4.0)
    assert table[0] < 20 and table[-1] == 999 and np.all(np.diff(table) >= 0)


def test_object_mask_and_weights_follow_the_drawn_object() -> None:
    from worker.embedded import scenes
    from worker.embedded.objective import OBJECT_DILATE_PX, object_mask, pixel_weights

    scene = scenes.Scene("blue", (scenes.SceneObject("yellow", "square", "top left", "small"),))
    img = np.asarray(scenes.render(scene, 64), dtype=np.float32)
    mask = object_mask(img, "blue")
    ys, xs = np.nonzero(mask)
    # The square sits in the top-left quadrant and covers its drawn area plus
    # the anti-aliased edge pixels (about one more pixel each side).
    assert xs.max() < 32 and ys.max() < 32
    side = 2 * 0.85 * scenes.SIZES["small"] / 2 * 64
    assert side**2 < mask.sum() < (side + 3) ** 2

    masks = torch.from_numpy(np.stack([mask, np.zeros_like(mask)]))[:, None]
    w = pixel_weights(masks, 4.0)
    assert torch.allclose(w.mean(dim=(1, 2, 3)), torch.ones(2))  # the loss keeps its scale
    first = w[0, 0]
    inside = first[int(ys.mean()), int(xs.mean())]
    ring = first[ys.min() - OBJECT_DILATE_PX, int(xs.mean())]  # just outside the edge
    far = first[-1, -1]
    assert torch.isclose(inside / far, torch.tensor(4.0)) and torch.isclose(ring, inside)
    assert torch.all(w[1] == 1.0)  # no object (a caption-only tile): plain mean
    # object_weight 1 is the plain mean over pixels.
    assert torch.all(pixel_weights(masks, 1.0) == 1.0)


def _forward(unet: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(1)
    tokens = torch.randn(x.shape[0], MAX_TOKENS, EMBED_DIM)
    mask = torch.ones(x.shape[0], MAX_TOKENS, dtype=torch.bool)
    pooled = torch.nn.functional.normalize(torch.randn(x.shape[0], EMBED_DIM), dim=-1)
    with torch.no_grad():
        return unet(
            with_coords(x),
            torch.tensor([500]),
            encoder_hidden_states=tokens,
            encoder_attention_mask=mask,
            class_labels=pooled,
        ).sample


def test_pixel_norm_keeps_each_cell_to_itself() -> None:
    """The speckle blob's cause: GroupNorm lets one cell's spike rescale every
    other cell. PixelNorm takes its statistics over a cell's channels only."""
    torch.manual_seed(0)
    x = torch.randn(2, 64, 8, 8)
    spiked = x.clone()
    spiked[:, :, 2, 2] *= 50
    group, pixel = torch.nn.GroupNorm(32, 64), PixelNorm(64)
    far = (slice(None), slice(None), slice(4, None), slice(4, None))
    assert not torch.allclose(group(x)[far], group(spiked)[far], atol=1e-3)  # GroupNorm: the spike reaches far cells
    assert torch.allclose(pixel(x)[far], pixel(spiked)[far], atol=1e-6)  # PixelNorm: it does not
    out = pixel(x)
    assert torch.allclose(out.mean(dim=1), torch.zeros(2, 8, 8), atol=1e-5)
    assert torch.allclose(out.var(dim=1, unbiased=False), torch.ones(2, 8, 8), atol=1e-3)


def test_pixel_norm_swap_keeps_the_weights_and_leaves_no_group_norm() -> None:
    torch.manual_seed(0)
    group = build_unet(norm="group").eval()
    before = {k: v.clone() for k, v in group.state_dict().items()}
    pixel = use_pixel_norm(group)
    assert norm_of(pixel) == "pixel"
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in pixel.modules())
    after = pixel.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert norm_of(build_unet()) == "pixel" and norm_of(build_unet(norm="group")) == "group"
    with pytest.raises(ValueError, match="unknown norm 'batch'"):
        build_unet(norm="batch")


def test_an_exported_model_loads_with_the_norm_it_was_trained_with(tmp_path: Path) -> None:
    from worker.embedded.train import export

    torch.manual_seed(0)
    unet = build_unet().eval()
    export(unet, tmp_path / "m", {"steps": 0})
    assert json.loads((tmp_path / "m" / ARCHITECTURE_FILE).read_text()) == {"norm": "pixel"}
    loaded = load_unet(tmp_path / "m").eval()
    assert norm_of(loaded) == "pixel"
    x = torch.randn(1, PIXEL_CHANNELS, 16, 16)
    # Exported in fp16: the same function up to half precision.
    assert torch.allclose(_forward(unet.half().float(), x), _forward(loaded, x), atol=1e-4)
    # A folder without architecture.json is a GroupNorm model (all weights before the change).
    (tmp_path / "m" / ARCHITECTURE_FILE).unlink()
    assert norm_of(load_unet(tmp_path / "m")) == "group"
    (tmp_path / "m" / ARCHITECTURE_FILE).write_text('{"norm": "batch"}')
    with pytest.raises(ValueError, match="unknown norm 'batch'"):
        load_unet(tmp_path / "m")


def test_an_export_of_a_loaded_model_does_not_record_where_it_was_loaded_from(tmp_path: Path) -> None:
    # A warm start loads from a folder (often a temporary one); the shipped
    # config must not carry that path.
    from worker.embedded.train import export

    export(build_unet().eval(), tmp_path / "first", {"steps": 0})
    export(load_unet(tmp_path / "first"), tmp_path / "second", {"steps": 1})
    config = json.loads((tmp_path / "second" / "unet" / "config.json").read_text())
    assert "_name_or_path" not in config
    assert config["_class_name"] == "UNet2DConditionModel"
    assert norm_of(load_unet(tmp_path / "second")) == "pixel"
