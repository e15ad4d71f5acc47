"""Midjourney's prompt language (shared/prompt_text.py, shared/flags.py): a table
of valid prompts and the records they parse to, one of invalid prompts and the
message each gets, and properties over any text (hypothesis)."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import InvalidPrompt
from shared.flags import FLAGS, PromptLimits, help_text, option_description, readme_table, suggest
from shared.params import Params, ParsedPrompt, PromptPart
from shared.prompt_text import canonical, expand, parse, parse_one

VALID = [
    ("a cat", dict(prompt="a cat", params=Params())),
    ("a cat --ar 7:5", dict(params=Params(aspect="7:5"))),
    ("a cat --ASPECT 21:9 --Seed 3", dict(params=Params(aspect="21:9", seed=3))),
    ("a cat \u2014ar 2:3 \u2014c 40", dict(params=Params(aspect="2:3", chaos=40))),
    ("a cat --s 250 --q .5 --stop 30", dict(params=Params(stylize=250, quality=0.5, stop=30))),
    ("a cat --w 1200 --tile --raw", dict(params=Params(weird=1200, tile=True, raw=True))),
    ("a cat --steps 12 --cfg 5.5", dict(params=Params(steps=12, guidance=5.5))),
    ("a cat --relax", dict(lane="relax")),
    ("a cat --m SDXL-Turbo", dict(model="sdxl-turbo")),
    ("a cat --v 6", dict(model="6")),  # checked against the served models at submit
    ("a cat --r 3", dict(repeat=3)),
    (
        "a cat --no text, people --no dogs",
        dict(avoid=("text", "people", "dogs"), negative_prompt="text, people, dogs"),
    ),
    (
        "hot dog::1.5 food::-0.5 bun",
        dict(
            prompt="hot dog, bun",
            negative_prompt="food",
            prompts=(PromptPart("hot dog", 1.5), PromptPart("food", -0.5), PromptPart("bun", 1.0)),
        ),
    ),
    ("space::2 ship", dict(prompts=(PromptPart("space", 2.0), PromptPart("ship", 1.0)))),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t for t, _ in VALID])
def test_valid_prompts_parse_to_their_records(text, expected):
    parsed = parse_one(text)
    for name, value in expected.items():
        assert getattr(parsed, name) == value, name


INVALID = [
    ("a cat --ar 16/9", "Invalid parameter `--ar 16/9`: use two whole numbers W:H, like --ar 16:9."),
    ("a cat --ar 0:3", "Invalid parameter `--ar 0:3`: use two whole numbers W:H, like --ar 16:9."),
    (
        "a cat --ar 5:1",
        "Invalid parameter `--ar 5:1`: this server allows aspect ratios from 1:4 to 4:1 (an admin limit)",
    ),
    ("a cat --sede 4", "Unknown parameter `--sede`. Did you mean `--seed`?"),
    ("a cat --stylise 100", "Did you mean `--stylize`?"),
    ("a cat --chaos 101", "Invalid parameter `--chaos 101`: use a whole number from 0 to 100, like --chaos 50."),
    ("a cat --c x", "Invalid parameter `--c x`: use a whole number from 0 to 100"),
    ("a cat --q 3", "Invalid parameter `--q 3`: use one of .25 .5 1 2 4, like --quality 2."),
    ("a cat --stop 5", "Invalid parameter `--stop 5`: use a whole number from 10 to 100"),
    ("a cat --weird 4000", "Invalid parameter `--weird 4000`: use a whole number from 0 to 3000"),
    ("a cat --steps 101", "this server allows --steps up to 100 (an admin limit)"),
    ("a cat --repeat 1", "Invalid parameter `--repeat 1`"),
    ("a cat --repeat 5", "this server allows --repeat up to 4 (an admin limit)"),
    ("a cat --tile yes", "--tile takes no value"),
    ("a cat --fast --relax", "--fast was given too; pick one lane"),
    ("a cat --seed 1 --seed 2", "it is given twice"),
    ("a cat --ar 3:2 dog", "give one value"),
    ("a cat --model ??", "Invalid parameter `--model ??`"),
    ("a::-2 b::1", "add up to -1; their sum must be positive"),
    ("food::-1", "no part with a positive weight"),
    ("::2 a cat", "has no text before it"),
    ("a {red, blue bird", "never closed"),
    ("a red} bird", "`}` with no `{`"),
    ("--ar 3:2", "no text"),
    ("", "prompt is empty"),
    ('a cat --no "text', "close every quote"),
]


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[t or "(empty)" for t, _ in INVALID])
def test_invalid_prompts_get_a_message_that_teaches(text, message):
    with pytest.raises(InvalidPrompt) as err:
        parse(text)
    assert message in err.value.message
    assert err.value.accepted  # the accepted form is always named


def test_an_invalid_flag_carries_what_was_written_and_an_example():
    with pytest.raises(InvalidPrompt) as err:
        parse("a cat --ar 16/9")
    assert err.value.to_dict() | {"message": ""} == {
        "error": "InvalidPrompt",
        "message": "",
        "text": "--ar 16/9",
        "accepted": "two whole numbers W:H",
        "example": "--ar 16:9",
        "flag": "ar",
    }


def test_admin_limits_apply_and_are_named():
    narrow = PromptLimits(max_steps=30, max_repeat=2)
    assert parse_one("a --steps 30", narrow).params.steps == 30
    with pytest.raises(InvalidPrompt, match="allows --steps up to 30"):
        parse_one("a --steps 31", narrow)
    wide = PromptLimits(max_repeat=8)
    assert parse_one("a --repeat 8", wide).repeat == 8


def test_permutations_make_one_prompt_per_combination_nested_too():
    assert [p.prompt for p in parse("a {red, blue} bird")] == ["a red bird", "a blue bird"]
    assert expand("{a, {b, c}} {1, 2}") == ["a 1", "a 2", "b 1", "b 2", "c 1", "c 2"]
    assert [p.params.aspect for p in parse("a cat --ar {1:1, 2:3}")] == ["1:1", "2:3"]
    with pytest.raises(InvalidPrompt, match="more than 16 prompts"):
        parse("{a,b,c,d,e} {a,b,c,d}")


def test_an_em_dash_in_text_stays_text():
    assert parse_one("a cat \u2014 sleeping \u2014s 50").prompt == "a cat \u2014 sleeping"
    assert parse_one("the \u2014arrow of time").prompt == "the \u2014arrow of time"


def test_help_description_and_readme_come_from_the_table():
    text = help_text()
    for flag in FLAGS:
        assert f"--{flag.name}" in text and f"`--{flag.name}`" in readme_table()
    assert len(option_description()) <= 100
    assert suggest("relx") == "relax"


# -- properties ---------------------------------------------------------------------------
# Text a user could type: letters, digits, the language's own punctuation and em dashes.
ALPHABET = string.ascii_letters + string.digits + " :-.,{}'\"\u2014<>" + "é中"


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=ALPHABET, max_size=80))
def test_any_text_parses_or_gets_the_one_prompt_error(text):
    try:
        records = parse(text)
    except InvalidPrompt as exc:
        assert exc.message
        return
    assert records and all(isinstance(r, ParsedPrompt) for r in records)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=ALPHABET, max_size=80))
def test_a_record_written_back_as_text_parses_to_itself(text):
    try:
        records = parse(text)
    except InvalidPrompt:
        return
    for record in records:
        assert parse_one(canonical(record)) == record


words = st.text(alphabet=string.ascii_lowercase + " ", min_size=1, max_size=12).filter(str.strip)


@st.composite
def records(draw):
    # The first part weighs 2, the others at least -0.5: the weights' sum stays positive.
    first = (draw(words), 2.0)
    rest = draw(st.lists(st.tuples(words, st.sampled_from([1.0, 0.5, -0.5, 1.25])), max_size=2))
    parts = [first, *rest]
    params = Params(
        aspect=draw(st.sampled_from(["1:1", "3:2", "9:16", "7:5"])),
        seed=draw(st.none() | st.integers(0, 2**32 - 1)),
        chaos=draw(st.none() | st.integers(0, 100)),
        stylize=draw(st.none() | st.integers(0, 1000)),
        quality=draw(st.none() | st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0])),
        stop=draw(st.none() | st.integers(10, 100)),
        tile=draw(st.booleans()),
        weird=draw(st.none() | st.integers(0, 3000)),
        raw=draw(st.booleans()),
        steps=draw(st.none() | st.integers(1, 100)),
        guidance=draw(st.none() | st.sampled_from([0.0, 1.5, 7.0])),
    )
    text = " ".join(f"{' '.join(t.split())}::{w:g}" for t, w in parts)
    flags = draw(st.sampled_from(["", " --relax", " --turbo --r 3", " --no fog, rain --m sdxl"]))
    return parse_one(text + " " + canonical(ParsedPrompt("x", "", params)).removeprefix("x") + flags)


@settings(max_examples=200)
@given(records())
def test_records_round_trip_through_canonical_text(record):
    assert parse_one(canonical(record)) == record


def test_the_readme_flag_table_is_the_generated_one():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    between = readme.split("<!-- flags:start -->\n", 1)[1].split("\n<!-- flags:end -->", 1)[0]
    assert between == readme_table()
