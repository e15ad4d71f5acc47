"""What the embedded model understood of a prompt, in any language.

The model knows one small world (worker/embedded/scenes.py): one or two
circles, squares, triangles or stars in eight colours, at nine places, in
three sizes, on a plain background. `read(prompt)` maps a prompt onto that
world in three steps:

1. split it into units: words, and single characters of scripts written
   without spaces (Chinese, Japanese);
2. match spans of units to the vocabulary, exactly (worker/embedded/lexicon.py,
   English plus hand-written translations), then what is left with a
   multilingual sentence encoder (worker/embedded/multilingual.py) against the
   same vocabulary, accepted above `ENCODER_MIN_SIMILARITY`;
3. group the matches into a background and objects, by the markers between
   them ("background", "on", "and", punctuation).

The result says what the model will draw (`Reading.describe`), gives the
English caption the model was trained on for prompts it had to translate
(`Reading.caption`), and is what re-ranking scores samples against
(worker/embedded/ranking.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from worker.embedded import lexicon, scenes
from worker.embedded.lexicon import AND, BACKGROUND, COLOUR, ON, POSITION, SHAPE, SIZE

logger = logging.getLogger(__name__)

# A span the encoder maps onto the vocabulary must be at least this close (cosine)
# to its nearest entry. Measured with USE multilingual v3 on single words:
# translations and synonyms of the vocabulary score 0.43–1.0 (median 0.83),
# words outside it (lighthouse, dusk, 森林, 海洋, 风景) at most 0.49 against
# English anchors; against all the lexicon's languages "man" reached 0.63
# (orange), inflected translations (gelber, schwarzem, синем) 0.87–0.95.
ENCODER_MIN_SIMILARITY = 0.72
MAX_SPAN_UNITS = 4  # the longest span looked up (左上角 is three characters, 小小的 too)
MAX_OBJECTS = 2  # the model's world holds one or two objects
# Small stars are what the model draws worst (their points fill in). Worded
# "tiny … five-pointed star" (both training synonyms) they came out with points
# in 25 of 48 candidates against 8 of 48 as "small … star" (the quality
# benchmark's 6 small-star scenes of 48 × 8 seeds; "tiny star" 24, "small
# five-pointed star" 15). Chosen again on hold-out scenes and seeds
# (benchmarks/embedded_small_stars.py, model card), every prompt uses it:
# translated ones in their caption, English ones reworded in place.
SMALL_STAR_WORDING = ("tiny", "five-pointed star")
# Postpositions that mean "on" (the background comes before them): 在蓝色上.
POSTPOSITIONS = frozenset({"上"})

# Scripts written without spaces (kana, CJK ideographs), as a regex character class's ranges.
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_UNIT = re.compile(rf"[{CJK}]|[^\W\d_{CJK}]+(?:-[^\W\d_{CJK}]+)*")
_BREAK = re.compile(r"[,;.!?，、；。！？\n]")

Embed = Callable[[list[str]], np.ndarray]  # texts → (N, D) L2-normalised rows


@dataclass(frozen=True)
class Match:
    kind: str
    value: str
    start: int  # first unit
    end: int  # one past the last unit
    text: str
    english: bool  # an English word of the vocabulary, matched exactly
    chunk: int  # which punctuation-separated part of the prompt
    similarity: float = 1.0  # 1.0 for an exact match
    chars: tuple[int, int] | None = None  # where it stands in the prompt (None: not known)


@dataclass(frozen=True)
class ReadObject:
    colour: str | None = None
    shape: str | None = None
    position: str | None = None  # a scenes.POSITIONS key
    size: str | None = None  # a scenes.SIZES key
    # The matches it was read from; not part of what it is (two readings of the same object are equal).
    words: tuple[Match, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Reading:
    prompt: str
    background: str | None
    objects: tuple[ReadObject, ...]
    matches: tuple[Match, ...] = field(default=(), repr=False)
    unread: tuple[str, ...] = ()  # content words that matched nothing

    @property
    def in_world(self) -> bool:
        """Does the prompt name something the model can draw (at least one shape)?"""
        return any(o.shape for o in self.objects)

    @property
    def translated(self) -> bool:
        """Was anything read from words the model was not trained on (another
        language, or a synonym found by the encoder)?"""
        return any(not m.english for m in self.matches)

    def describe(self) -> str:
        """What will be drawn, in English: `a red circle, top left, on blue`."""
        parts = []
        for obj in self.objects:
            if not obj.shape:
                continue
            words = [w for w in (obj.size if obj.size != "medium" else None, obj.colour, obj.shape) if w]
            phrase = " ".join(words)
            phrase = f"{_article(phrase)} {phrase}"
            if obj.position:
                phrase += f", {obj.position},"
            parts.append(phrase)
        text = " and ".join(parts)
        if self.background:
            text = f"{text} on {self.background}" if text else f"a plain {self.background} background"
        return text.rstrip(",")

    def caption(self) -> str:
        """The prompt in the model's own English wording (scenes.plain_caption's)."""
        parts = []
        for obj in self.objects:
            if not obj.shape:
                continue
            size, shape = obj.size if obj.size not in (None, "medium") else None, obj.shape
            if (size, shape) == ("small", "star"):
                size, shape = SMALL_STAR_WORDING
            phrase = " ".join(w for w in (size, obj.colour, shape) if w)
            phrase = f"{_article(phrase)} {phrase}"
            if obj.position and obj.position != "centre":
                phrase += f" {scenes.POSITION_WORDS[obj.position][0]}"
            parts.append(phrase)
        text = " and ".join(parts)
        if self.background:
            text = f"{text} on {_article(self.background)} {self.background} background"
        return text

    def conditioning_text(self, fits: Callable[[str], bool] | None = None) -> str:
        """What the model's English text encoder reads: the translated caption
        for a prompt read from words the model was not trained on; else the
        prompt as typed, with a small star's words reworded (SMALL_STAR_WORDING)
        and every other word kept, where the rewording `fits` the encoder's
        length (it adds three tokens; past the limit the encoder would cut the
        prompt's end off, so it is drawn as typed)."""
        if not self.in_world:
            return self.prompt
        if self.translated:
            return self.caption()
        reworded = self.reworded()
        return reworded if fits is None or fits(reworded) else self.prompt

    def reworded(self) -> str:
        """The prompt with each small star's size and shape words replaced by
        SMALL_STAR_WORDING's ("a small red star, glowing" → "a tiny red
        five-pointed star, glowing"); unchanged when it has no small star."""
        edits: list[tuple[int, int, str]] = []
        size_word, shape_word = SMALL_STAR_WORDING
        for obj in self.objects:
            if (obj.size, obj.shape) != ("small", "star"):
                continue
            for m in obj.words:
                if m.chars is None or not m.english:
                    continue
                if m.kind == SIZE and m.value == "small" and m.text != size_word:
                    edits.append((*m.chars, size_word))
                elif m.kind == SHAPE and m.value == "star" and m.text != shape_word:
                    edits.append((*m.chars, shape_word))
        text = self.prompt
        for start, end, word in sorted(edits, reverse=True):  # from the end: earlier offsets stay valid
            text = text[:start] + word + text[end:]
        return text


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


@dataclass(frozen=True)
class _Unit:
    text: str
    cjk: bool
    chunk: int
    chars: tuple[int, int] | None = None  # where it stands in the prompt


def units(prompt: str) -> list[_Unit]:
    """Words and CJK characters, lower-cased, with the punctuation-separated part each is in."""
    out: list[_Unit] = []
    lower = prompt.lower()
    # Offsets into the prompt hold only where lower-casing kept every character's length (İ does not).
    exact = len(lower) == len(prompt)
    offset = 0
    for chunk, part in enumerate(_BREAK.split(lower)):
        for m in _UNIT.finditer(part):
            text = m.group(0)
            chars = (offset + m.start(), offset + m.end()) if exact else None
            out.append(_Unit(text, bool(re.fullmatch(f"[{CJK}]", text)), chunk, chars))
        offset += len(part) + 1  # the break character itself
    return out


def _chars(span: list[_Unit]) -> tuple[int, int] | None:
    first, last = span[0].chars, span[-1].chars
    return (first[0], last[1]) if first is not None and last is not None else None


def _span_text(us: list[_Unit]) -> str:
    return "".join(u.text for u in us) if all(u.cjk for u in us) else " ".join(u.text for u in us)


def _exact_matches(us: list[_Unit]) -> list[Match]:
    """Longest exact lexicon match at each position, left to right."""
    out: list[Match] = []
    i = 0
    while i < len(us):
        for n in range(min(MAX_SPAN_UNITS, len(us) - i), 0, -1):
            span = us[i : i + n]
            if len({u.chunk for u in span}) > 1:
                continue
            text = _span_text(span)
            entry = lexicon.LEXICON.get(text)
            if entry is not None:
                english = lexicon.IS_ENGLISH[text]
                out.append(Match(entry[0], entry[1], i, i + n, text, english, span[0].chunk, chars=_chars(span)))
                i += n
                break
        else:
            i += 1
    return out


def _encoder_matches(us: list[_Unit], covered: set[int], embed: Embed, anchors: np.ndarray) -> list[Match]:
    """Spans of units no exact match covers, mapped to their nearest vocabulary
    entry by the encoder when close enough; best first, never overlapping."""
    candidates: list[tuple[int, int, str]] = []
    for i in range(len(us)):
        for n in range(1, MAX_SPAN_UNITS + 1):
            span = us[i : i + n]
            if len(span) < n or any(i + k in covered for k in range(n)) or len({u.chunk for u in span}) > 1:
                break
            if span[0].text in lexicon.STOPWORDS or span[-1].text in lexicon.STOPWORDS:
                continue
            if n == 1 and span[0].cjk:
                continue  # one character alone is too ambiguous to translate by similarity
            if n > 3 and not span[0].cjk:
                continue
            candidates.append((i, i + n, _span_text(span)))
    if not candidates:
        return []
    sims = embed([c[2] for c in candidates]) @ anchors.T
    best = sims.argmax(axis=1)
    keys = list(lexicon.LEXICON)
    scored = sorted(
        ((float(sims[k, best[k]]), k) for k in range(len(candidates))),
        key=lambda s: (-s[0], candidates[s[1]][0]),
    )
    taken: set[int] = set()
    out: list[Match] = []
    for sim, k in scored:
        if sim < ENCODER_MIN_SIMILARITY:
            break
        start, end, text = candidates[k]
        if any(j in taken for j in range(start, end)):
            continue
        kind, value = lexicon.LEXICON[keys[best[k]]]
        taken.update(range(start, end))
        out.append(Match(kind, value, start, end, text, False, us[start].chunk, sim))
    return out


def _background(matches: list[Match], us: list[_Unit]) -> tuple[str | None, set[int]]:
    """The background colour and the indices of the matches that named it."""
    for i, m in enumerate(matches):
        if m.kind != BACKGROUND:
            continue
        prev = matches[i - 1] if i > 0 else None
        nxt = matches[i + 1] if i + 1 < len(matches) else None
        if prev is not None and prev.kind == COLOUR and prev.chunk == m.chunk:
            return prev.value, {i - 1, i}
        if nxt is not None and nxt.kind == COLOUR and nxt.chunk == m.chunk:
            return nxt.value, {i, i + 1}
    for i, m in enumerate(matches):
        if m.kind != ON:
            continue
        if m.text in POSTPOSITIONS:  # 在蓝色上: the colour before, not followed by a shape
            if i > 0 and matches[i - 1].kind == COLOUR:
                return matches[i - 1].value, {i - 1, i}
            continue
        if i + 1 < len(matches) and matches[i + 1].kind == COLOUR:
            after = matches[i + 2] if i + 2 < len(matches) else None
            if after is None or after.kind != SHAPE or after.chunk != matches[i + 1].chunk:
                return matches[i + 1].value, {i, i + 1}
    return None, set()


def _objects(matches: list[Match]) -> tuple[ReadObject, ...]:
    groups: list[list[Match]] = [[]]
    for m in matches:
        if m.kind == AND:
            groups.append([])
            continue
        if m.kind not in lexicon.ATTRIBUTE_KINDS:
            continue
        current = groups[-1]
        if current and ((m.kind == SHAPE and any(c.kind == SHAPE for c in current)) or m.chunk != current[-1].chunk):
            groups.append([m])
        else:
            current.append(m)
    groups = [g for g in groups if g]
    # A group without a shape ("on the left, a red circle") lends its attributes to the nearest one with a shape.
    shaped = [i for i, g in enumerate(groups) if any(m.kind == SHAPE for m in g)]
    merged: dict[int, list[Match]] = {i: list(groups[i]) for i in shaped}
    for i, g in enumerate(groups):
        if i in merged:
            continue
        if not shaped:
            merged.setdefault(-1, []).extend(g)
            continue
        target = min(shaped, key=lambda s: (abs(s - i), s < i))
        merged[target].extend(g)
    return tuple(_object(merged[k]) for k in sorted(merged))[:MAX_OBJECTS]


def _object(group: list[Match]) -> ReadObject:
    def first(kind: str) -> str | None:
        return next((m.value for m in group if m.kind == kind), None)

    places = [m.value for m in group if m.kind == POSITION]
    position = next((p for p in places if " " in p), None)
    if position is None:
        vertical = next((p for p in places if p in ("top", "bottom")), None)
        horizontal = next((p for p in places if p in ("left", "right")), None)
        if vertical and horizontal:
            position = f"{vertical} {horizontal}"
        else:
            position = vertical or horizontal or (places[0] if places else None)
    return ReadObject(colour=first(COLOUR), shape=first(SHAPE), position=position, size=first(SIZE), words=tuple(group))


def read(prompt: str, embed: Embed | None = None, anchors: np.ndarray | None = None) -> Reading:
    """`prompt` mapped onto the model's world. Without `embed` (and the
    vocabulary's `anchors`, embedded by the same encoder) only exact
    vocabulary words are read."""
    us = units(prompt)
    matches = _exact_matches(us)
    if embed is not None and anchors is not None:
        covered = {j for m in matches for j in range(m.start, m.end)}
        matches = sorted(matches + _encoder_matches(us, covered, embed, anchors), key=lambda m: m.start)
    covered = {j for m in matches for j in range(m.start, m.end)}
    unread = tuple(u.text for j, u in enumerate(us) if j not in covered and u.text not in lexicon.STOPWORDS)
    background, used = _background(matches, us)
    objects = _objects([m for i, m in enumerate(matches) if i not in used])
    reading = Reading(prompt, background, objects, tuple(matches), unread)
    logger.debug("read %r as %r", prompt, reading.describe())
    return reading
