"""Midjourney's prompt language, read by the flag table (shared/flags.py).

    {red, blue} bird::2 sky::-0.5 --ar 3:2 --chaos 40 --no text, people

* `{a, b}` options (nested too) make one prompt per combination (`expand`);
* `text::2 other::-0.5` weighs parts of the prompt (their sum must be positive);
* `--flags` follow the text, in any order and case, `—` (a phone's em dash)
  read as `--` before a known flag.

`parse(text)` gives one `ParsedPrompt` per combination or raises the one
error, `InvalidPrompt`, with what was written, the accepted form and an
example. `canonical(parsed)` writes a parsed prompt back as text that parses
to the same record."""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

from shared.errors import InvalidPrompt, InvalidRequest
from shared.flags import (
    BY_NAME,
    DEFAULT_LIMITS,
    FLAGS,
    LANE_FLAGS,
    MODEL_NAME,
    Flag,
    Kind,
    PromptLimits,
    lookup,
    suggest,
)
from shared.loras import extract_loras
from shared.params import Params, ParsedPrompt, PromptPart
from shared.permutations import expand
from shared.settings import MAX_PROMPT_CHARS

NEGATIVE_WEIGHT = -0.5  # what `--no thing` weighs, as Midjourney defines it
MAX_WEIGHT = 1000.0
# `::`, `::2`, `::-0.5`, `::.5` (Midjourney's multi-prompt separator and weight)
WEIGHT = re.compile(r"::(-?(?:\d+(?:\.\d*)?|\.\d+))?")
RATIO = re.compile(r"^(\d{1,5}):(\d{1,5})$")
# The flags start at the first `--` that begins a word.
FLAGS_START = re.compile(r"(?:^|(?<=\s))--(?=\S)")
FIELD_OF = {"ar": "aspect", "cfg": "guidance", "iw": "image_weight"}  # flag name → Params field, where they differ
PARAM_FLAGS = ("ar", "seed", "chaos", "stylize", "quality", "steps", "cfg", "stop", "tile", "weird", "raw", "iw")


def em_dash_before(names: list[str]) -> re.Pattern[str]:
    # Phones turn `--` into an em dash: read `—ar` as `--ar`, but leave a dash in
    # ordinary text ("a cat — sleeping", "the —arrow") alone.
    alternatives = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    return re.compile(r"\u2014(?=(?:" + alternatives + r")(?:\s|$))", re.IGNORECASE)


EM_DASH_FLAG = em_dash_before(list(BY_NAME))


def invalid(flag: Flag, written: str, why: str = "", named: str = "") -> InvalidPrompt:
    """`Invalid parameter --ar 16/9: use two whole numbers W:H, like --ar 16:9`;
    `named`: the flag as the user wrote it (`--Q`)."""
    shown = f"{named or '--' + flag.name} {written}".strip()
    how = why or f"use {flag.accepts}"
    tail = f", like {flag.usage}" if flag.example else ""
    return InvalidPrompt(
        f"Invalid parameter `{shown}`: {how}{tail}.",
        text=shown,
        accepted=flag.accepts,
        example=flag.usage,
        flag=flag.name,
    )


# -- text::weight ---------------------------------------------------------------------
def split_weights(text: str) -> tuple[PromptPart, ...]:
    """`a::2 b::-0.5 c` → (a, 2), (b, -0.5), (c, 1); plain text is one part of weight 1."""
    parts: list[PromptPart] = []
    pos = 0
    for match in WEIGHT.finditer(text):
        segment = " ".join(text[pos : match.start()].split())
        raw = match.group(1)
        weight = float(raw) if raw is not None else 1.0
        if not segment:
            raise InvalidPrompt(
                f"The weight `{match.group(0)}` has no text before it: write `text::weight`, like `a red star::2`.",
                text=match.group(0),
                accepted="text::weight",
                example="a red star::2 a blue sky::-0.5",
            )
        if not math.isfinite(weight) or abs(weight) > MAX_WEIGHT:
            raise InvalidPrompt(
                f"The weight `{match.group(0)}` is out of range: use a number from -{MAX_WEIGHT:g} to {MAX_WEIGHT:g}, "
                "like `::2`.",
                text=match.group(0),
                accepted=f"a number from -{MAX_WEIGHT:g} to {MAX_WEIGHT:g}",
                example="a red star::2",
            )
        parts.append(PromptPart(segment, weight))
        pos = match.end()
    tail = " ".join(text[pos:].split())
    if tail:
        parts.append(PromptPart(tail, 1.0))
    return tuple(parts)


# -- the flags ------------------------------------------------------------------------
def _number(flag: Flag, raw: str, limits: PromptLimits, named: str = "") -> int | float:
    try:
        value: int | float = int(raw) if flag.kind == Kind.INT else float(raw)
    except ValueError:
        raise invalid(flag, raw, named=named) from None
    if not math.isfinite(value):
        raise invalid(flag, raw, named=named)
    if flag.kind == Kind.CHOICE:
        if value not in flag.choices:
            raise invalid(flag, raw, named=named)
        return value
    high = flag.high
    if flag.name in {"steps", "repeat"}:  # their top is the admin's cap
        cap = getattr(limits, flag.cap)
        if value > cap and (flag.low is None or value >= flag.low):
            raise invalid(flag, raw, f"this server allows --{flag.name} up to {cap} (an admin limit)", named)
        high = cap
    if (flag.low is not None and value < flag.low) or (high is not None and value > high):
        raise invalid(flag, raw, named=named)
    return value


def _ratio(flag: Flag, raw: str, limits: PromptLimits, named: str = "") -> str:
    match = RATIO.match(raw)
    if not match or int(match.group(1)) == 0 or int(match.group(2)) == 0:
        raise invalid(flag, raw, named=named)
    w, h = int(match.group(1)), int(match.group(2))
    if not limits.min_aspect <= Fraction(w, h) <= limits.max_aspect:
        low, high = limits.min_aspect, limits.max_aspect
        raise invalid(
            flag,
            raw,
            named=named,
            why=f"this server allows aspect ratios from {low.numerator}:{low.denominator} to "
            f"{high.numerator}:{high.denominator} (an admin limit)",
        )
    return f"{w}:{h}"


def _flag_tokens(tail: str) -> list[str]:
    try:
        return shlex.split(tail)
    except ValueError as exc:
        raise InvalidPrompt(
            f'Could not read the parameters ({exc}): close every quote, like `--no "red, blue"`.',
            text=tail,
            accepted="--flag value",
            example="--ar 3:2 --no text",
        ) from None


def parse_one(text: str, limits: PromptLimits = DEFAULT_LIMITS) -> ParsedPrompt:
    """One prompt (without `{…}` options: `parse` expands those first)."""
    text = EM_DASH_FLAG.sub("--", text or "").strip()
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidPrompt(
            f"Your prompt is {len(text)} characters; the limit is {MAX_PROMPT_CHARS}. Shorten it.",
            text=text[:40] + "…",
            accepted=f"at most {MAX_PROMPT_CHARS} characters",
        )
    if "{" in text or "}" in text:
        found = expand(text, limits.max_jobs)
        if len(found) != 1:
            raise InvalidPrompt(
                f"This prompt's `{{…}}` options make {len(found)} prompts; submit it with /imagine to queue them all.",
                text=text,
                accepted="one prompt",
            )
        text = found[0].strip()
    try:
        text, loras = extract_loras(text)
    except InvalidRequest as exc:  # the LoRA reader's own wording, as the one prompt error
        flag = BY_NAME["lora"]
        raise InvalidPrompt(
            exc.message, text="--lora", accepted=flag.accepts, example=flag.usage, flag="lora"
        ) from None
    if not text:
        raise InvalidPrompt(
            "Your prompt is empty. Describe the picture, e.g. `/imagine a red circle on a blue background`.",
            accepted="a description, then flags",
            example="a red circle on a blue background --ar 3:2",
        )
    start = FLAGS_START.search(text)
    head, tail = (text, "") if start is None else (text[: start.start()], text[start.start() :])
    params: dict[str, object] = {}
    avoid: list[str] = []
    lane: str | None = None
    model: str | None = None
    repeat = 1
    seen: set[str] = set()
    tokens = _flag_tokens(tail) if tail else []
    i = 0
    while i < len(tokens):
        written = tokens[i]
        if not written.startswith("--"):  # text after the flags
            raise InvalidPrompt(
                f"Unexpected `{written}` after the parameters: put all the text before the first `--`, "
                "like `a red star --ar 3:2`.",
                text=written,
                accepted="text first, then --flags",
                example="a red star --ar 3:2",
            )
        name = written[2:]
        values: list[str] = []
        i += 1
        while i < len(tokens) and not tokens[i].startswith("--"):
            values.append(tokens[i])
            i += 1
        flag = lookup(name)
        if flag is None:
            near = suggest(name)
            hint = (
                f" Did you mean `--{near}`?"
                if near
                else " Known parameters: " + ", ".join(f"--{f.name}" for f in FLAGS)
            )
            raise InvalidPrompt(
                f"Unknown parameter `{written}`.{hint}",
                text=written,
                accepted="a known --flag",
                example=f"--{near}" if near else "--ar 3:2",
                flag=name.lower(),
            )
        value = " ".join(values)
        if flag.name in seen and flag.kind != Kind.TEXT_LIST:
            raise invalid(flag, value, "it is given twice; give each parameter once", written)
        seen.add(flag.name)
        if flag.kind == Kind.SWITCH:
            if values:
                raise invalid(
                    flag,
                    value,
                    f"--{flag.name} takes no value; put the text before the flags, like `a cat --{flag.name}`",
                    written,
                )
            if flag.name in LANE_FLAGS:
                if lane is not None:
                    raise invalid(flag, "", f"--{lane} was given too; pick one lane", written)
                lane = flag.name
            else:
                params[flag.name] = True
            continue
        if flag.kind == Kind.TEXT_LIST:
            things = [t.strip() for t in value.split(",") if t.strip()]
            if not things:
                raise invalid(flag, value, "say what to avoid", written)
            avoid.extend(" ".join(t.split()) for t in things)
            continue
        if len(values) != 1:
            raise invalid(flag, value, f"give one value ({flag.accepts})", written)
        raw = values[0]
        if flag.kind == Kind.RATIO:
            params["aspect"] = _ratio(flag, raw, limits, written)
        elif flag.kind == Kind.NAME:
            if not MODEL_NAME.match(raw.lower()):
                raise invalid(flag, raw, named=written)
            model = raw.lower()
        elif flag.name == "repeat":
            repeat = int(_number(flag, raw, limits, written))
        else:
            number = _number(flag, raw, limits, written)
            params[FIELD_OF.get(flag.name, flag.name)] = float(number) if flag.kind != Kind.INT else int(number)
    parts = split_weights(head)
    positive = [p for p in parts if p.weight > 0]
    if not positive:
        raise InvalidPrompt(
            "Your prompt has parameters but no text. Put the description first, e.g. `a red star --ar 3:2`."
            if not parts
            else "Your prompt has no part with a positive weight: give the main subject a weight above 0, "
            "like `a red star::1 blue::-0.5`.",
            text=head.strip(),
            accepted="a description (weights: their sum must be positive)",
            example="a red star --ar 3:2",
        )
    if sum(p.weight for p in parts) <= 0:
        raise InvalidPrompt(
            f"The weights in your prompt add up to {sum(p.weight for p in parts):g}; their sum must be positive, "
            "like `a red star::2 blue::-0.5`.",
            text=head.strip(),
            accepted="text::weight parts whose weights sum above 0",
            example="a red star::2 blue::-0.5",
        )
    negative = [p.text for p in parts if p.weight < 0] + avoid
    return ParsedPrompt(
        prompt=", ".join(p.text for p in positive),
        negative_prompt=", ".join(negative),
        params=Params(**params),  # type: ignore[arg-type]
        lane=lane,
        loras=tuple(loras),
        prompts=parts,
        avoid=tuple(avoid),
        model=model,
        repeat=repeat,
    )


def parse(text: str, limits: PromptLimits = DEFAULT_LIMITS) -> list[ParsedPrompt]:
    """One ParsedPrompt per `{…}` combination (one for a prompt without options)."""
    text = EM_DASH_FLAG.sub("--", text or "")
    return [parse_one(option, limits) for option in expand(text, limits.max_jobs)]


# -- back to text ---------------------------------------------------------------------
def _num(value: float) -> str:
    text = format(Decimal(repr(float(value))), "f")
    return text[:-2] if text.endswith(".0") else text


def canonical(parsed: ParsedPrompt) -> str:
    """Text that parses to `parsed` again: the parts, then the flags in table order."""
    parts = parsed.prompts or (PromptPart(parsed.prompt, 1.0),)
    if len(parts) == 1 and parts[0].weight == 1.0:
        words = [parts[0].text]
    else:
        words = [f"{p.text}::{_num(p.weight)}" for p in parts]
    params = parsed.params
    for name in PARAM_FLAGS:
        value = getattr(params, FIELD_OF.get(name, name))
        if name == "ar":
            if value != Params().aspect:
                words.append(f"--ar {value}")
        elif isinstance(value, bool):
            if value:
                words.append(f"--{name}")
        elif value is not None:
            words.append(f"--{name} {_num(value)}")
    if parsed.avoid:
        words.append("--no " + shlex.quote(", ".join(parsed.avoid)))
    if parsed.model:
        words.append(f"--model {parsed.model}")
    if parsed.lane:
        words.append(f"--{parsed.lane}")
    if parsed.repeat > 1:
        words.append(f"--repeat {parsed.repeat}")
    words.extend(f"--lora {ref}" for ref in parsed.loras)
    return " ".join(words)


def with_params(parsed: ParsedPrompt, **changes: object) -> ParsedPrompt:
    return replace(parsed, params=replace(parsed.params, **changes))
