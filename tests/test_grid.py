from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from shared.errors import ResultTooLarge
from shared.grid import compose_grid, decode_image, encode_for_upload, split_grid


def tiles(size=(32, 24)):
    return [Image.new("RGB", size, c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]]


def test_compose_and_split_round_trip():
    grid = compose_grid(tiles())
    assert grid.size == (64, 48)
    assert grid.getpixel((0, 0)) == (255, 0, 0)
    assert grid.getpixel((63, 0)) == (0, 255, 0)
    assert grid.getpixel((0, 47)) == (0, 0, 255)
    assert [t.getpixel((5, 5)) for t in split_grid(grid)] == [t.getpixel((0, 0)) for t in tiles()]


def test_grid_needs_four_equal_images():
    with pytest.raises(ValueError):
        compose_grid(tiles()[:3])
    with pytest.raises(ValueError):
        compose_grid([*tiles()[:3], Image.new("RGB", (10, 10))])


def noise(side: int) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))


def test_png_when_it_fits():
    data, name = encode_for_upload(compose_grid(tiles()), limit=10 * 1024 * 1024)
    assert name.endswith(".png") and decode_image(data).format == "PNG"


def test_falls_back_to_webp_then_jpeg_instead_of_failing():
    img = noise(512)  # incompressible: PNG ≈ 786 KB
    data, name = encode_for_upload(img, limit=700_000)
    assert name.endswith(".webp") and len(data) <= 700_000
    data, name = encode_for_upload(img, limit=150_000)
    assert name.endswith(".jpg") and len(data) <= 150_000
    assert decode_image(data).size == (512, 512)


def test_too_large_even_as_jpeg_is_a_clear_error():
    with pytest.raises(ResultTooLarge) as err:
        encode_for_upload(noise(512), limit=1000)
    assert "too large" in str(err.value)
