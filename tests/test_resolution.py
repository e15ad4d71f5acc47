"""The resolution step (shared/resolution.py) against the real store: the user's
settings, suffix and option macros, the channel's defaults and limits, and
`daydream imagine --dry-run` printing what /imagine would queue."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from shared import keys
from shared.errors import InvalidPrompt, InvalidRequest, Unsupported
from shared.flags import PromptLimits
from shared.models import check_servable
from shared.preferences import ChannelDefaults, UserPrefs
from shared.resolution import compose, describe, resolve, resolve_in
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import EMBEDDED_SPEC, announce_worker
from tests.support.workers import ROOT, worker_env


def daydream(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daydream", *args],
        cwd=ROOT,
        env=worker_env(redis_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


NO_PREFS, NO_DEFAULTS = UserPrefs(), ChannelDefaults()


def plain(text: str, prefs: UserPrefs = NO_PREFS, channel: ChannelDefaults = NO_DEFAULTS, **kw):
    return resolve(
        text,
        user_id=7,
        prefs=prefs,
        channel=channel,
        default_model="embedded",
        lane_of=lambda lane: lane or "fast",
        spec_of=lambda name: EMBEDDED_SPEC if name == "embedded" else None,
        **kw,
    )


def test_the_prompt_wins_then_the_suffix_then_settings_then_the_channel():
    prefs = UserPrefs(stylize=250, quality=2.0, suffix="in watercolour --ar 3:2 --c 10")
    channel = ChannelDefaults(defaults="--ar 1:2 --s 50 --weird 100")
    assert compose("a cat --c 40", prefs, channel) == (
        "a cat in watercolour --c 40 --ar 3:2 --stylize 250 --quality 2 --weird 100"
    )
    [job] = plain("a cat --c 40", prefs, channel).jobs
    assert (job.prompt, job.params.aspect, job.params.chaos, job.params.stylize) == (
        "a cat in watercolour",
        "3:2",
        40,
        250,
    )
    assert (job.params.quality, job.params.weird) == (2.0, 100)


def test_raw_drops_the_suffix_and_every_stylize_default():
    prefs = UserPrefs(stylize=250, suffix="in watercolour --ar 3:2")
    channel = ChannelDefaults(defaults="--s 50")
    [job] = plain("a cat --raw", prefs, channel).jobs
    assert (job.prompt, job.params.aspect, job.params.stylize, job.params.raw) == ("a cat", "1:1", None, True)
    [job] = plain("a cat", UserPrefs(raw=True, suffix="x"), channel).jobs
    assert job.prompt == "a cat" and job.params.raw and job.params.stylize is None


def test_option_macros_expand_where_they_are_written():
    prefs = UserPrefs(options={"poster": "--ar 2:3 --s 250"})
    [job] = plain("a cat --poster", prefs).jobs
    assert (job.params.aspect, job.params.stylize) == ("2:3", 250)
    [job] = plain("a cat \u2014Poster --c 10", prefs).jobs  # any case, an em dash
    assert (job.params.aspect, job.params.chaos) == ("2:3", 10)
    with pytest.raises(InvalidPrompt, match="given twice"):  # the macro's flags are the prompt's own
        plain("a cat --poster --s 10", prefs)


def test_permutations_and_repeat_make_that_many_jobs_with_their_own_seeds():
    res = plain("a {red, blue} bird --seed 10 --r 2")
    assert [j.prompt for j in res.jobs] == ["a red bird", "a red bird", "a blue bird", "a blue bird"]
    assert [j.seeds for j in res.jobs[:2]] == [[10, 11, 12, 13], [14, 15, 16, 17]]
    assert not res.needs_confirmation  # 4 jobs: at the threshold, not above it
    assert plain("{a, b, c} {x, y}").needs_confirmation
    with pytest.raises(InvalidPrompt, match="makes 18 jobs"):
        plain("{a, b, c} {x, y, z} --r 2")


def test_quality_beyond_the_step_cap_is_refused_and_says_so():
    narrow = ChannelDefaults(limits=PromptLimits(max_steps=50))
    with pytest.raises(InvalidPrompt, match=r"asks `embedded` for 80 steps; this server allows 50 \(an admin limit\)"):
        plain("a cat --q 4", channel=narrow)
    [job] = plain("a cat --q 2", channel=narrow).jobs
    assert describe(job, EMBEDDED_SPEC)["steps"] == 40


def test_describe_is_what_the_engine_receives():
    [job] = plain("hot dog::1.5 food::-0.5 --ar 16:9 --s 400 --no text --seed 3 --stop 30 --tile --relax").jobs
    line = describe(job, EMBEDDED_SPEC)
    assert line["prompts"] == [
        {"text": "hot dog", "weight": 1.5},
        {"text": "food", "weight": -0.5},
        {"text": "text", "weight": -0.5},
    ]
    assert (line["width"], line["height"]) == (80, 48)  # 16:9 at ~64² pixels, multiples of 16
    assert line["negative_prompt"] == "food, text"
    assert (line["steps"], line["guidance"], line["seeds"]) == (20, 6.0, [3, 4, 5, 6])
    assert (line["stop"], line["tile"], line["lane"], line["stylize"]) == (30, True, "relax", 400)


def test_settings_are_checked_by_the_parser_when_set(redis_url):
    store = JobStore(Settings(redis_url=redis_url))
    prefs = store.preferences
    prefs.set(7, "stylize", "300")
    prefs.set(7, "remix", "on")
    prefs.set_suffix(7, "at dusk --ar 3:2")
    prefs.set_option(7, "poster", "--ar 2:3 --s 250")
    got = prefs.user(7)
    assert (got.stylize, got.remix, got.suffix, got.options) == (
        300,
        True,
        "at dusk --ar 3:2",
        {"poster": "--ar 2:3 --s 250"},
    )
    with pytest.raises(InvalidPrompt, match="Invalid parameter `--stylize 5000`"):
        prefs.set(7, "stylize", "5000")
    with pytest.raises(InvalidPrompt, match="Did you mean `--seed`"):
        prefs.set_option(7, "bad", "--sede 3")
    with pytest.raises(InvalidRequest, match="already a parameter"):
        prefs.set_option(7, "seed", "--ar 1:1")
    prefs.set_channel(99, defaults="--s 50", limits={"max_repeat": "8", "max_aspect": "2:1"})
    channel = prefs.channel(99)
    assert channel.defaults == "--s 50" and channel.limits.max_repeat == 8
    jobs = resolve_in(store, "a cat --poster --r 6", user_id=7, channel_id=99, default_model="embedded").jobs
    assert len(jobs) == 6 and jobs[0].prompt == "a cat at dusk" and jobs[0].params.aspect == "2:3"
    with pytest.raises(InvalidPrompt, match="from 1:4 to 2:1"):
        resolve_in(store, "a cat --ar 3:1", user_id=7, channel_id=99, default_model="embedded")


def test_dry_run_prints_one_json_line_per_job_and_queues_nothing(redis_url):
    store = JobStore(Settings(redis_url=redis_url))
    announce_worker(store)
    store.preferences.set_suffix(5, "--s 200")
    r = daydream(redis_url, "imagine", "--dry-run", "a {red, blue} star --ar 3:2 --seed 1", "--user", "5")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(d["prompt"], d["width"], d["height"], d["stylize"]) for d in lines] == [
        ("a red star", 80, 48, 200),
        ("a blue star", 80, 48, 200),
    ]
    for field in ("prompts", "negative_prompt", "steps", "guidance", "seeds", "chaos", "stop", "tile", "weird"):
        assert field in lines[0]
    assert store.recent(1) == []  # nothing queued
    r = daydream(redis_url, "imagine", "--dry-run", "a cat --ar 16/9")
    assert r.returncode == 2
    assert json.loads(r.stdout)["message"].startswith("Invalid parameter `--ar 16/9`")
    assert "use two whole numbers W:H, like --ar 16:9" in r.stderr


def test_a_flag_the_model_cannot_honour_is_refused_at_submit():
    # A model whose engine declares flags it cannot honour (every shipped engine honours them all).
    limited = dataclasses.replace(EMBEDDED_SPEC, name="limited", unsupported=("chaos", "stop", "weights"))
    [job] = plain("a cat --c 20").jobs
    with pytest.raises(Unsupported, match="cannot do `--chaos`, so it would change nothing"):
        check_servable(job, limited, None)
    [job] = plain("a cat::2 a hat").jobs
    with pytest.raises(Unsupported, match=r"weighted prompt parts \(`text::2`\)"):
        check_servable(job, limited, None)
    [job] = plain("a cat --stop 100 --tile").jobs  # --stop 100 is the full run: nothing to refuse
    check_servable(job, limited, None)


def test_dry_run_without_a_running_worker_sizes_jobs_from_the_last_announced_or_built_in_spec(redis_url):
    store = JobStore(Settings(redis_url=redis_url))
    # No worker ever: the built-in model's spec is known without one (the engine's own).
    from worker.engines.embedded import SPEC

    r = daydream(redis_url, "imagine", "--dry-run", "a red star --ar 3:2")
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout)
    assert (line["width"], line["height"]) == (80, 48) and line["steps"] == SPEC.default_steps
    assert line["guidance"] is not None and "built-in model's spec" in r.stderr
    # A checkpoint's workers announced a spec, then all stopped (their heartbeats and live spec expired).
    big = dataclasses.replace(EMBEDDED_SPEC, name="sdxl", base_size=1024, size_multiple=64, default_steps=30)
    announce_worker(store, "w-sdxl", spec=big)
    store.redis.delete(keys.model_spec("sdxl"), keys.worker_heartbeat("w-sdxl"))
    assert store.dispatch.spec("sdxl") is None
    r = daydream(redis_url, "imagine", "--dry-run", "a red star --ar 1:1 --model sdxl")
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout)
    assert (line["width"], line["height"], line["steps"]) == (1024, 1024, 30)
    assert "last announced spec" in r.stderr
    # A model nobody ever announced: null, and stderr says why.
    r = daydream(redis_url, "imagine", "--dry-run", "a red star --model flux")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["width"] is None and "has announced it" in r.stderr
