"""The canvas and mask of each edit, from the source image.

The mask is white where the engine paints and black where it keeps the
source (the convention of `Request.mask`). The canvas holds the source where
it is kept and, where it is to be painted, the source's edges stretched
outwards: an engine that starts from the canvas (an inpainting checkpoint at
a strength below 1) then starts from the right colours, and one that starts
from noise ignores them. Sizes are rounded to the model's size multiple."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from shared.edits import PAN_GROWTH, REGION_GRID, Edit
from shared.errors import InvalidRequest
from shared.params import image_size

MAX_CANVAS_SIDE = 2048  # a pan after a pan after a pan… stops here


@dataclass
class Canvas:
    image: Image.Image  # the source placed on the new canvas
    mask: Image.Image  # "L": 255 paint, 0 keep
    kept: tuple[int, int, int, int]  # the box (left, top, right, bottom) where the source sits


def _round(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def _check_side(width: int, height: int) -> None:
    if max(width, height) > MAX_CANVAS_SIDE:
        raise InvalidRequest(
            f"That would make a {width}×{height} image; Daydream paints up to {MAX_CANVAS_SIDE} pixels a side. "
            "Upscale or pan a smaller image instead."
        )


def _place(source: Image.Image, size: tuple[int, int], box: tuple[int, int, int, int]) -> Canvas:
    """`source` resized into `box` of a canvas of `size`; the rest stretched from its edges."""
    left, top, right, bottom = box
    inner = source.convert("RGB").resize((right - left, bottom - top), Image.Resampling.LANCZOS)
    # Edge stretch: the inner image blown up to the whole canvas, then the inner pasted on top.
    canvas = inner.resize(size, Image.Resampling.BILINEAR)
    canvas.paste(inner, (left, top))
    mask = Image.new("L", size, 255)
    mask.paste(0, box)
    return Canvas(canvas, mask, box)


def zoom_canvas(source: Image.Image, factor: float, multiple: int, aspect: str | None = None) -> Canvas:
    """Zoom Out: the image shrunk by `factor` into the centre of a canvas of the
    source's size (or of its pixel count at `aspect`)."""
    width, height = source.size
    if aspect is not None:
        width, height = image_size(aspect, int((width * height) ** 0.5), multiple)
    else:
        width, height = _round(width, multiple), _round(height, multiple)
    _check_side(width, height)
    scale = min(width / source.width, height / source.height) / factor
    w, h = max(1, round(source.width * scale)), max(1, round(source.height * scale))
    left, top = (width - w) // 2, (height - h) // 2
    return _place(source, (width, height), (left, top, left + w, top + h))


def pan_canvas(source: Image.Image, direction: str, multiple: int) -> Canvas:
    """Pan: the canvas grows by half in `direction`; the image keeps its size at the other side."""
    w, h = source.size
    if direction in ("left", "right"):
        width, height = _round(w * (1 + PAN_GROWTH), multiple), h
        left = width - w if direction == "left" else 0
        box = (left, 0, left + w, h)
    else:
        width, height = w, _round(h * (1 + PAN_GROWTH), multiple)
        top = height - h if direction == "up" else 0
        box = (0, top, w, top + h)
    _check_side(width, height)
    return _place(source, (width, height), box)


def square_canvas(source: Image.Image, multiple: int) -> Canvas:
    """Make Square: outpaint to 1:1 around the image, centred."""
    w, h = source.size
    if w == h:
        raise InvalidRequest("This image is square already: Make Square has nothing to add.")
    side = _round(max(w, h), multiple)
    _check_side(side, side)
    left, top = (side - w) // 2, (side - h) // 2
    return _place(source, (side, side), (left, top, left + w, top + h))


def cell_box(cell: int, size: tuple[int, int], grid: int = REGION_GRID) -> tuple[int, int, int, int]:
    """The pixel box of cell `cell` (1-based, row by row) of a grid×grid cut of an image of `size`."""
    row, col = divmod(cell - 1, grid)
    w, h = size
    return (col * w // grid, row * h // grid, (col + 1) * w // grid, (row + 1) * h // grid)


def region_canvas(source: Image.Image, cells: tuple[int, ...]) -> Canvas:
    """Vary (Region): the image as it is, the chosen cells to repaint."""
    image = source.convert("RGB")
    mask = Image.new("L", image.size, 0)
    for cell in cells:
        mask.paste(255, cell_box(cell, image.size))
    return Canvas(image, mask, (0, 0, image.width, image.height))


def edit_canvas(kind: str, source: Image.Image, edit: Edit, multiple: int) -> Canvas:
    if kind == "region":
        return region_canvas(source, edit.cells)
    if kind == "zoom":
        return zoom_canvas(source, edit.factor or 2.0, multiple, edit.aspect)
    if kind == "pan":
        return pan_canvas(source, edit.direction or "right", multiple)
    if kind == "square":
        return square_canvas(source, multiple)
    raise ValueError(f"not an edit kind: {kind}")


def cell_preview(source: Image.Image, grid: int = REGION_GRID, side: int = 512) -> Image.Image:
    """The image with its grid drawn and each cell numbered, for the region select."""
    image = source.convert("RGB")
    scale = side / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, image.height // (grid * 3)))
    for cell in range(1, grid * grid + 1):
        left, top, right, bottom = cell_box(cell, image.size, grid)
        draw.rectangle((left, top, right, bottom), outline=(255, 255, 255), width=2)
        label = str(cell)
        x, y = (left + right) // 2, (top + bottom) // 2
        draw.text((x, y), label, fill=(255, 255, 255), anchor="mm", font=font, stroke_width=3, stroke_fill=(0, 0, 0))
    return image


def cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` scaled to cover `size` and cropped to it, centred (no bars, no stretch)."""
    w, h = size
    scale = max(w / image.width, h / image.height)
    big = image.convert("RGB").resize(
        (max(w, round(image.width * scale)), max(h, round(image.height * scale))), Image.Resampling.LANCZOS
    )
    left, top = (big.width - w) // 2, (big.height - h) // 2
    return big.crop((left, top, left + w, top + h))


BLEND_SEAM = 0.25  # the share of a band over which it fades into the next


def blend_canvas(images: list[Image.Image], size: tuple[int, int], turn: int = 0) -> Image.Image:
    """The starting picture of /blend (and of several image prompts): the inputs side
    by side in bands (across the longer side) that fade into one another, their
    order turned by `turn` so that each of the four images starts differently."""
    k = len(images)
    if k == 1:
        return cover(images[0], size)
    w, h = size
    layers = [np.asarray(cover(images[(j + turn) % k], size), dtype=np.float32) for j in range(k)]
    across = w >= h
    length = w if across else h
    pos = (np.arange(length) + 0.5) / length * k  # 0..k along the bands
    ramp = max(BLEND_SEAM, 1e-3)
    weights = []
    for j in range(k):
        # 1 inside band j, falling linearly to 0 over `ramp` on each side of its edges.
        inside = np.clip(np.minimum(pos - j, j + 1 - pos) / ramp + 0.5, 0.0, 1.0)
        weights.append(inside)
    total = np.sum(weights, axis=0)
    out = np.zeros_like(layers[0])
    for layer, weight in zip(layers, weights, strict=True):
        wgt = (weight / total)[None, :, None] if across else (weight / total)[:, None, None]
        out += layer * wgt
    return Image.fromarray(out.round().clip(0, 255).astype(np.uint8))
