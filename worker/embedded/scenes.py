"""Procedural training scenes for the embedded model: shapes drawn with Pillow,
captions generated from the same attributes, in varied wording.

The attributes are also what `benchmarks/embedded_quality.py` scores, so the
vocabulary lives here once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "purple": (140, 40, 180),
    "orange": (245, 140, 20),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
# Synonyms make the model lean on the text encoder rather than on exact tokens.
COLOUR_WORDS: dict[str, list[str]] = {
    "red": ["red", "crimson", "scarlet"],
    "green": ["green", "emerald"],
    "blue": ["blue", "navy", "azure"],
    "yellow": ["yellow", "golden"],
    "purple": ["purple", "violet"],
    "orange": ["orange", "tangerine"],
    "white": ["white", "snow white"],
    "black": ["black", "jet black"],
}
SHAPES = ("circle", "square", "triangle", "star")
SHAPE_WORDS: dict[str, list[str]] = {
    "circle": ["circle", "ball", "disc", "round dot"],
    "square": ["square", "box", "block"],
    "triangle": ["triangle", "pyramid"],
    "star": ["star", "five-pointed star"],
}
# Centres as fractions of the image side.
POSITIONS: dict[str, tuple[float, float]] = {
    "centre": (0.5, 0.5),
    "left": (0.27, 0.5),
    "right": (0.73, 0.5),
    "top": (0.5, 0.27),
    "bottom": (0.5, 0.73),
    "top left": (0.27, 0.27),
    "top right": (0.73, 0.27),
    "bottom left": (0.27, 0.73),
    "bottom right": (0.73, 0.73),
}
POSITION_WORDS: dict[str, list[str]] = {
    "centre": ["in the centre", "in the center", "in the middle", ""],
    "left": ["on the left", "at the left side", "to the left"],
    "right": ["on the right", "at the right side", "to the right"],
    "top": ["at the top", "near the top", "at the top edge"],
    "bottom": ["at the bottom", "near the bottom", "at the bottom edge"],
    "top left": ["in the top left corner", "at the upper left"],
    "top right": ["in the top right corner", "at the upper right"],
    "bottom left": ["in the bottom left corner", "at the lower left"],
    "bottom right": ["in the bottom right corner", "at the lower right"],
}
SIZES: dict[str, float] = {"small": 0.22, "medium": 0.36, "large": 0.52}
SIZE_WORDS: dict[str, list[str]] = {
    "small": ["small", "tiny", "little"],
    "medium": [""],
    "large": ["large", "big", "huge"],
}
BACKGROUND_TEMPLATES = (
    "{obj} on {a} {bg} background",
    "{obj} over {bg}",
    "{obj} against {a} {bg} backdrop",
    "{obj}, {bg} background",
    "{obj} on {bg}",
)
SUPERSAMPLE = 4
# Two-object captions that leave the places out ("a red circle and a blue
# square"): the scene still puts them side by side or one above the other.
# Without these the model had only ever seen pairs with their places named,
# and drew one object for the issue's own example prompt.
UNPLACED_PAIR_RATE = 0.35
# Bumped whenever caption() words things differently, so a caption pool
# cached by the trainer under an old wording is not reused.
CAPTION_VERSION = 2


@dataclass(frozen=True)
class SceneObject:
    colour: str
    shape: str
    position: str
    size: str


@dataclass(frozen=True)
class Scene:
    background: str
    objects: tuple[SceneObject, ...]
    jitter: tuple[float, float] = field(default=(0.0, 0.0))


def random_scene(rng: random.Random, two_object_rate: float = 0.2) -> Scene:
    background = rng.choice(list(COLOURS))
    fg = [c for c in COLOURS if c != background]
    if rng.random() < two_object_rate:
        # Two objects side by side, or one above the other, never overlapping.
        pair = rng.choice([("left", "right"), ("top", "bottom")])
        colours = rng.sample(fg, 2)
        objects = tuple(
            SceneObject(colours[i], rng.choice(SHAPES), pair[i], rng.choice(["small", "medium"])) for i in range(2)
        )
    else:
        size = rng.choice(list(SIZES))
        positions = ["centre"] if size == "large" else list(POSITIONS)
        objects = (SceneObject(rng.choice(fg), rng.choice(SHAPES), rng.choice(positions), size),)
    jitter = (rng.uniform(-0.04, 0.04), rng.uniform(-0.04, 0.04))
    return Scene(background, objects, jitter)


def _shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":
        return [(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)]
    if shape == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.42
            a = -np.pi / 2 + k * np.pi / 5
            pts.append((cx + rad * np.cos(a), cy + rad * np.sin(a)))
        return pts
    raise ValueError(f"no polygon for shape {shape!r}")


def render(scene: Scene, size: int = 64) -> Image.Image:
    """Draw a scene, anti-aliased by drawing large and shrinking."""
    big = size * SUPERSAMPLE
    img = Image.new("RGB", (big, big), COLOURS[scene.background])
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        fx, fy = POSITIONS[obj.position]
        cx = (fx + scene.jitter[0]) * big
        cy = (fy + scene.jitter[1]) * big
        r = SIZES[obj.size] * big / 2
        colour = COLOURS[obj.colour]
        if obj.shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        elif obj.shape == "square":
            s = r * 0.85
            draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=colour)
        else:
            draw.polygon(_shape_points(obj.shape, cx, cy, r), fill=colour)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def _object_phrase(obj: SceneObject, rng: random.Random, with_position: bool = True) -> str:
    words = [rng.choice(SIZE_WORDS[obj.size]), rng.choice(COLOUR_WORDS[obj.colour]), rng.choice(SHAPE_WORDS[obj.shape])]
    phrase = " ".join(w for w in words if w)
    article = _article(phrase)
    if rng.random() < 0.15:
        article = "one" if rng.random() < 0.5 else ""
    text = f"{article} {phrase}".strip()
    if with_position:
        pos = rng.choice(POSITION_WORDS[obj.position])
        if pos:
            text = f"{text} {pos}"
    return text


def caption(scene: Scene, rng: random.Random) -> str:
    """A caption in one of many wordings, consistent with the scene."""
    placed = len(scene.objects) == 1 or rng.random() >= UNPLACED_PAIR_RATE
    parts = [_object_phrase(o, rng, with_position=placed) for o in scene.objects]
    obj = " and ".join(parts)
    bg = rng.choice(COLOUR_WORDS[scene.background])
    return rng.choice(BACKGROUND_TEMPLATES).format(obj=obj, bg=bg, a=_article(bg))


def plain_caption(scene: Scene, places: bool = True) -> str:
    """The canonical wording, used as the benchmark's non-paraphrased prompt;
    `places=False` leaves the objects' places out ("a red circle and a blue square")."""
    parts = []
    for o in scene.objects:
        size = "" if o.size == "medium" else f"{o.size} "
        pos = "" if o.position == "centre" or not places else f" {POSITION_WORDS[o.position][0]}"
        parts.append(f"{_article(size or o.colour)} {size}{o.colour} {o.shape}{pos}")
    return f"{' and '.join(parts)} on {_article(scene.background)} {scene.background} background"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"
