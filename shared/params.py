"""The prompt-parameter parser: `/imagine a lighthouse at dusk --ar 3:2 --seed 7`.

Every rejection says which parameter was wrong and how to write it; nothing
is silently clamped."""

from __future__ import annotations

import math
import random
import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Any

from shared.errors import InvalidRequest
from shared.loras import LoraRef, extract_loras
from shared.settings import MAX_PROMPT_CHARS

ASPECT_RATIOS = ("1:1", "3:2", "2:3", "4:3", "3:4", "16:9", "9:16")
MAX_SEED = 2**32 - 1
MIN_STEPS, MAX_STEPS = 1, 100
MIN_GUIDANCE, MAX_GUIDANCE = 0.0, 30.0
HELP = (
    "Parameters: --ar W:H (" + ", ".join(ASPECT_RATIOS) + "), --seed N, --steps N, --cfg N, --no <things to avoid>, "
    "--lora name:0.8, --iw 0–3 (with image prompts)."
)
FLAGS = ("ar", "aspect", "seed", "steps", "cfg", "guidance", "no", "lora", "iw")
MIN_IMAGE_WEIGHT, MAX_IMAGE_WEIGHT, IMAGE_WEIGHT = 0.0, 3.0, 1.0  # --iw, as Midjourney's
# Phones turn `--` into an em dash: read `—ar` as `--ar`, but leave a dash in
# ordinary text ("a cat — sleeping") alone.
EM_DASH_FLAG = re.compile(r"\u2014(?=(?:" + "|".join(FLAGS) + r")\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Params:
    aspect: str = "1:1"
    seed: int | None = None
    steps: int | None = None  # None: the model's default
    guidance: float | None = None
    strength: float | None = None  # image-to-image (variations, upscales)
    image_weight: float | None = None  # --iw: how much image prompts count (0–3; None: IMAGE_WEIGHT)
    unknown: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # record.py


@dataclass(frozen=True)
class ParsedPrompt:
    prompt: str
    negative_prompt: str
    params: Params
    lane: str | None = None  # --fast / --relax / --turbo; None: the user's default
    loras: tuple[LoraRef, ...] = ()  # shared/loras.py


def _number(flag: str, raw: str, kind: type, low: float, high: float) -> int | float:
    try:
        value = kind(raw)
    except ValueError:
        raise InvalidRequest(f"`{flag}` needs a {'whole ' if kind is int else ''}number, got `{raw}`. {HELP}") from None
    if not low <= value <= high:
        shown = (f"{low:g}", f"{high:g}") if kind is float else (f"{int(low)}", f"{int(high)}")
        raise InvalidRequest(f"`{flag}` must be between {shown[0]} and {shown[1]}, got `{raw}`.")
    return value


def parse_prompt(text: str) -> ParsedPrompt:
    """Split `text` into the prompt and its `--flags`."""
    text = EM_DASH_FLAG.sub("--", text or "").strip()
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"Your prompt is {len(text)} characters; the limit is {MAX_PROMPT_CHARS}. Shorten it.")
    text, loras = extract_loras(text)
    if not text:
        raise InvalidRequest(
            "Your prompt is empty. Describe the picture, e.g. `/imagine a red circle on a blue background`."
        )
    head, sep, tail = text.partition(" --")
    if text.startswith("--"):
        head, sep, tail = "", "--", text[2:]
    prompt = head.strip()
    params = Params()
    negative = ""
    if sep:
        try:
            tokens = shlex.split("--" + tail)
        except ValueError as exc:
            raise InvalidRequest(f"Could not read the parameters ({exc}). {HELP}") from None
        i = 0
        while i < len(tokens):
            flag = tokens[i].lower()
            if not flag.startswith("--"):
                raise InvalidRequest(
                    f"Unexpected `{tokens[i]}` after the parameters: put all text before the first `--`. {HELP}"
                )
            values = []
            i += 1
            while i < len(tokens) and not tokens[i].startswith("--"):
                values.append(tokens[i])
                i += 1
            if flag == "--no":
                if not values:
                    raise InvalidRequest("`--no` needs the things to avoid, e.g. `--no text, people`.")
                negative = " ".join(values)
                continue
            if len(values) != 1:
                raise InvalidRequest(f"`{flag}` takes one value, got {len(values)}. {HELP}")
            value = values[0]
            if flag in {"--ar", "--aspect"}:
                if value not in ASPECT_RATIOS:
                    raise InvalidRequest(
                        f"Aspect ratio `{value}` is not supported. Use one of: {', '.join(ASPECT_RATIOS)}."
                    )
                params = replace(params, aspect=value)
            elif flag == "--seed":
                params = replace(params, seed=int(_number(flag, value, int, 0, MAX_SEED)))
            elif flag == "--steps":
                params = replace(params, steps=int(_number(flag, value, int, MIN_STEPS, MAX_STEPS)))
            elif flag in {"--cfg", "--guidance"}:
                params = replace(params, guidance=float(_number(flag, value, float, MIN_GUIDANCE, MAX_GUIDANCE)))
            elif flag == "--iw":
                weight = float(_number(flag, value, float, MIN_IMAGE_WEIGHT, MAX_IMAGE_WEIGHT))
                params = replace(params, image_weight=weight)
            else:
                raise InvalidRequest(f"Unknown parameter `{flag}`. {HELP}")
    if not prompt:
        raise InvalidRequest(
            "Your prompt has parameters but no text. Put the description first, e.g. `a red star --ar 3:2`."
        )
    return ParsedPrompt(prompt=prompt, negative_prompt=negative, params=params, loras=tuple(loras))


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
