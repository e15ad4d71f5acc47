"""The embedded denoiser's coordinate channels, and the warm start that adds
them to a model trained without."""

from __future__ import annotations

import numpy as np
import torch

from worker.embedded.denoiser import (
    COORD_CHANNELS,
    PIXEL_CHANNELS,
    build_unet,
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
    from worker.embedded.train import MIN_SNR_GAMMA, loss_weight

    snr = torch.tensor([1e-4, 1.0, 100.0])
    plain = loss_weight(snr, "min-snr")
    plus = loss_weight(snr, "min-snr+1")
    assert plain[0] < 1e-3  # min-SNR all but ignores the noisiest steps...
    assert torch.isclose(plus[0], torch.tensor(1.0), atol=1e-3)  # ...min-SNR+1 weighs them like plain v-loss
    assert torch.isclose(plus[2], torch.tensor((MIN_SNR_GAMMA + 1) / 101))  # low noise: still clamped
    assert torch.all(plus > plain)


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
    from worker.embedded.train import OBJECT_DILATE_PX, object_mask, pixel_weights

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
