"""The moderation twins on the command line: `daydream admin filter|modlog|ban|
unban|channel|threshold` write the policy the bot reads, and `daydream imagine
--user --guild --channel` is screened by it. Real subprocesses against the
suite's redis-server (a heartbeat stands in for a worker)."""

from __future__ import annotations

import subprocess
import sys

from shared.job import Venue
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import announce_worker
from tests.support.workers import ROOT, worker_env

GUILD, CHANNEL = "111", "333"


def daydream(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daydream", *args], cwd=ROOT, env=worker_env(redis_url),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_admin_twins_write_the_policy_the_bot_reads(redis_url: str) -> None:
    store = JobStore(Settings(redis_url=redis_url))
    assert daydream(redis_url, "admin", "filter", "add", "dragon*", "--guild", GUILD).returncode == 0
    listed = daydream(redis_url, "admin", "filter", "list", "--guild", GUILD)
    assert "`dragon*`" in listed.stdout and "`nude`" in listed.stdout
    assert daydream(redis_url, "admin", "modlog", "--guild", GUILD, "--channel", "555").returncode == 0
    assert daydream(redis_url, "admin", "ban", "--guild", GUILD, "--user", "7", "--reason", "spam").returncode == 0
    assert daydream(redis_url, "admin", "channel", "--guild", GUILD, "--channel", CHANNEL,
                    "--images", "refuse", "--spoiler", "on").returncode == 0  # fmt: skip
    assert daydream(redis_url, "admin", "threshold", "0.4", "--guild", GUILD).returncode == 0
    moderation = store.moderation
    assert moderation.rules(int(GUILD))["server"] == ["dragon*"]
    assert moderation.modlog(int(GUILD)) == 555
    assert moderation.ban_of(int(GUILD), 7).reason == "spam"
    policy = moderation.channel_policy(Venue(guild_id=int(GUILD), channel_id=int(CHANNEL)))
    assert (policy.images, policy.spoiler) == ("refuse", True)
    assert moderation.threshold(int(GUILD)) == 0.4
    assert daydream(redis_url, "admin", "unban", "--guild", GUILD, "--user", "7").returncode == 0
    assert moderation.ban_of(int(GUILD), 7) is None
    bad = daydream(redis_url, "admin", "filter", "remove", "unicorn", "--guild", GUILD)
    assert bad.returncode == 2 and "not one of this server's filter rules" in bad.stderr


def test_imagine_in_a_server_is_screened_like_the_bots(redis_url: str) -> None:
    store = JobStore(Settings(redis_url=redis_url))
    announce_worker(store)
    where = ("--user", "7", "--guild", GUILD, "--channel", CHANNEL, "--detach")
    r = daydream(redis_url, "imagine", "a n u d e statue", *where)
    assert r.returncode == 2 and "`nude`" in r.stderr and "word filter" in r.stderr
    assert store.recent(1) == []
    store.moderation.ban(int(GUILD), 7, "spam")
    r = daydream(redis_url, "imagine", "a red circle", *where)
    assert r.returncode == 2 and "banned" in r.stderr and "spam" in r.stderr
    ok = daydream(redis_url, "imagine", "a red circle", "--user", "8", "--guild", GUILD, "--channel", CHANNEL,
                  "--nsfw", "--detach")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    [job] = store.recent(1)
    assert job.venue == Venue(guild_id=int(GUILD), channel_id=int(CHANNEL), nsfw=True)
    assert not job.reply.is_discord  # judged there, posted nowhere


def test_a_ban_from_the_command_line_reaches_the_mod_log(redis_url: str, discord) -> None:
    store = JobStore(Settings(redis_url=redis_url))
    # No mod log set: said, and nothing posted.
    r = daydream(redis_url, "admin", "ban", "--guild", GUILD, "--user", "8", "--reason", "spam")
    assert r.returncode == 0 and "none is set" in r.stdout and discord.requests == []
    store.moderation.set_modlog(int(GUILD), 555)
    # A mod log but no token: said, and nothing posted.
    r = daydream(redis_url, "admin", "ban", "--guild", GUILD, "--user", "8", "--reason", "spam")
    assert r.returncode == 0 and "set DISCORD_TOKEN" in r.stdout and discord.requests == []
    env = {**worker_env(redis_url), "DISCORD_TOKEN": "cli-token", "DISCORD_API_BASE": discord.base}
    for args in (("ban", "--reason", "spam"), ("unban",)):
        r = subprocess.run(
            [sys.executable, "-m", "daydream", "admin", args[0], "--guild", GUILD, "--user", "8", *args[1:]],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert r.returncode == 0 and "logged in the mod log (channel 555)" in r.stdout, r.stdout + r.stderr
        assert "cli-token" not in r.stdout + r.stderr
    ban, unban = discord.requests
    assert (ban.method, ban.path) == ("POST", "/channels/555/messages")
    assert ban.headers["Authorization"] == "Bot cli-token"
    assert ban.payload["content"] == "**Ban**: <@8> by the host — spam"
    assert unban.payload["content"] == "**Unban**: <@8> by the host."
    assert store.moderation.ban_of(int(GUILD), 8) is None
