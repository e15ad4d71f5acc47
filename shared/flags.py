"""Every `--flag` a prompt may carry, in one declarative table (`FLAGS`).

The prompt parser (shared/prompt_text.py), the help text, the /imagine option
description, the error messages and the README's flag table are all made
from it, so a flag added here is understood, explained and documented at
once. Limits an admin can change (the aspect-ratio range, the step cap, the
repeat cap) come from `PromptLimits`; the table names which ones apply."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction


class Kind(StrEnum):
    RATIO = "ratio"  # W:H
    INT = "int"
    FLOAT = "float"
    CHOICE = "choice"  # one of `choices` (numbers)
    SWITCH = "switch"  # no value
    TEXT_LIST = "text list"  # comma-separated, may repeat (--no)
    NAME = "name"  # a model name
    LORA = "lora"  # `name:0.8`, read by shared/loras.py


@dataclass(frozen=True)
class Flag:
    name: str  # the Params / ParsedPrompt field it sets (lanes: the lane)
    aliases: tuple[str, ...]
    kind: Kind
    accepts: str  # the accepted form, as a user reads it
    example: str  # a valid value (empty for a switch)
    maps_to: str  # what it does to the job
    low: float | None = None
    high: float | None = None
    default: str = ""  # as written in a prompt; empty: none / the model's
    choices: tuple[float, ...] = ()
    cap: str = ""  # the `PromptLimits` field an admin may lower (or raise) the top of the range with

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def usage(self) -> str:
        return f"--{self.name}" + (f" {self.example}" if self.example else "")


@dataclass(frozen=True)
class PromptLimits:
    """What an admin may set per channel (`/admin defaults`); the defaults are Daydream's."""

    min_aspect: Fraction = Fraction(1, 4)
    max_aspect: Fraction = Fraction(4, 1)
    max_steps: int = 100
    max_repeat: int = 4
    max_jobs: int = 16  # permutations × repeat, per command
    confirm_above: int = 4  # more jobs than this: the user confirms with a button first


DEFAULT_LIMITS = PromptLimits()
MAX_SEED = 2**32 - 1
QUALITIES = (0.25, 0.5, 1.0, 2.0, 4.0)
LANE_FLAGS = ("fast", "relax", "turbo")

FLAGS: tuple[Flag, ...] = (
    Flag(
        "ar",
        ("aspect",),
        Kind.RATIO,
        "two whole numbers W:H",
        "16:9",
        "width × height near the model's native pixel count, sides a multiple of what the model needs",
        default="1:1",
        cap="min_aspect/max_aspect",
    ),
    Flag(
        "seed",
        (),
        Kind.INT,
        "a whole number from 0 to 4294967295",
        "1234",
        "image i of the grid is sampled from seed + i (✉️ and /show list them)",
        low=0,
        high=MAX_SEED,
    ),
    Flag(
        "no",
        (),
        Kind.TEXT_LIST,
        "things to avoid, separated by commas",
        "text, people",
        "negative prompt, each thing weighted -0.5 (the same as `thing::-0.5`)",
    ),
    Flag(
        "chaos",
        ("c",),
        Kind.INT,
        "a whole number from 0 to 100",
        "50",
        "how different the four images are: each image's text conditioning is moved by its own seeded offset",
        low=0,
        high=100,
        default="0",
    ),
    Flag(
        "stylize",
        ("s",),
        Kind.INT,
        "a whole number from 0 to 1000",
        "250",
        "guidance strength: the model's guidance × (0.5 + 0.5·√(s/100)), so 100 is the model's own",
        low=0,
        high=1000,
        default="100",
    ),
    Flag(
        "quality",
        ("q",),
        Kind.CHOICE,
        "one of .25 .5 1 2 4",
        "2",
        "sampling steps: the model's default steps × q",
        choices=QUALITIES,
        default="1",
        cap="max_steps",
    ),
    Flag(
        "steps",
        (),
        Kind.INT,
        "a whole number from 1 to the step cap (100 unless an admin set another)",
        "30",
        "explicit sampling steps (wins over --quality)",
        low=1,
        high=100,
        cap="max_steps",
    ),
    Flag(
        "cfg",
        ("guidance",),
        Kind.FLOAT,
        "a number from 0 to 30",
        "7",
        "explicit guidance scale (wins over --stylize)",
        low=0,
        high=30,
    ),
    Flag(
        "stop",
        (),
        Kind.INT,
        "a whole number from 10 to 100",
        "60",
        "finish early: the denoised estimate after that percentage of the steps",
        low=10,
        high=100,
        default="100",
    ),
    Flag("tile", (), Kind.SWITCH, "no value", "", "seamless output: every convolution wraps around the edges"),
    Flag(
        "weird",
        ("w",),
        Kind.INT,
        "a whole number from 0 to 3000",
        "500",
        "an unconventional twist: one seeded offset, common to the four images, moves the text conditioning",
        low=0,
        high=3000,
        default="0",
    ),
    Flag("raw", (), Kind.SWITCH, "no value", "", "no prompt suffix and no style defaults (yours or the channel's)"),
    Flag(
        "model",
        ("m", "v"),
        Kind.NAME,
        "the name of a model this server serves",
        "embedded",
        "which model (and so which queue) runs the job",
    ),
    Flag("fast", (), Kind.SWITCH, "no value", "", "the fast lane"),
    Flag("relax", (), Kind.SWITCH, "no value", "", "the relax lane (runs when fast is empty)"),
    Flag("turbo", (), Kind.SWITCH, "no value", "", "the turbo lane (for members an admin granted it)"),
    Flag(
        "repeat",
        ("r",),
        Kind.INT,
        "a whole number from 2 to the repeat cap (4 unless an admin set another)",
        "3",
        "that many jobs (new seeds each) from one command",
        low=2,
        high=4,
        cap="max_repeat",
    ),
    Flag(
        "iw",
        (),
        Kind.FLOAT,
        "a number from 0 to 3",
        "1.5",
        "with image prompts: how much the images count against the text (image-to-image strength)",
        low=0,
        high=3,
        default="1",
    ),
    Flag(
        "lora",
        (),
        Kind.LORA,
        "a LoRA's name, optionally with a weight from -2 to 2",
        "papercut:0.8",
        "a LoRA adapter on the model for this job",
    ),
)

BY_NAME: dict[str, Flag] = {n: f for f in FLAGS for n in f.names}
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def lookup(name: str) -> Flag | None:
    """The flag `--name` (any case), or None."""
    return BY_NAME.get(name.lower())


def suggest(name: str, extra: tuple[str, ...] = ()) -> str | None:
    """The known flag nearest to a mistyped one (`sede` → `seed`), or None."""
    close = difflib.get_close_matches(name.lower(), [*BY_NAME, *extra], n=1, cutoff=0.6)
    return close[0] if close else None


def help_text() -> str:
    """One line per flag, for a reply's or the CLI's help."""
    lines = []
    for f in FLAGS:
        names = ", ".join(f"--{n}" for n in f.names)
        lines.append(f"{names}: {f.accepts}" + (f" (e.g. {f.usage})" if f.example else ""))
    lines.append("text::2 other::-0.5 weighs parts of the prompt; {a, b} makes one job per option.")
    return "\n".join(lines)


def option_description(limit: int = 100) -> str:
    """The /imagine `prompt` option's description: Discord allows 100 characters."""
    head = "What to draw, then flags:"
    out = head
    for f in FLAGS:
        piece = f" --{f.name}"
        if len(out) + len(piece) + 4 > limit:
            return out + " …"
        out += piece
    return out


def readme_table() -> str:
    """The README's flag table (a test checks the README holds exactly this)."""
    rows = ["| flag | accepts | default | what it does |", "| --- | --- | --- | --- |"]
    for f in FLAGS:
        names = " / ".join(f"`--{n}`" for n in f.names)
        cap = " (admin-capped)" if f.cap else ""
        rows.append(f"| {names} | {f.accepts}{cap} | {f.default or '—'} | {f.maps_to} |")
    return "\n".join(rows)
