"""Score one generated 64×64 tile against the scene vocabulary, automatically:
background colour, foreground colour, shape, position and size.

The rules are plain image statistics (no learned classifier), so they can be
checked against ground truth: `scenes.render` of single-object scenes must
score almost perfectly (tests/test_embedded_scoring.py). A tile that shows
nothing recognisable scores `None` for the foreground attributes, which the
benchmark counts as wrong.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from worker.embedded import scenes

logger = logging.getLogger(__name__)

NOISY_BORDER = 25.0  # border spread (RGB distance) above which a tile is median-filtered first
MEDIAN_PX = 3
BORDER_PX = 2  # the ring read as background; single objects stay ≥ 3 px inside it
MIN_CONTRAST = 40.0  # RGB distance below which nothing counts as foreground
NOISE_MARGIN = 2.5  # foreground must stand this many border spreads away from the background
MIN_AREA_PX = 12  # a smaller blob is a speck, not an object (a small star is ~60 px)
# Shape rules, calibrated on 2,000 rendered single-object scenes:
# solidity (area / convex hull) separates the star's concave outline from
# the convex shapes; the fill of the bounding box then orders triangle ≈ 0.5,
# circle ≈ 0.785 and square ≈ 1.0.
STAR_MAX_SOLIDITY = 0.70
TRIANGLE_MAX_FILL = 0.67
CIRCLE_MAX_FILL = 0.88
# Width of each shape's bounding box relative to its drawn diameter (scenes.render):
# squares are drawn at 0.85 r, triangles and stars are 1.9 r wide.
SHAPE_EXTENT = {"circle": 1.0, "square": 0.85, "triangle": 0.95, "star": 0.951}

_PALETTE_NAMES = list(scenes.COLOURS)
_PALETTE = np.array([scenes.COLOURS[c] for c in _PALETTE_NAMES], dtype=np.float32)


@dataclass(frozen=True)
class TileScore:
    background: str
    foreground: str | None
    shape: str | None
    position: str | None
    size: str | None
    # The measurements behind the labels, for calibration and debugging.
    fill: float  # soft area / soft bounding box
    solidity: float  # binary area / convex hull of the pixel squares
    area_px: float
    border_spread: float  # as border_spread(): of the tile as given, before any filtering


@dataclass(frozen=True)
class Blob:
    """One object found in a tile."""

    foreground: str
    shape: str
    position: str
    size: str
    fill: float
    solidity: float
    area: float  # soft area in pixels
    cx: float  # centroid as fractions of the side
    cy: float


@dataclass(frozen=True)
class PairScore:
    """A tile read as a two-object scene: the two largest objects, largest first
    (fewer when the tile shows fewer)."""

    background: str
    objects: tuple[Blob, ...]


def nearest_colour(rgb: np.ndarray) -> str:
    """The palette colour closest to `rgb` (Euclidean in RGB)."""
    d = np.linalg.norm(_PALETTE - np.asarray(rgb, dtype=np.float32), axis=1)
    return _PALETTE_NAMES[int(np.argmin(d))]


def border_pixels(arr: np.ndarray, width: int = BORDER_PX) -> np.ndarray:
    """The outer ring of an (H, W, 3) array as (N, 3)."""
    h, w = arr.shape[:2]
    ring = np.zeros((h, w), dtype=bool)
    ring[:width, :] = ring[-width:, :] = True
    ring[:, :width] = ring[:, -width:] = True
    return arr[ring]


def border_spread(image: Image.Image) -> float:
    """How far the border strays from one colour: ~0 for a flat background,
    tens for noise. The cheapest "is this tile an image at all" check."""
    return _spread(border_pixels(np.asarray(image.convert("RGB"), dtype=np.float32)))


def _spread(pixels: np.ndarray) -> float:
    return float(np.median(np.linalg.norm(pixels - np.median(pixels, axis=0), axis=1)))


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """The 8-connected blobs of a boolean mask, largest first."""
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    sizes: list[int] = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if labels[y0, x0]:
            continue
        label = len(sizes) + 1
        labels[y0, x0] = label
        queue, size = deque([(y0, x0)]), 0
        while queue:
            y, x = queue.popleft()
            size += 1
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = label
                        queue.append((ny, nx))
        sizes.append(size)
    # Stable sort: of equal blobs the first found (top-most) comes first.
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    return [labels == i + 1 for i in order]


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected blob of a boolean mask (generated tiles have
    specks of stray colour that must not move the centroid or the shape)."""
    blobs = _components(mask)
    return blobs[0] if blobs else np.zeros_like(mask)


def _hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of (N, 2) points (Andrew's monotone chain)."""
    pts = sorted({(float(x), float(y)) for x, y in points})
    if len(pts) < 3:
        return 0.0

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = np.array(lower[:-1] + upper[:-1])
    x, y = hull[:, 0], hull[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def classify_shape(fill: float, solidity: float) -> str:
    if solidity < STAR_MAX_SOLIDITY:
        return "star"
    if fill < TRIANGLE_MAX_FILL:
        return "triangle"
    if fill < CIRCLE_MAX_FILL:
        return "circle"
    return "square"


def nearest_position(cx: float, cy: float) -> str:
    """The scenes.POSITIONS entry nearest a centre given as fractions of the side."""
    return min(scenes.POSITIONS, key=lambda p: (scenes.POSITIONS[p][0] - cx) ** 2 + (scenes.POSITIONS[p][1] - cy) ** 2)


def nearest_size(diameter: float) -> str:
    """The scenes.SIZES entry nearest a drawn diameter given as a fraction of the side."""
    return min(scenes.SIZES, key=lambda s: abs(scenes.SIZES[s] - diameter))


def _pixels(image: Image.Image) -> tuple[np.ndarray, float]:
    """The tile as (H, W, 3) floats, median-filtered when its border is noisy,
    and the border spread of the tile as given."""
    rgb = image.convert("RGB")
    arr = np.asarray(rgb, dtype=np.float32)
    raw_spread = _spread(border_pixels(arr))
    if raw_spread > NOISY_BORDER:
        # Pixel noise would break the mask apart. Only noisy tiles are
        # filtered: the median also blunts a small star's points.
        arr = np.asarray(rgb.filter(ImageFilter.MedianFilter(MEDIAN_PX)), dtype=np.float32)
    return arr, raw_spread


def _smoothed(dist: np.ndarray) -> np.ndarray:
    """3×3 box mean of a distance map (edges repeated)."""
    h, w = dist.shape
    padded = np.pad(dist, 1, mode="edge")
    return sum(padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / 9.0


def score_tile(image: Image.Image) -> TileScore:
    """Read the attributes of a single-object tile (any square size; 64×64 in practice)."""
    # 1. Background: the median of the border ring, snapped to the palette
    arr, raw_spread = _pixels(image)
    border = border_pixels(arr)
    bg_rgb = np.median(border, axis=0)
    spread = _spread(border)
    background = nearest_colour(bg_rgb)

    # 2. Foreground mask: pixels well away from the measured background. The
    # threshold sits halfway to the most distinct (smoothed) pixels, so
    # anti-aliased edges split evenly and the mask keeps the drawn area.
    dist = np.linalg.norm(arr - bg_rgb, axis=2)
    peak = float(_smoothed(dist).max())
    # Noise in the background must not pass as an object: the bar rises with the border's own spread.
    threshold = max(MIN_CONTRAST, NOISE_MARGIN * spread, 0.5 * peak)
    mask = _largest_component(dist > threshold)
    area_binary = int(mask.sum())
    if area_binary < MIN_AREA_PX:
        return TileScore(background, None, None, None, None, 0.0, 0.0, float(area_binary), raw_spread)

    b = _describe_blob(arr, dist, mask)
    return TileScore(background, b.foreground, b.shape, b.position, b.size, b.fill, b.solidity, b.area, raw_spread)


def _describe_blob(arr: np.ndarray, dist: np.ndarray, mask: np.ndarray) -> Blob:
    """Colour, shape, position and size of one blob, with the measurements."""
    # Tiles of another --ar than 1:1 are not square: bounds and places per axis,
    # sizes against the shorter side (what the scenes are drawn in).
    h, w = arr.shape[:2]
    side = min(h, w)
    # 3. Foreground colour: the median of the blob's pixels, snapped to the palette
    foreground = nearest_colour(np.median(arr[mask], axis=0))

    # 4. Shape. Soft coverage (0 at the background, 1 at the blob's typical
    # distance) gives sub-pixel area and extents, which a 14-px small shape needs.
    area_binary = int(mask.sum())
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = max(ys.min() - 1, 0), min(ys.max() + 2, h), max(xs.min() - 1, 0), min(xs.max() + 2, w)
    full = float(np.median(dist[mask]))
    alpha = np.clip(dist[y0:y1, x0:x1] / max(full, 1e-6), 0.0, 1.0)
    alpha[~_dilate(mask)[y0:y1, x0:x1]] = 0.0  # other blobs do not count
    area = float(alpha.sum())
    width = float(alpha.max(axis=0).sum())
    height = float(alpha.max(axis=1).sum())
    fill = area / max(width * height, 1e-6)
    # Convex hull of the pixel squares' corners: a star's notches show as a low ratio.
    corners = np.concatenate([np.stack([xs + dx, ys + dy], axis=1) for dx in (0, 1) for dy in (0, 1)])
    solidity = area_binary / max(_hull_area(corners), 1e-6)
    shape = classify_shape(fill, solidity)

    # 5. Position: the soft centroid, snapped to the nine named places
    gy, gx = np.mgrid[y0:y1, x0:x1]
    cx = float((alpha * (gx + 0.5)).sum() / area) / w
    cy = float((alpha * (gy + 0.5)).sum() / area) / h
    position = nearest_position(cx, cy)

    # 6. Size: the larger extent, undone by the shape's drawn proportions
    size = nearest_size(max(width, height) / side / SHAPE_EXTENT[shape])
    return Blob(foreground, shape, position, size, fill, solidity, area, cx, cy)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """The mask grown by one pixel (8-neighbourhood), to keep anti-aliased edges."""
    padded = np.pad(mask, 1)
    h, w = mask.shape
    out = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            out |= padded[dy : dy + h, dx : dx + w]
    return out


def scene_attributes(scene: scenes.Scene) -> dict[str, str]:
    """What a tile of a single-object scene should score."""
    if len(scene.objects) != 1:
        raise ValueError(f"only single-object scenes can be scored, got {len(scene.objects)} objects")
    obj = scene.objects[0]
    return {
        "background": scene.background,
        "foreground": obj.colour,
        "shape": obj.shape,
        "position": obj.position,
        "size": obj.size,
    }


def compare(score: TileScore, scene: scenes.Scene) -> dict[str, bool]:
    """Per attribute: does the tile show what the scene asked for?"""
    return {name: getattr(score, name) == want for name, want in scene_attributes(scene).items()}


def score_pair(image: Image.Image) -> PairScore:
    """Read a tile as a two-object scene: the background and the two largest objects.

    Unlike score_tile, objects are found with a fixed bar (contrast and
    background noise only), then each is cut halfway to its own peak: a
    yellow and a black object on white differ too much in contrast for one
    bar set by the brighter of them."""
    arr, _ = _pixels(image)
    border = border_pixels(arr)
    bg_rgb = np.median(border, axis=0)
    low = max(MIN_CONTRAST, NOISE_MARGIN * _spread(border))
    dist = np.linalg.norm(arr - bg_rgb, axis=2)
    smoothed = _smoothed(dist)
    blobs = []
    for blob in _components(dist > low):
        if blob.sum() < MIN_AREA_PX or len(blobs) == 2:
            break
        core = _largest_component(blob & (dist > max(low, 0.5 * float(smoothed[blob].max()))))
        if core.sum() >= MIN_AREA_PX:
            blobs.append(_describe_blob(arr, dist, core))
    return PairScore(nearest_colour(bg_rgb), tuple(blobs))


PAIR_ATTRIBUTES = ("background", "colours", "shapes", "placement")


def compare_pair(score: PairScore, scene: scenes.Scene) -> dict[str, bool]:
    """Per attribute of a two-object scene: the background; both objects
    there in their colours ("colours"); each in its shape ("shapes"); and
    each on its named side ("placement": along the axis the scene's places
    name, further apart than across it)."""
    if len(scene.objects) != 2:
        raise ValueError(f"compare_pair scores two-object scenes, got {len(scene.objects)} objects")
    found = {b.foreground: b for b in score.objects}
    colours = len(score.objects) == 2 and set(found) == {o.colour for o in scene.objects}
    shapes = colours and all(found[o.colour].shape == o.shape for o in scene.objects)
    placement = False
    if colours:
        a, b = scene.objects
        (ax, ay), (bx, by) = scenes.POSITIONS[a.position], scenes.POSITIONS[b.position]
        fa, fb = found[a.colour], found[b.colour]
        along, across = (fb.cx - fa.cx, fb.cy - fa.cy) if ax != bx else (fb.cy - fa.cy, fb.cx - fa.cx)
        want = (bx - ax) if ax != bx else (by - ay)
        placement = along * want > 0 and abs(along) > abs(across)
    return {
        "background": score.background == scene.background,
        "colours": colours,
        "shapes": shapes,
        "placement": placement,
    }
