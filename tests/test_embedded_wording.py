"""What the embedded engine's English text encoder is given (issue 21): a plain
English small star is drawn in the wording the model draws small stars best
in ("a tiny … five-pointed star", chosen on hold-out scenes:
benchmarks/embedded_small_stars.py), and the record says so (`drawn`); the
prompt-length limit counts the tokens of that text, so a Chinese prompt is
counted as the caption the encoder reads, not character by character."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared import tokens
from shared.errors import PromptTooLong
from shared.models import check_servable
from tests.support.jobs import make_job
from worker.embedded.textenc import MAX_TOKENS
from worker.engines.base import Request
from worker.engines.embedded import EmbeddedEngine

SMALL_STAR = "a small red star in the top left corner on a green background"
REWORDED = "a tiny red five-pointed star in the top left corner on a green background"
CHINESE = "白色背景上，右下角有一個小的藍色星星"  # a small blue star, bottom right, on white
CAPTION = "a tiny blue five-pointed star in the bottom right corner on a white background"


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine()


def test_a_plain_english_small_star_is_drawn_in_the_models_best_wording(engine: EmbeddedEngine) -> None:
    assert engine.conditioning_text(SMALL_STAR) == REWORDED
    understood = engine.understand(SMALL_STAR)
    assert understood.text == "a small red star, top left, on green"  # what it says it understood: as before
    assert understood.drawn == REWORDED  # and what it was given to draw, for the record
    # The conditioning is the reworded text's, not the typed one's.
    cond = engine._conditioning(Request.text(SMALL_STAR, [1], 64, 64), 1)
    assert torch.allclose(cond.pooled[1:], engine.text.encode([REWORDED]).pooled)
    assert not torch.allclose(cond.pooled[1:], engine.text.encode([SMALL_STAR]).pooled)
    # Sampled: the same tiles as the reworded prompt typed (two steps, two seeds).
    typed = engine.generate(Request.text(SMALL_STAR, [5, 6], 64, 64, steps=2))
    worded = engine.generate(Request.text(REWORDED, [5, 6], 64, 64, steps=2))
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(typed, worded, strict=True))


def test_a_prompt_drawn_as_typed_records_no_other_wording(engine: EmbeddedEngine) -> None:
    assert engine.understand("a red circle on a blue background").drawn is None
    assert engine.understand("a lighthouse at dusk").drawn is None  # outside the world: as typed
    assert engine.understand(CHINESE).drawn == CAPTION


def test_a_small_star_near_the_limit_is_drawn_as_typed_rather_than_cut(engine: EmbeddedEngine) -> None:
    prompt = SMALL_STAR
    while engine.text.count_tokens(prompt + " glowing") <= MAX_TOKENS:
        prompt += " glowing"
    assert engine.text.count_tokens(engine.read(prompt).reworded()) > MAX_TOKENS  # reworded it would not fit
    assert engine.conditioning_text(prompt) == prompt
    assert engine.count_tokens(prompt) == engine.text.count_tokens(prompt) <= MAX_TOKENS


def test_tokens_are_counted_in_the_text_the_encoder_reads(engine: EmbeddedEngine) -> None:
    assert engine.count_tokens(CHINESE) == engine.text.count_tokens(CAPTION)
    assert engine.count_tokens(SMALL_STAR) == engine.text.count_tokens(REWORDED)
    # A long Chinese prompt: past the limit one token a character, but the encoder reads its short caption.
    long = "蓝色背景上的红色圆形，画面非常漂亮，充满了艺术感和想象力，让人感到愉快和放松，适合挂在家里"
    assert engine.text.count_tokens(long) > MAX_TOKENS
    assert engine.understand(long).text == "a red circle on blue"
    check_servable(make_job(prompt=long), engine.spec, engine.count_tokens)  # not refused
    # A long prompt drawn as typed is counted as typed, and refused with what to do.
    lighthouse = "a tall white lighthouse at dusk " * 6
    with pytest.raises(PromptTooLong, match="Shorten it") as err:
        check_servable(make_job(prompt=lighthouse), engine.spec, engine.count_tokens)
    assert err.value.tokens == engine.text.count_tokens(lighthouse)
    # A negative prompt is read the same way, and counted as read.
    neg = engine._conditioning(Request.text("a red circle", [1], 64, 64, negative_prompt=CHINESE), 1)
    assert torch.allclose(neg.pooled[:1], engine.text.encode([CAPTION]).pooled)
    # The bot counts at submit with a tokenizer: English as typed (refused at once), CJK characters not at all
    # (they reach the encoder as a caption that always fits); the worker counts exactly on arrival.
    bot_count = tokens.build(engine.tokenizer_json())
    assert bot_count is not None
    assert bot_count(lighthouse) == engine.count_tokens(lighthouse) > MAX_TOKENS
    assert bot_count(SMALL_STAR) == engine.text.count_tokens(SMALL_STAR)
    assert bot_count(long) <= MAX_TOKENS < engine.text.count_tokens(long)
    check_servable(make_job(prompt=long), engine.spec, bot_count)  # not refused at submit either
