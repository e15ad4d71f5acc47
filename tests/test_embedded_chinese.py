"""A small, deterministic guard on Chinese prompts (issue 21), beside the
English one in tests/test_embedded_quality.py: four prompts, two in
simplified and two in traditional characters, four fixed seeds each (16
tiles), scored by worker/embedded/scoring.py. The full measurement is
benchmarks/embedded_quality.py (its zh-Hans and zh-Hant rows).

Measured on the shipped weights (step 47,500), default sampling:

| reading | bg hits | fg hits | shape hits | position hits |
| --- | ---: | ---: | ---: | ---: |
| prompts read onto the vocabulary (shipped) | 16 | 16 | 16 | 16 |
| the raw Chinese text to MiniLM (before issue 21) | 0 | 0 | 3 | 2 |

so ≥ 12 of 16 (11 for shapes, as in the English guard) fails the old
behaviour by a wide margin and leaves room for the next export to move a tile or two.
"""

from __future__ import annotations

import pytest
from PIL import Image

from worker.embedded import scoring
from worker.engines.base import Request
from worker.engines.embedded import EmbeddedEngine

# (prompt, background, foreground, shape, position); no purple background (see the English guard).
PROMPTS = [
    ("蓝色背景上的红色圆形", "blue", "red", "circle", "centre"),
    ("左上角有一个小的黄色正方形，背景是黑色", "black", "yellow", "square", "top left"),
    ("白色背景上，右下角有一個小的藍色星星", "white", "blue", "star", "bottom right"),
    ("綠色背景上的白色三角形", "green", "white", "triangle", "centre"),
]
SEEDS = [11, 22, 33, 44]
MIN_HITS = {"background": 12, "foreground": 12, "shape": 11, "position": 12}


@pytest.fixture(scope="module")
def scored() -> list[tuple[scoring.TileScore, tuple[str, ...]]]:
    engine = EmbeddedEngine()
    out = []
    for prompt, *want in PROMPTS:
        tiles: list[Image.Image] = engine.generate(Request.text(prompt, SEEDS, 64, 64))
        out += [(scoring.score_tile(tile), tuple(want)) for tile in tiles]
    return out


@pytest.mark.parametrize("attribute", list(MIN_HITS))
def test_chinese_prompts_are_drawn_as_asked(scored, attribute: str) -> None:
    index = list(MIN_HITS).index(attribute)
    hits = sum(getattr(score, attribute) == want[index] for score, want in scored)
    assert hits >= MIN_HITS[attribute], [(getattr(s, attribute), w[index]) for s, w in scored]
