"""Grid composition and encoding for upload.

A PNG is the first choice (lossless); when it would pass Discord's upload
limit the result falls back to WebP, then to JPEG at falling quality, and
never fails the job on size alone."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

from PIL import Image

from shared.errors import ResultTooLarge

logger = logging.getLogger(__name__)

JPEG_QUALITIES = (90, 80, 65, 50)


def compose_grid(images: Sequence[Image.Image]) -> Image.Image:
    """Four images of equal size → one 2W×2H image, left to right, top to bottom."""
    if len(images) != 4:
        raise ValueError(f"a grid needs 4 images, got {len(images)}")
    w, h = images[0].size
    if any(im.size != (w, h) for im in images):
        raise ValueError("grid images must share one size")
    grid = Image.new("RGB", (2 * w, 2 * h))
    for i, im in enumerate(images):
        grid.paste(im.convert("RGB"), ((i % 2) * w, (i // 2) * h))
    return grid


def split_grid(grid: Image.Image) -> list[Image.Image]:
    w, h = grid.width // 2, grid.height // 2
    return [grid.crop(((i % 2) * w, (i // 2) * h, (i % 2 + 1) * w, (i // 2 + 1) * h)) for i in range(4)]


def encode_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def encode_for_upload(
    image: Image.Image, limit: int, stem: str = "grid", png: bytes | None = None
) -> tuple[bytes, str]:
    """(data, filename) under `limit` bytes: PNG, else WebP, else JPEG. `png` is
    the image's PNG when the caller has encoded it already (it is not redone)."""
    data = png if png is not None else encode_png(image)
    if len(data) <= limit:
        return data, f"{stem}.png"
    buf = io.BytesIO()
    image.save(buf, format="WEBP", quality=90, method=4)
    if buf.tell() <= limit:
        logger.info("PNG was %d bytes; sending WebP (%d bytes)", len(data), buf.tell())
        return buf.getvalue(), f"{stem}.webp"
    for quality in JPEG_QUALITIES:
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=quality, optimize=True)
        if buf.tell() <= limit:
            logger.info("sending JPEG at quality %d (%d bytes)", quality, buf.tell())
            return buf.getvalue(), f"{stem}.jpg"
    raise ResultTooLarge(
        f"The image is too large to upload even as a JPEG ({buf.tell()} bytes, limit {limit}). Try a smaller size."
    )


def decode_image(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im
