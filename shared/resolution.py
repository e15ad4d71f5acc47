"""From what a user typed to the jobs it queues, in one place: /imagine
(bot/imagine.py), `daydream imagine` and its `--dry-run` (daydream/submit.py)
all resolve here, so a dry run shows exactly what /imagine enqueues.

    the prompt  +  the user's option macros, suffix and /settings
                +  the channel's defaults and limits
      → the composed text → one parsed prompt per {…} combination
      → `--repeat` jobs of each, their model, lane, seeds and steps checked

A flag typed in the prompt wins over the suffix's, which wins over the user's
settings, which win over the channel's defaults. `--raw` drops the suffix and
every stylize default."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.builders import imagine_job
from shared.errors import InvalidPrompt, QueueUnavailable
from shared.flags import BY_NAME, LANE_FLAGS, PromptLimits
from shared.job import JobRecord, ReplyTarget
from shared.models import ModelSpec
from shared.params import MAX_SEED, ParsedPrompt, PromptPart, make_seeds
from shared.preferences import ChannelDefaults, UserPrefs
from shared.prompt_text import EM_DASH_FLAG, canonical, em_dash_before, parse
from shared.sampling import STYLIZE_DEFAULT, guidance_for, size_for, steps_for
from shared.store import JobStore

GRID = 4
FLAG_SEGMENT = re.compile(r"(?:^|(?<=\s))--(?=\S)")


@dataclass(frozen=True)
class Resolution:
    text: str  # the composed text that was parsed
    jobs: list[JobRecord]
    limits: PromptLimits

    @property
    def needs_confirmation(self) -> bool:
        return len(self.jobs) > self.limits.confirm_above


def _segments(text: str) -> tuple[str, list[str]]:
    """`a cat --ar 3:2 --no x, y` → ("a cat", ["--ar 3:2", "--no x, y"])."""
    starts = [m.start() for m in FLAG_SEGMENT.finditer(text)]
    if not starts:
        return text.strip(), []
    head = text[: starts[0]].strip()
    ends = [*starts[1:], len(text)]
    return head, [text[a:b].strip() for a, b in zip(starts, ends, strict=True)]


def _group(segment: str) -> str:
    """Which setting a flag segment sets: its flag's name (the three lanes are one)."""
    name = segment[2:].split(maxsplit=1)[0].lower() if len(segment) > 2 else ""
    flag = BY_NAME.get(name)
    if flag is None:
        return name
    return "lane" if flag.name in LANE_FLAGS else flag.name


def expand_options(text: str, options: dict[str, str]) -> str:
    """Replace each `--name` of the user's option macros by the flags it stands for."""
    if not options:
        return text
    text = em_dash_before(list(options)).sub("--", text)
    pattern = re.compile(
        r"(?:^|(?<=\s))--(" + "|".join(map(re.escape, sorted(options, key=len, reverse=True))) + r")(?=\s|$)",
        re.IGNORECASE,
    )
    return pattern.sub(lambda m: options[m.group(1).lower()], text)


def compose(text: str, prefs: UserPrefs, channel: ChannelDefaults) -> str:
    """The text to parse: the prompt, its macros expanded, with the suffix's, the
    settings' and the channel's flags wherever the prompt does not set them."""
    text = expand_options(EM_DASH_FLAG.sub("--", text or ""), prefs.options)
    head, own = _segments(text)
    raw = any(_group(s) == "raw" for s in own) or prefs.raw
    layers: list[list[str]] = []
    if not raw and prefs.suffix:
        suffix_head, suffix_flags = _segments(expand_options(prefs.suffix, prefs.options))
        head = f"{head} {suffix_head}".strip() if suffix_head else head
        layers.append(suffix_flags)
    layers.append(prefs.flags())
    layers.append(_segments(" " + channel.defaults)[1] if channel.defaults else [])
    taken = {_group(s) for s in own}
    merged = list(own)
    for layer in layers:
        added = set()
        for segment in layer:
            group = _group(segment)
            if group in taken or (raw and group == "stylize"):
                continue
            merged.append(segment)
            added.add(group)
        taken |= added
    return " ".join([head, *merged]).strip()


def _seeds(seed: int | None, k: int) -> list[int] | None:
    """Job k of a `--repeat` with `--seed`: the next four seeds (the first job's are seed…seed+3)."""
    if seed is None:
        return None
    return [(seed + GRID * k + i) % (MAX_SEED + 1) for i in range(GRID)]


def resolve(
    text: str,
    *,
    user_id: int | None,
    prefs: UserPrefs,
    channel: ChannelDefaults,
    default_model: str,
    lane_of: Callable[[str | None], str],
    spec_of: Callable[[str], ModelSpec | None],
    reply: ReplyTarget | None = None,
) -> Resolution:
    """Every job `text` makes, or the one InvalidPrompt (or the lane's refusal)."""
    limits = channel.limits
    composed = compose(text, prefs, channel)
    parsed_all = parse(composed, limits)
    total = sum(p.repeat for p in parsed_all)
    if total > limits.max_jobs:
        raise InvalidPrompt(
            f"This prompt makes {total} jobs ({len(parsed_all)} combination(s) × --repeat); "
            f"this server allows {limits.max_jobs} per command (an admin limit). Use fewer options or a lower --repeat.",
            text=text,
            accepted=f"at most {limits.max_jobs} jobs",
            example="a {red, blue} bird --repeat 2",
        )
    jobs = []
    for parsed in parsed_all:
        model = parsed.model or default_model
        spec = spec_of(model)
        if spec is not None and parsed.params.steps is None and parsed.params.quality is not None:
            steps = steps_for(parsed.params, spec)
            if steps > limits.max_steps:
                raise InvalidPrompt(
                    f"`--quality {parsed.params.quality:g}` asks `{model}` for {steps} steps; this server allows "
                    f"{limits.max_steps} (an admin limit). Use a lower --quality, like `--quality 1`.",
                    text=f"--quality {parsed.params.quality:g}",
                    accepted=f"at most {limits.max_steps} steps",
                    example="--quality 1",
                    flag="quality",
                )
        lane = lane_of(parsed.lane)
        for k in range(parsed.repeat):
            seeds = _seeds(parsed.params.seed, k) or make_seeds(parsed.params)
            jobs.append(imagine_job(parsed, user_id=user_id, model=model, reply=reply, lane=lane, seeds=seeds))
    return Resolution(text=composed, jobs=jobs, limits=limits)


def describe(job: JobRecord, spec: ModelSpec | None) -> dict[str, Any]:
    """What the engine will receive for `job` (one `--dry-run` line). Size, steps and
    guidance need the model's spec (announced by its workers): None without one."""
    p = job.params
    width = height = steps = guidance = None
    if spec is not None:
        width, height = size_for(p, spec)
        steps = steps_for(p, spec)
        guidance = guidance_for(p, spec)
    return {
        "prompt": job.prompt,
        "prompts": [{"text": part.text, "weight": part.weight} for part in job.weighted_prompts()],
        "negative_prompt": job.negative_prompt,
        "width": width,
        "height": height,
        "aspect": p.aspect,
        "steps": steps,
        "guidance": guidance,
        "seeds": list(job.seeds),
        "chaos": p.chaos or 0,
        "stylize": STYLIZE_DEFAULT if p.stylize is None else p.stylize,
        "quality": 1.0 if p.quality is None else p.quality,
        "stop": 100 if p.stop is None else p.stop,
        "tile": p.tile,
        "weird": p.weird or 0,
        "raw": p.raw,
        "model": job.model,
        "lane": job.lane,
        "loras": [{"name": r.name, "weight": r.weight} for r in job.loras],
        "canonical": canonical_of(job),
    }


def canonical_of(job: JobRecord) -> str:
    """The job's prompt written as one text (for `/show` and the dry run)."""
    texts = job.weighted_prompts()
    avoid = tuple(p.text for p in texts if p.weight == -0.5)
    parts = tuple(PromptPart(p.text, p.weight) for p in texts if p.weight != -0.5)
    parsed = ParsedPrompt(job.prompt, job.negative_prompt, job.params, lane=None, prompts=parts, avoid=avoid)
    return canonical(parsed)


def resolve_in(
    store: JobStore,
    text: str,
    *,
    user_id: int | None,
    role_ids: frozenset[int] = frozenset(),
    channel_id: int | None = None,
    default_model: str,
    reply: ReplyTarget | None = None,
) -> Resolution:
    """`resolve` with the user's settings and the channel's defaults read from the
    store once, the lane from the queue's policy and the specs the workers announce."""
    try:
        prefs, channel = store.preferences.user(user_id), store.preferences.channel(channel_id)
    except QueueUnavailable as exc:
        raise QueueUnavailable(QueueUnavailable.NOT_QUEUED) from exc
    return resolve(
        text,
        user_id=user_id,
        prefs=prefs,
        channel=channel,
        default_model=default_model,
        lane_of=lambda requested: store.policy.resolve_lane(user_id, role_ids, requested),
        spec_of=store.dispatch.spec,
        reply=reply,
    )
