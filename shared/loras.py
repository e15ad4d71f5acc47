"""LoRAs named in a prompt: `--lora name:0.8` (repeatable) or `<lora:name:0.8>`
anywhere in the text (the form Automatic1111 and ComfyUI users already type).

`extract_loras(text)` takes them out of the prompt and returns the rest of
the text with the references; the prompt parser (shared/params.py) calls it
first, so the flags that remain are the parser's own. Whether a model has a
LoRA of that name is the model's to say (`check_servable` in shared/models.py,
against the names its worker announces)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from shared.errors import InvalidRequest

DEFAULT_WEIGHT = 1.0
MIN_WEIGHT, MAX_WEIGHT = -2.0, 2.0
MAX_LORAS = 4  # per job: each one more costs a little on every step
# A LoRA's name is its adapter's name in the model, which may not contain a dot.
LORA_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
HOW = "Write `--lora name` or `--lora name:0.8` (weight between -2 and 2), or `<lora:name:0.8>` in the prompt."

# `<lora:name>` / `<lora:name:0.8>`; `--lora name[:w]` as a word of its own.
INLINE = re.compile(r"<lora:([^:>\s]*)(?::([^>\s]*))?>", re.IGNORECASE)
FLAG = re.compile(r"(?:(?<=\s)|^)(?:--|\u2014)lora(?:\s+(?!--)(\S+)|(?=\s|$))", re.IGNORECASE)


@dataclass(frozen=True)
class LoraRef:
    """A LoRA a job asks for: its name (a file `<name>.safetensors` beside the
    model's others) and the weight of its effect (1: as trained, 0: none)."""

    name: str
    weight: float = DEFAULT_WEIGHT
    unknown: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # record.py

    def __str__(self) -> str:
        return f"{self.name}:{self.weight:g}"


def parse_ref(raw: str, *, written: str | None = None) -> LoraRef:
    """`name` or `name:0.8` → LoraRef; a clear InvalidRequest naming what was written otherwise."""
    shown = written or raw
    name, _, weight_text = raw.partition(":")
    name = name.strip().lower()
    if not LORA_NAME.match(name):
        raise InvalidRequest(f"`{shown}` does not name a LoRA. {HOW}")
    if not weight_text:
        return LoraRef(name)
    try:
        weight = float(weight_text)
    except ValueError:
        raise InvalidRequest(f"The weight in `{shown}` must be a number, e.g. `{name}:0.8`.") from None
    if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
        raise InvalidRequest(f"The weight in `{shown}` must be between -2 and 2, got {weight:g}.")
    return LoraRef(name, weight)


def extract_loras(text: str) -> tuple[str, list[LoraRef]]:
    """The prompt without its LoRA references, and the references in the order
    written. The same name twice is a mistake, said so (which weight was meant?)."""
    refs: list[LoraRef] = []

    def inline(match: re.Match[str]) -> str:
        raw = match.group(1) + (f":{match.group(2)}" if match.group(2) is not None else "")
        refs.append(parse_ref(raw, written=match.group(0)))
        return " "

    def flag(match: re.Match[str]) -> str:
        if match.group(1) is None:
            raise InvalidRequest(f"`--lora` needs a LoRA's name. {HOW}")
        refs.append(parse_ref(match.group(1), written=f"--lora {match.group(1)}"))
        return " "

    text = INLINE.sub(inline, text)
    text = FLAG.sub(flag, text)
    names = [r.name for r in refs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidRequest(f"The LoRA `{twice[0]}` is named twice; name each LoRA once, with one weight.")
    if len(refs) > MAX_LORAS:
        raise InvalidRequest(f"A prompt may use at most {MAX_LORAS} LoRAs; this one names {len(refs)}.")
    # Only a prompt that had references is re-spaced (where they were cut out).
    return (" ".join(text.split()) if refs else text), refs
