"""The word filter: a table of prompts, rules and verdicts, evasions included
(the rule is what is tested, not the exact string)."""

from __future__ import annotations

import pytest

from shared.wordfilter import DEFAULT_RULES, WordFilter, check_rule, letter_runs, read_rules_file, words

RULES = ("nude", "porn*", "*gore*", "blood bath", "s3x")

# prompt, the rule it breaks (None: allowed)
TABLE = [
    ("a nude figure", "nude"),
    ("A NUDE FIGURE", "nude"),  # case
    ("a nüde figure", "nude"),  # accents
    ("a ｎｕｄｅ figure", "nude"),  # fullwidth forms (NFKD)
    ("n u d e beach", "nude"),  # spaced letters
    ("a n u d e beach", "nude"),  # spaced, after an article
    ("n.u.d.e beach", "nude"),  # dotted
    ("n-u-d-e_beach", "nude"),  # dashes and underscores
    ("NUD3 beach", "nude"),  # leetspeak inside a word
    ("a p0rnstar", "porn*"),  # a pattern, with leet
    ("pornography", "porn*"),
    ("gorey scene", "*gore*"),
    ("a BLOOD-BATH", "blood bath"),  # a phrase across a separator
    ("blood   bath", "blood bath"),
    ("sex", "s3x"),  # the rule's own leet is read the same way
    # allowed: whole words only, no accidental matches
    ("a nudibranch in the reef", None),
    ("sussex countryside", None),
    ("a bloody bath", None),
    ("a 4k photo of a cat", None),
    ("the number 1337", None),
    ("gorgeous mountains", None),
]


@pytest.mark.parametrize(("prompt", "rule"), TABLE)
def test_a_prompt_is_judged_by_the_rules(prompt: str, rule: str | None) -> None:
    match = WordFilter(RULES).find(prompt)
    assert (match.rule if match else None) == rule


def test_the_match_names_the_word_found() -> None:
    match = WordFilter(RULES).find("a n.u.d.e beach")
    assert match is not None and match.word == "nude" and match.rule == "nude"


def test_the_negative_prompt_is_not_part_of_what_is_screened() -> None:
    # The filter sees the prompt the parser kept; `--no nudity` is a request to avoid it.
    from shared.params import parse_prompt

    parsed = parse_prompt("a beach at dusk --no nude people")
    assert WordFilter(RULES).find(parsed.prompt) is None
    assert WordFilter(RULES).find(parsed.negative_prompt) is not None


def test_numbers_stay_numbers_and_runs_join() -> None:
    assert words("3 cats, 1337 dogs, s3x") == ["3", "cats", "1337", "dogs", "sex"]
    assert letter_runs(["big", "n", "u", "d", "e", "x", "a", "cat"]) == ["nudexa"]
    assert letter_runs(["a", "cat"]) == []


def test_the_default_list_is_on_and_checked() -> None:
    assert WordFilter(DEFAULT_RULES).find("a naked man") is not None
    assert WordFilter(DEFAULT_RULES).find("a red circle on a blue background") is None


@pytest.mark.parametrize("bad", ["", "   ", "***", "x" * 61])
def test_a_bad_rule_says_how_to_write_one(bad: str) -> None:
    with pytest.raises(ValueError, match=r"rule|letters"):
        check_rule(bad)


def test_a_host_list_replaces_the_default(tmp_path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# the host's own\ndragon*\n\nblood bath  # a phrase\n", encoding="utf-8")
    assert read_rules_file(path) == ("dragon*", "blood bath")
