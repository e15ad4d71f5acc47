"""A server's moderation policy in the real Redis: filters per server on top of the
default list, the screen at submit, escalation with a fake clock, bans, cases."""

from __future__ import annotations

import pytest

from shared.errors import Banned, CoolingDown, InvalidRequest, PromptBlocked
from shared.job import Venue
from shared.moderation import Moderation
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import make_job

GUILD, OTHER_GUILD, CHANNEL = 111, 222, 333


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mod(settings: Settings) -> Moderation:
    store = JobStore(settings)
    store.moderation.clock = Clock()
    return store.moderation


def job_in(prompt: str, guild: int | None = GUILD, user: int | None = 42, nsfw: bool = False):
    return make_job(user=user, prompt=prompt, venue=Venue(guild_id=guild, channel_id=CHANNEL, nsfw=nsfw))


def test_a_blocked_prompt_names_the_word_and_the_rule_and_is_held(mod: Moderation) -> None:
    job = job_in("a n.u.d.e statue")
    with pytest.raises(PromptBlocked) as err:
        mod.screen(job)
    assert err.value.rule == "nude" and err.value.word == "nude" and err.value.job_id == job.id
    assert "`nude`" in err.value.message and "Appeal" in err.value.message
    case = mod.case(job.id)
    assert case is not None and case.state == "blocked" and case.job.prompt == "a n.u.d.e statue"


def test_filters_are_per_server_and_defaults_can_be_removed(mod: Moderation) -> None:
    mod.add_rule(GUILD, "dragon*")
    with pytest.raises(PromptBlocked):
        mod.screen(job_in("two dragons fighting"))
    mod.screen(job_in("two dragons fighting", guild=OTHER_GUILD))  # another server: allowed
    mod.remove_rule(GUILD, "naked")  # a default rule, dropped here only
    mod.screen(job_in("the naked truth"))
    with pytest.raises(PromptBlocked):
        mod.screen(job_in("the naked truth", guild=OTHER_GUILD))
    assert mod.rules(GUILD)["server"] == ["dragon*"] and "naked" in mod.rules(GUILD)["dropped"]
    with pytest.raises(InvalidRequest, match="not one of this server's"):
        mod.remove_rule(GUILD, "unicorn")


def test_nsfw_channels_skip_the_default_list_not_the_servers_own(mod: Moderation) -> None:
    mod.add_rule(GUILD, "clown")
    mod.screen(job_in("a nude figure study", nsfw=True))
    with pytest.raises(PromptBlocked):
        mod.screen(job_in("a sad clown", nsfw=True))


def test_repeated_blocks_escalate_the_cooldown_within_the_window(mod: Moderation) -> None:
    cooldowns = []
    for _ in range(5):
        with pytest.raises(PromptBlocked) as err:
            mod.screen(job_in("nude"))
        cooldowns.append(err.value.cooldown_s)
        if err.value.cooldown_s:
            with pytest.raises(CoolingDown):  # even a harmless prompt waits
                mod.screen(job_in("a cat"))
        mod.clock.now += err.value.cooldown_s + 1
    # The first block is a warning; then 1, 60 and 600 minutes (the last repeats).
    assert cooldowns == [0.0, 60.0, 3600.0, 36000.0, 36000.0]
    mod.screen(job_in("a cat"))  # and it ends


def test_the_window_forgets_old_blocks(mod: Moderation) -> None:
    clock = mod.clock
    assert mod.strike(GUILD, 7) == 0
    assert mod.strike(GUILD, 7) == 60.0
    clock.now += mod.settings.strike_window_s + 1
    assert mod.strike(GUILD, 7) == 0  # the earlier ones fell out of the window
    assert mod.cooldown_left(GUILD, 7) == 0


def test_a_cooldown_ends_by_the_clock(mod: Moderation) -> None:
    mod.strike(GUILD, 7)
    assert mod.strike(GUILD, 7) == 60.0
    with pytest.raises(CoolingDown) as err:
        mod.screen(job_in("a cat", user=7))
    assert err.value.retry_after_s == pytest.approx(60.0)
    mod.clock.now += 61
    mod.screen(job_in("a cat", user=7))


def test_a_banned_user_is_told_why_once_then_refused_briefly(mod: Moderation) -> None:
    mod.ban(GUILD, 42, "spam", by="mod")
    with pytest.raises(Banned) as first:
        mod.screen(job_in("a cat"))
    with pytest.raises(Banned) as second:
        mod.screen(job_in("a cat"))
    assert first.value.first and "spam" in first.value.message
    assert not second.value.first and "spam" not in second.value.message
    mod.screen(job_in("a cat", guild=OTHER_GUILD))  # banned in one server only
    assert mod.unban(GUILD, 42) is True
    mod.screen(job_in("a cat"))
    assert mod.unban(GUILD, 42) is False


def test_a_case_moves_once(mod: Moderation) -> None:
    job = job_in("nude")
    with pytest.raises(PromptBlocked):
        mod.screen(job)
    assert mod.move_case(job.id, ("blocked",), "appealed", modlog_message_id=5) is not None
    assert mod.move_case(job.id, ("blocked",), "appealed") is None
    allowed = mod.move_case(job.id, ("appealed",), "allowed")
    assert allowed is not None and allowed.modlog_message_id == 5
    assert mod.move_case(job.id, ("appealed",), "allowed") is None  # a second Allow does nothing


def test_channel_policies_and_thresholds(mod: Moderation) -> None:
    venue = Venue(guild_id=GUILD, channel_id=CHANNEL)
    assert mod.channel_policy(venue).images == "blur" and not mod.channel_policy(venue).spoiler
    mod.set_channel(GUILD, CHANNEL, spoiler=True)
    mod.set_channel(GUILD, CHANNEL, images="refuse")
    policy = mod.channel_policy(venue)
    assert policy.images == "refuse" and policy.spoiler
    with pytest.raises(InvalidRequest, match="allowed, blur, refuse"):
        mod.set_channel(GUILD, CHANNEL, images="hide")
    assert mod.threshold(GUILD) == mod.settings.nsfw_threshold
    mod.set_threshold(GUILD, 0.3)
    assert mod.threshold(GUILD) == 0.3 and mod.threshold(OTHER_GUILD) == mod.settings.nsfw_threshold
    assert mod.channel_policy(Venue(dm=True)).images == mod.settings.dm_image_policy
