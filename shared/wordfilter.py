"""Word filters: which rule of a server's list a prompt breaks, if any.

A rule is a word (`nude`), a phrase (`blood bath`), or a simple pattern where
`*` stands for any letters inside one word (`porn*`, `*gore*`). Rules and
prompts are compared after the same normalisation, so the evasions people
try first do not get through:

* case and accents: NFKD, combining marks dropped, casefolded (`NÜDE` → `nude`);
* separators: anything that is not a letter or a digit splits words, and a run
  of single letters is searched as one word (`n u d e`, `a n.u.d.e`, `n-u-d-e`);
* light leetspeak inside words that have a letter (`n00d3` → `noode`, `s3x` →
  `sex`); a number on its own stays a number.

Only the prompt is screened, not `--no`: the negative prompt lists what to keep
*out* of the image, and "--no nudity" is what a careful member writes.

Pure code: the rules of a server are the store's (shared/moderation.py)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# The host replaces this with WORDFILTER_FILE (one rule a line, `#` comments).
# Kept short and unambiguous: a server adds its own with /admin filter add.
DEFAULT_RULES = (
    "nude",
    "nudes",
    "nudity",
    "naked",
    "nsfw",
    "porn*",
    "hentai",
    "xxx",
    "sex",
    "sexy",
    "topless",
    "genital*",
    "nipple*",
    "explicit",
    "gore",
)

LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_WORD = re.compile(r"[a-z0-9@$!]+")
_LETTER = re.compile(r"[a-z]")
MAX_RULE_CHARS = 60


@dataclass(frozen=True)
class Match:
    rule: str  # the rule as the admin wrote it
    word: str  # what in the prompt matched it (normalised)


def fold(text: str) -> str:
    """Lower case, accents dropped, compatibility forms unfolded (fullwidth, ligatures)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The normalised words of `text`: split at every separator, leet read inside words."""
    found = []
    for raw in _WORD.findall(fold(text)):
        word = raw.translate(LEET) if _LETTER.search(raw) or not raw.isdigit() else raw
        word = re.sub(r"[^a-z0-9]", "", word)
        if word:
            found.append(word)
    return found


def letter_runs(tokens: list[str]) -> list[str]:
    """`n u d e` read as `nude`: each run of two or more one-letter words, joined. A
    spelled-out word can sit anywhere in its run (`a n u d e`), so rules search runs."""
    runs: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1:
            run.append(token)
            continue
        if len(run) >= 2:
            runs.append("".join(run))
        run = []
    return runs


@dataclass(frozen=True)
class Rule:
    text: str  # as written by the admin
    parts: tuple[re.Pattern[str], ...]  # one per word of the rule

    def find(self, tokens: list[str]) -> str | None:
        n = len(self.parts)
        for i in range(len(tokens) - n + 1):
            if all(p.fullmatch(tokens[i + k]) for k, p in enumerate(self.parts)):
                return " ".join(tokens[i : i + n])
        return None


def check_rule(text: str) -> str:
    """The rule as stored (trimmed), or ValueError saying how to write one."""
    text = " ".join(text.split())
    if not text:
        raise ValueError("A filter rule needs a word, a phrase or a pattern such as `gore` or `porn*`.")
    if len(text) > MAX_RULE_CHARS:
        raise ValueError(f"A filter rule is at most {MAX_RULE_CHARS} characters; this one has {len(text)}.")
    if not words(text.replace("*", "")):
        raise ValueError(f"`{text}` has no letters or digits to match; write a word such as `gore` or `porn*`.")
    return text


def compile_rule(text: str) -> Rule:
    parts = []
    for chunk in fold(check_rule(text)).split():
        pieces = [re.escape("".join(words(p))) for p in chunk.split("*")]
        parts.append(re.compile("[a-z0-9]*".join(pieces)))
    return Rule(text, tuple(parts))


class WordFilter:
    """A compiled list of rules; `find(prompt)` is the first rule the prompt breaks."""

    def __init__(self, rules: Iterable[str]) -> None:
        self.rules = [compile_rule(r) for r in dict.fromkeys(rules)]

    def find(self, prompt: str) -> Match | None:
        tokens = words(prompt)
        runs = letter_runs(tokens)
        for rule in self.rules:
            word = rule.find(tokens)
            if word is None and len(rule.parts) == 1:
                word = next((m.group(0) for run in runs if (m := rule.parts[0].search(run))), None)
            if word is not None:
                return Match(rule.text, word)
        return None


def read_rules_file(path: str | Path) -> tuple[str, ...]:
    """A host's list: one rule a line; blank lines and `#` comments skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return tuple(check_rule(line) for line in (ln.split("#", 1)[0].strip() for ln in lines) if line)
