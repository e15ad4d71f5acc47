"""The settings table and the error classes: a bad environment value is the
host's ConfigError, naming the variable; each error's exit code and data come
from its class."""

from __future__ import annotations

import pytest

from shared.errors import (
    ConfigError,
    DaydreamError,
    GenerationFailed,
    InvalidRequest,
    JobNotFound,
    NoWorkerAlive,
    PromptTooLong,
    QueueFull,
    QueueUnavailable,
    UserError,
)
from shared.settings import Settings


def test_every_variable_is_read_through_its_parser() -> None:
    env = {
        "REDIS_URL": "redis://r:6379/1",
        "DISCORD_GUILD_ID": "123",
        "DAYDREAM_ADMIN_IDS": "1, 2,3",
        "CLICKS_BY_REQUESTER_ONLY": "yes",
        "MAX_QUEUED_PER_USER": "7",
        "PROGRESS_INTERVAL_S": "1.5",
        "VARY_SUBTLE": "0.3",
        "DISCORD_API_BASE": "http://127.0.0.1:9/api/v10/",
        "DISCORD_GATEWAY_URL": "",  # empty: the default, as docker compose's `.env` writes it
    }
    s = Settings.from_env(env)
    assert (s.redis_url, s.discord_guild_id, s.admin_user_ids) == ("redis://r:6379/1", 123, frozenset({1, 2, 3}))
    assert (s.clicks_by_requester_only, s.max_queued_per_user, s.progress_interval_s) == (True, 7, 1.5)
    assert s.vary_subtle == 0.3 and s.discord_api_base == "http://127.0.0.1:9/api/v10"
    assert s.discord_gateway_url is None
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MAX_QUEUED_PER_USER", "five", "a whole number"),
        ("MAX_QUEUED_PER_USER", "0", "a number above 0"),
        ("VARY_STRONG", "1.5", "a strength between 0 and 1 (e.g. 0.4)"),
        ("DISCORD_GUILD_ID", "my-server", "a Discord id (digits)"),
        ("DAYDREAM_ADMIN_IDS", "alice", "Discord user ids separated by commas"),
        ("CLICKS_BY_REQUESTER_ONLY", "maybe", "true or false"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({name: value})
    assert err.value.variable == name
    assert str(err.value) == f"{name} must be {expected}, got {value!r}."
    assert not isinstance(err.value, UserError)  # the host's to fix, not a Discord user's
    assert err.value.exit_code == 2


def test_the_token_is_never_repeated_in_an_error_or_a_repr() -> None:
    s = Settings.from_env({"DISCORD_TOKEN": "secret-token-value"})
    assert "secret-token-value" not in repr(s)


@pytest.mark.parametrize(
    ("error", "code", "data"),
    [
        (InvalidRequest("bad"), 2, {}),
        (JobNotFound("a" * 32), 2, {"job_id": "a" * 32}),
        (QueueFull(5, 5), 2, {"active": 5, "limit": 5}),
        (PromptTooLong(40, 32, "embedded"), 2, {"tokens": 40, "limit": 32, "model": "embedded", "part": "prompt"}),
        (NoWorkerAlive("flux", ["embedded"]), 3, {"model": "flux", "served": ["embedded"]}),
        (QueueUnavailable(), 4, {}),
        (GenerationFailed("boom"), 1, {}),
    ],
)
def test_exit_code_and_data_come_from_the_class(error: DaydreamError, code: int, data: dict) -> None:
    assert error.exit_code == code
    assert error.to_dict() == {"error": type(error).__name__, "message": str(error), **data}
