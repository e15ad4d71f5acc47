"""How well a sampled tile shows what the prompt asked for, by the quality
benchmark's own scorer (worker/embedded/scoring.py) against the prompt's
reading (worker/embedded/reading.py): the embedded model's best-four-of-N
picks the candidates that score highest.

A score counts the attributes the tile gets right (background, colour,
shape, place, size; for two objects: both there in their colours, their
shapes, their sides); what the prompt leaves open counts for nothing, except
that one object with no place named belongs in the centre at medium size, as
the model was trained. A flatter background breaks ties: grain is what the
scorer cannot see and a viewer can."""

from __future__ import annotations

import logging

from PIL import Image

from worker.embedded import scenes, scoring
from worker.embedded.reading import Reading, ReadObject

logger = logging.getLogger(__name__)

TIE_BREAK_PER_SPREAD = 1e-3  # one attribute outweighs any background noise (spread is < 200)


def match_score(image: Image.Image, reading: Reading) -> float:
    objects = [o for o in reading.objects if o.shape]
    if len(objects) >= 2:
        return _pair_score(image, reading.background, objects[:2])
    tile = scoring.score_tile(image)
    obj = objects[0] if objects else ReadObject()
    want = {
        "background": reading.background,
        "foreground": obj.colour,
        "shape": obj.shape,
        "position": obj.position or ("centre" if obj.shape else None),
        "size": obj.size or ("medium" if obj.shape and obj.position not in (None, "centre") else None),
    }
    hits = sum(getattr(tile, name) == value for name, value in want.items() if value is not None)
    return hits - TIE_BREAK_PER_SPREAD * tile.border_spread


def _pair_score(image: Image.Image, background: str | None, objects: list[ReadObject]) -> float:
    pair = scoring.score_pair(image)
    hits = 0.0
    if background is not None:
        hits += pair.background == background
    found = {b.foreground: b for b in pair.objects}
    hits += 0.5 * len(pair.objects)  # two objects drawn, not one
    for obj in objects:
        blob = found.get(obj.colour) if obj.colour else None
        if blob is None:
            continue
        hits += 1
        hits += blob.shape == obj.shape
        if obj.position in scenes.POSITIONS:
            fx, fy = scenes.POSITIONS[obj.position]
            hits += (blob.cx - 0.5) * (fx - 0.5) > 0 or (blob.cy - 0.5) * (fy - 0.5) > 0
    return hits - TIE_BREAK_PER_SPREAD * scoring.border_spread(image)
