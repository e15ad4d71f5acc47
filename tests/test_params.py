from __future__ import annotations

import pytest

from shared.errors import InvalidRequest
from shared.params import Params, image_size, make_seeds, parse_prompt


def test_plain_prompt_has_defaults():
    parsed = parse_prompt("  a lighthouse at dusk ")
    assert parsed.prompt == "a lighthouse at dusk"
    assert parsed.params == Params()
    assert parsed.negative_prompt == ""


def test_parameters_are_parsed():
    parsed = parse_prompt("a lighthouse at dusk --ar 3:2 --seed 7 --steps 12 --cfg 5.5 --no fog, boats")
    assert parsed.prompt == "a lighthouse at dusk"
    assert parsed.params == Params(aspect="3:2", seed=7, steps=12, guidance=5.5)
    assert parsed.avoid == ("fog", "boats")
    assert parsed.negative_prompt == "fog, boats"


def test_em_dash_from_phones_counts_as_double_dash():
    assert parse_prompt("a cat \u2014ar 16:9").params.aspect == "16:9"
    assert parse_prompt("a cat \u2014SEED 4").params.seed == 4


def test_an_em_dash_in_ordinary_text_stays_text():
    parsed = parse_prompt("a cat \u2014 sleeping \u2014 on a mat \u2014ar 3:2")
    assert parsed.prompt == "a cat \u2014 sleeping \u2014 on a mat" and parsed.params.aspect == "3:2"
    assert parse_prompt("the \u2014arrow of time").prompt == "the \u2014arrow of time"  # not `--ar`


def test_limits_are_written_as_numbers():
    with pytest.raises(InvalidRequest) as err:
        parse_prompt("a cat --seed 99999999999")
    assert "from 0 to 4294967295" in str(err.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "prompt is empty"),
        ("   ", "prompt is empty"),
        ("--ar 3:2", "no text"),
        ("a cat --ar 9:1", "Invalid parameter `--ar 9:1`: this server allows aspect ratios from 1:4 to 4:1"),
        ("a cat --seed -1", "Invalid parameter `--seed -1`: use a whole number from 0 to 4294967295"),
        ("a cat --seed x", "Invalid parameter `--seed x`"),
        ("a cat --steps 1000", "this server allows --steps up to 100 (an admin limit)"),
        ("a cat --cfg 99", "Invalid parameter `--cfg 99`: use a number from 0 to 30"),
        ("a cat --size 5", "Unknown parameter `--size`"),
        ("a cat --ar", "Invalid parameter `--ar`: give one value"),
        ("a cat --no", "Invalid parameter `--no`: say what to avoid"),
        ("x" * 1001, "limit is 1000"),
    ],
)
def test_bad_input_says_what_is_wrong(text, fragment):
    with pytest.raises(InvalidRequest) as err:
        parse_prompt(text)
    assert fragment in str(err.value)


def test_seeds_are_consecutive_from_seed_and_random_otherwise():
    assert make_seeds(Params(seed=10)) == [10, 11, 12, 13]
    assert make_seeds(Params(seed=2**32 - 1))[1] == 0
    a, b = make_seeds(Params()), make_seeds(Params())
    assert len(set(a)) == 4 and a != b


@pytest.mark.parametrize(
    ("aspect", "expected"), [("1:1", (64, 64)), ("3:2", (80, 48)), ("2:3", (48, 80)), ("16:9", (80, 48))]
)
def test_image_size_respects_aspect_and_multiple(aspect, expected):
    assert image_size(aspect, 64, 16) == expected


def test_image_size_for_sd_checkpoints():
    w, h = image_size("3:2", 512, 64)
    assert w % 64 == 0 and h % 64 == 0 and w > h
