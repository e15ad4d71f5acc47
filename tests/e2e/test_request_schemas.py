"""The check of recorded requests against Discord's OpenAPI description
(`request_schemas.py`): what Daydream sends passes, what Discord refuses is
named with its field, routes and parameters are matched as the description
writes them, and the small validator agrees with `jsonschema` where that is
installed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .request_schemas import RequestSchemas, UnsupportedSchema
from .standin import Json, Request

CHANNEL, MEMBER, APP = 1_300_000_000_000_000_003, 1_300_000_000_000_000_004, 1_300_000_000_000_000_001
TOKEN = "aW50ZXJhY3Rpb246" + "x" * 64
JOB = "8e496155cdcb4cf6b77a5122b67c6975"


@pytest.fixture(scope="module")
def schemas() -> RequestSchemas:
    return RequestSchemas.load()


def request(method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None, **fields: Any) -> Request:
    content_type = fields.pop("content_type", "application/json" if body is not None else "")
    return Request(method, path, 0.0, 200, query=query or {}, content_type=content_type, body=body, **fields)


def grid_post(**changes: Any) -> Json:
    """A result as the worker posts it in the channel once the token is gone (multipart, with a nonce)."""
    buttons = [{"type": 2, "style": 2, "custom_id": f"dd:u:{JOB}:{i}", "label": f"U{i}"} for i in range(1, 5)]
    reroll = {
        "type": 2,
        "style": 2,
        "custom_id": f"dd:r:{JOB}:0",
        "emoji": {"name": "\N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}"},
    }
    body = {
        "content": f"**a red circle** - <@{MEMBER}>",
        "components": [{"type": 1, "components": buttons}, {"type": 1, "components": [reroll]}],
        "attachments": [{"id": 0, "filename": "grid.png"}],
        "allowed_mentions": {"users": [MEMBER]},  # an integer id, as Daydream and discord.py send it
        "nonce": "3f9a0c1b2d4e5f60718293a4b",
        "enforce_nonce": True,
    }
    return {**body, **changes}


def string_ids(body: Json) -> Json:
    """The same body with its snowflakes as strings, as the description types them (for jsonschema)."""
    changed = dict(body)
    if isinstance(body.get("allowed_mentions"), dict) and "users" in body["allowed_mentions"]:
        changed["allowed_mentions"] = {
            **body["allowed_mentions"],
            "users": [str(u) for u in body["allowed_mentions"]["users"]],
        }
    if isinstance(body.get("attachments"), list):
        changed["attachments"] = [{**a, "id": str(a["id"])} for a in body["attachments"]]
    return changed


def test_requests_shaped_as_daydreams_pass(schemas: RequestSchemas) -> None:
    sent = [
        request("POST", f"/channels/{CHANNEL}/messages", grid_post(), content_type="multipart/form-data", files=(0,)),
        request(
            "PATCH",
            f"/webhooks/{APP}/{TOKEN}/messages/@original",
            {"content": "(37%)", "allowed_mentions": {"users": [MEMBER]}, "attachments": [{"id": 0}]},
        ),
        request(
            "POST", f"/interactions/1577247391692619804/{TOKEN}/callback", {"type": 5}, query={"with_response": "1"}
        ),
        request(
            "POST",
            f"/webhooks/{APP}/{TOKEN}",
            {"content": "no longer exists", "flags": 64, "allowed_mentions": {"parse": []}},
            query={"wait": "true", "with_components": "true"},
        ),
        request(
            "PUT",
            f"/applications/{APP}/guilds/1300000000000000002/commands",
            [{"name": "imagine", "description": "Draw", "type": 1}],
        ),
        request("POST", "/users/@me/channels", {"recipient_id": MEMBER}),
        request("GET", "/users/@me"),
        request("DELETE", f"/channels/{CHANNEL}/messages/1577247391692619805"),
    ]
    assert schemas.violations(sent) == []


def row(*buttons: Json) -> Json:
    return {"type": 1, "components": list(buttons)}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (grid_post(content=7), "body.content: 7 is not of type string or null"),
        (grid_post(nonce="x" * 26), "body.nonce: longer than 25 (26)"),
        (grid_post(attachments=[{"filename": "grid.png"}]), "body.attachments.0: 'id' is required"),
        (grid_post(allowed_mentions={"users": [-1]}), "body.allowed_mentions.users.0: -1 is not of type string"),
        (
            grid_post(allowed_mentions={"users": ["12ab"]}),
            'body.allowed_mentions.users.0: "12ab" does not match ^(0|[1-9][0-9]*)$',
        ),
        (grid_post(components=[row()]), "body.components.0.components: fewer than 1 items"),
        (
            grid_post(components=[row({"type": 2, "style": 1, "label": "x" * 81, "custom_id": "a"})]),
            "body.components.0.components.0.label: longer than 80 (81)",
        ),
        (
            grid_post(components=[row({"type": 2, "style": 1, "custom_id": "a", "emoji": "\N{CROSS MARK}"})]),
            'body.components.0.components.0.emoji: "\\u274c" is not of type object',
        ),
        (
            grid_post(components=[{"type": 2, "style": 1, "custom_id": "a"}]),
            'body.components.0: {"type": 2, "style": 1, "custom_id": "a"} is none of the 7 kinds allowed here',
        ),
        (grid_post(enforce_nonce="yes"), 'body.enforce_nonce: "yes" is not of type boolean or null'),
    ],
)
def test_what_discord_refuses_is_named_with_its_field(schemas: RequestSchemas, body: Json, expected: str) -> None:
    assert schemas.check(request("POST", f"/channels/{CHANNEL}/messages", body)) == [expected]


def test_routes_and_parameters_as_the_description_writes_them(schemas: RequestSchemas) -> None:
    original = schemas.operation("PATCH", f"/webhooks/{APP}/{TOKEN}/messages/@original")
    assert original is not None and original[0].template.endswith("/messages/@original")
    me = schemas.operation("GET", "/users/@me")
    assert me is not None and me[0].template == "/users/@me"

    def problems(method: str, path: str, body: Any = None, **query: str) -> list[str]:
        return schemas.check(request(method, path, body, query=query))

    callback = f"/interactions/1577247391692619804/{TOKEN}/callback"
    assert problems("POST", callback, {"type": 5}, with_response="true") == []
    assert problems("POST", callback, {"type": 5}, with_response="maybe") == [
        'query with_response: "maybe" is not of type boolean'
    ]
    assert problems("POST", callback, {"type": 5}, wait="true") == ["query parameter 'wait' is not one of this route's"]
    assert problems("POST", callback) == ["a body is required"]
    assert problems("GET", "/users/@me", {"x": 1}) == ["this route takes no body"]
    assert problems("GET", "/channels/general/messages") == [
        'path {channel_id}: "general" does not match ^(0|[1-9][0-9]*)$'
    ]
    assert problems("POST", "/channels/1/messages/1/crosspost/now") == [
        "no POST /channels/1/messages/1/crosspost/now in Discord's API"
    ]
    [line] = schemas.violations(
        [
            request(
                "POST", f"/channels/{CHANNEL}/messages", {"content": 7}, user_agent="DiscordBot (daydream-bot, 0.1.0)"
            )
        ]
    )
    assert line.startswith(
        "POST /channels/{channel_id}/messages (a worker (DiscordBot (daydream-bot, 0.1.0))): body.content"
    )


def test_snowflakes_may_be_sent_as_integers(schemas: RequestSchemas) -> None:
    snowflake = {"$ref": "#/components/schemas/SnowflakeType"}
    assert schemas.validate("1300000000000000004", snowflake, "id") == []
    assert schemas.validate(1300000000000000004, snowflake, "id") == []  # Discord coerces it
    assert schemas.validate(-1, snowflake, "id") != []
    assert schemas.validate(True, snowflake, "id") != []
    assert schemas.validate(2**64, snowflake, "id") != []


def test_an_unknown_keyword_fails_loudly(schemas: RequestSchemas) -> None:
    with pytest.raises(UnsupportedSchema, match="'not'"):
        schemas.validate(1, {"not": {"type": "string"}}, "x")


def test_the_validator_agrees_with_jsonschema(schemas: RequestSchemas) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    components = schemas.document["components"]
    bodies: dict[str, list[Any]] = {
        "MessageCreateRequest": [
            grid_post(),
            grid_post(content=7),
            grid_post(nonce="x" * 26),
            grid_post(nonce=12),
            grid_post(components=[{"type": 1, "components": []}]),
            grid_post(components=[{"type": 2, "style": 1, "custom_id": "a"}]),
            grid_post(
                components=[{"type": 1, "components": [{"type": 2, "style": 1, "custom_id": "a", "label": "x" * 81}]}]
            ),
            grid_post(allowed_mentions={"parse": ["users", "users"]}),
            grid_post(allowed_mentions={"parse": ["nobody"]}),
            {"content": None, "embeds": [{"title": "t" * 257}]},
            {"poll": {"question": {"text": "?"}, "answers": []}},
            [],
        ],
        "IncomingWebhookUpdateRequestPartial": [
            {"content": "(37%)", "attachments": [{"id": "0", "filename": "preview.png"}]},
            {"content": "(37%)", "attachments": [{"id": "0", "filename": ""}]},
            {
                "components": [
                    {"type": 1, "components": [{"type": 2, "style": 5, "url": "https://example.com", "label": "docs"}]}
                ]
            },
            {"flags": "64"},
        ],
    }
    checked = 0
    for name, cases in bodies.items():
        schema = {"$ref": f"#/components/schemas/{name}"}
        reference = jsonschema.Draft202012Validator({**schema, "components": components})
        for body in cases:
            body = string_ids(body) if isinstance(body, dict) else body
            ours = schemas.validate(body, schema, "body")
            assert (not ours) == reference.is_valid(body), (name, json.dumps(body)[:200], ours)
            checked += 1
    assert checked == 16
