"""The prompt-parameter parser: `/imagine a lighthouse at dusk --ar 3:2 --seed 7`.

Every rejection says which parameter was wrong and how to write it; nothing
is silently clamped."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from shared.loras import LoraRef

MAX_SEED = 2**32 - 1
# The ratios most prompts ask for (any W:H within the limits is accepted): a compiled
# worker warms these sizes before taking jobs; another size compiles on first use.
ASPECT_RATIOS = ("1:1", "3:2", "2:3", "4:3", "3:4", "16:9", "9:16")
MIN_STEPS, MAX_STEPS = 1, 100
MIN_GUIDANCE, MAX_GUIDANCE = 0.0, 30.0
MIN_IMAGE_WEIGHT, MAX_IMAGE_WEIGHT, IMAGE_WEIGHT = 0.0, 3.0, 1.0  # --iw, as Midjourney's


@dataclass(frozen=True)
class Params:
    aspect: str = "1:1"
    seed: int | None = None
    steps: int | None = None  # None: the model's default
    guidance: float | None = None
    strength: float | None = None  # image-to-image (variations, upscales)
    # Midjourney's parameters (shared/flags.py says what each does; None: the default).
    chaos: int | None = None
    stylize: int | None = None
    quality: float | None = None
    stop: int | None = None
    tile: bool = False
    weird: int | None = None
    raw: bool = False
    image_weight: float | None = None  # --iw: how much image prompts count (0–3; None: IMAGE_WEIGHT)
    unknown: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # record.py


@dataclass(frozen=True)
class ParsedPrompt:
    prompt: str
    negative_prompt: str
    params: Params
    lane: str | None = None  # --fast / --relax / --turbo; None: the user's default
    loras: tuple[LoraRef, ...] = ()  # shared/loras.py
    # The prompt's parts and their weights (`a::2 b::-0.5`; one part of weight 1 for
    # plain text), the `--no` things (each weighs -0.5), `--model`, `--repeat`.
    prompts: tuple[PromptPart, ...] = ()
    avoid: tuple[str, ...] = ()
    model: str | None = None
    repeat: int = 1


@dataclass(frozen=True)
class PromptPart:
    text: str
    weight: float = 1.0
    unknown: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # record.py


def parse_prompt(text: str) -> ParsedPrompt:
    """Split `text` into the prompt and its `--flags` (shared/prompt_text.py, from
    the table in shared/flags.py). A prompt with `{a, b}` options makes several
    jobs: shared/resolution.py reads those."""
    from shared.prompt_text import parse_one  # it builds the dataclasses above

    return parse_one(text)


def make_seeds(params: Params, count: int = 4, rng: random.Random | None = None) -> list[int]:
    """One seed per image: consecutive from `--seed`, random otherwise."""
    if params.seed is not None:
        return [(params.seed + i) % (MAX_SEED + 1) for i in range(count)]
    rng = rng or random.SystemRandom()
    return [rng.randrange(MAX_SEED + 1) for _ in range(count)]


def image_size(aspect: str, base: int, multiple: int) -> tuple[int, int]:
    """Width and height for an aspect ratio at about base×base pixels,
    rounded to what the model accepts."""
    w, h = (int(x) for x in aspect.split(":"))
    scale = (base * base / (w * h)) ** 0.5
    width = max(multiple, round(w * scale / multiple) * multiple)
    height = max(multiple, round(h * scale / multiple) * multiple)
    return width, height


def nearest_aspect(width: int, height: int) -> str:
    """The aspect ratio Daydream makes that is closest to width:height (/describe's --ar)."""
    ratio = math.log(width / height)
    return min(ASPECT_RATIOS, key=lambda a: abs(math.log(int(a.split(":")[0]) / int(a.split(":")[1])) - ratio))
