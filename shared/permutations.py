"""`{a, b}` permutations in a prompt (Midjourney's): `a {red, blue} bird` is two
prompts, `{a, {b, c}}` nests, and options may stand anywhere, flags included
(`--ar {1:1, 2:3}`). Expanded before anything else is read
(shared/prompt_text.py); more combinations than the limit are refused before
they are made."""

from __future__ import annotations

from shared.errors import InvalidPrompt
from shared.flags import DEFAULT_LIMITS


def expand(text: str, limit: int = DEFAULT_LIMITS.max_jobs) -> list[str]:
    """Every combination of the `{…}` options in `text`, in reading order."""
    return _expand(text, 0, limit, top=True)[0]


def _expand(text: str, i: int, limit: int, top: bool) -> tuple[list[str], int]:
    """Expand from `i` to the end (top) or to the `}`/`,` closing the current option."""
    results = [""]
    start = i
    while i < len(text):
        ch = text[i]
        if ch == "{":
            results = [r + text[start:i] for r in results]
            options: list[str] = []
            i += 1
            while True:
                option, i = _expand(text, i, limit, top=False)
                options.extend(o.strip() for o in option)
                if i >= len(text):
                    raise InvalidPrompt(
                        "A `{` in your prompt is never closed. Write options like `a {red, blue} bird`.",
                        text=text,
                        accepted="{option, option}",
                        example="a {red, blue} bird",
                    )
                if text[i] == "}":
                    i += 1
                    break
                i += 1  # a comma: the next option
            if len(results) * len(options) > limit:
                raise InvalidPrompt(
                    f"Your `{{…}}` options make more than {limit} prompts; this server allows {limit} jobs per command "
                    "(an admin limit). Use fewer options.",
                    text=text,
                    accepted=f"at most {limit} combinations",
                    example="a {red, blue} bird",
                )
            results = [r + o for r in results for o in options]
            start = i
            continue
        if ch == "}" or (ch == "," and not top):
            if top:
                raise InvalidPrompt(
                    "Your prompt has a `}` with no `{` before it. Write options like `a {red, blue} bird`.",
                    text=text,
                    accepted="{option, option}",
                    example="a {red, blue} bird",
                )
            return [r + text[start:i] for r in results], i
        i += 1
    return [r + text[start:] for r in results], i
