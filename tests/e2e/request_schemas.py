"""Every request checked against Discord's official OpenAPI description
(`discord_spec/openapi.json`, v10): its route and method exist, its path and
query parameters and its body match the request schemas there.

    schemas = RequestSchemas.load()
    problems = schemas.violations(standin.requests)  # ["PATCH /webhooks/…: body.content: …", …]

The validator covers the JSON Schema (2020-12) subset the description uses:
`$ref`, `type`, `const`, `enum`, `properties`, `required`,
`additionalProperties`, `min/maxProperties`, `items`, `min/maxItems`,
`uniqueItems`, `min/maxLength`, `pattern`, `minimum`, `maximum`, `oneOf`,
`anyOf`, `allOf`. `format` is an annotation (as in JSON Schema), with one
exception: a `snowflake` string may be sent as a non-negative integer, which
Discord accepts and discord.py itself sends (attachment ids, allowed user ids).
A multipart body is checked by its `payload_json`, the `files[n]` aside.
A keyword it does not know fails loudly instead of passing unchecked."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .standin import Request

SPEC_PATH = Path(__file__).parent / "discord_spec" / "openapi.json"
MAX_SNOWFLAKE = 2**64 - 1
BODY_TYPES = ("application/json", "multipart/form-data")
QUERY_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}  # what Discord reads as booleans

# Keywords that describe without constraining.
ANNOTATIONS = frozenset(
    {"title", "description", "format", "contentEncoding", "default", "examples", "deprecated", "readOnly", "writeOnly"}
)
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "array": (list,),
    "object": (dict,),
}

Json = dict[str, Any]


class UnsupportedSchema(Exception):
    """The description uses a keyword this validator does not implement."""


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # the path as the description writes it: /channels/{channel_id}/messages
    parameters: dict[tuple[str, str], Json]  # (in, name) → the parameter object
    body: Json | None  # the requestBody object, if the operation takes one

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        parts = re.split(r"(\{[^}]+\})", self.template)
        regex = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
        return re.compile(f"^{regex}$")

    @property
    def literal_segments(self) -> int:
        """More literal segments win: /users/@me over /users/{user_id}."""
        return sum(1 for segment in self.template.split("/") if segment and not segment.startswith("{"))

    def body_schema(self, content_type: str) -> Json | None:
        content = (self.body or {}).get("content", {})
        if "application/json" in content:  # a multipart body's payload_json holds the same document
            return content["application/json"]["schema"]
        if content_type in content:
            return content[content_type]["schema"]
        return None


@dataclass
class RequestSchemas:
    document: Json
    operations: dict[str, list[Operation]] = field(default_factory=dict)  # by method

    @classmethod
    def load(cls, path: Path = SPEC_PATH) -> RequestSchemas:
        with path.open(encoding="utf-8") as spec:
            schemas = cls(json.load(spec))
        for template, item in schemas.document["paths"].items():
            shared = {(p["in"], p["name"]): p for p in item.get("parameters", [])}
            for method, op in item.items():
                if method == "parameters":
                    continue
                own = {(p["in"], p["name"]): p for p in op.get("parameters", [])}
                operation = Operation(method.upper(), template, {**shared, **own}, op.get("requestBody"))
                schemas.operations.setdefault(operation.method, []).append(operation)
        for candidates in schemas.operations.values():
            candidates.sort(key=lambda o: -o.literal_segments)
        return schemas

    def operation(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        for candidate in self.operations.get(method, []):
            if m := candidate.pattern.match(path):
                return candidate, m.groupdict()
        return None

    # -- checking requests ----------------------------------------------------------

    def violations(self, requests: Iterable[Request]) -> list[str]:
        """One line per problem, naming the request (path templated: no tokens) and who sent it."""
        problems = []
        for request in requests:
            found = self.operation(request.method, request.path)
            where = f"{request.method} {found[0].template if found else request.path}"
            sender = sender_of(request)
            for problem in self.check(request):
                problems.append(f"{where} ({sender}): {problem}")
        return problems

    def check(self, request: Request) -> list[str]:
        found = self.operation(request.method, request.path)
        if found is None:
            return [f"no {request.method} {request.path} in Discord's API"]
        operation, path_values = found
        problems: list[str] = []
        for name, value in path_values.items():
            parameter = operation.parameters.get(("path", name))
            if parameter is not None:
                problems += self.validate(value, parameter["schema"], f"path {{{name}}}")
        for name, raw in request.query.items():
            parameter = operation.parameters.get(("query", name))
            if parameter is None:
                problems.append(f"query parameter {name!r} is not one of this route's")
                continue
            problems += self.validate(self.query_value(raw, parameter["schema"]), parameter["schema"], f"query {name}")
        problems += self.check_body(request, operation)
        return problems

    def check_body(self, request: Request, operation: Operation) -> list[str]:
        if request.content_type not in ("", *BODY_TYPES):
            return [f"body sent as {request.content_type!r}"]
        if operation.body is None:
            return [] if request.body in (None, {}) else ["this route takes no body"]
        schema = operation.body_schema(request.content_type)
        if request.body is None:
            return ["a body is required"] if operation.body.get("required") else []
        if isinstance(request.body, str):
            return [f"the body is not JSON: {request.body[:80]!r}"]
        return self.validate(request.body, schema or {}, "body")

    def query_value(self, raw: str, schema: Json) -> Any:
        """A query string's text as the JSON value its schema describes (a mismatch stays text)."""
        kinds = self.types_of(schema)
        if "boolean" in kinds and raw.lower() in QUERY_BOOLEANS:
            return QUERY_BOOLEANS[raw.lower()]
        if kinds & {"integer", "number"} and re.fullmatch(r"-?\d+", raw):
            return int(raw)
        return raw

    def types_of(self, schema: Json) -> set[str]:
        if "$ref" in schema:
            return self.types_of(self.resolve(schema["$ref"]))
        kind = schema.get("type", [])
        return {kind} if isinstance(kind, str) else set(kind)

    # -- the validator -----------------------------------------------------------------

    def resolve(self, ref: str) -> Json:
        if not ref.startswith("#/"):
            raise UnsupportedSchema(f"only local $refs are supported: {ref}")
        node: Any = self.document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def validate(self, value: Any, schema: Json, where: str) -> list[str]:
        """The ways `value` breaks `schema`, each prefixed with where it is (`body.components.0.label`)."""
        errors: list[str] = []
        for keyword, rule in schema.items():
            if keyword in ANNOTATIONS or keyword.startswith("x-"):
                continue
            check = getattr(self, "_check_ref" if keyword == "$ref" else f"_check_{keyword}", None)
            if check is None:
                raise UnsupportedSchema(f"keyword {keyword!r} at {where}")
            errors += check(value, rule, schema, where)
        return errors

    def _check_ref(self, value: Any, rule: str, schema: Json, where: str) -> list[str]:
        return self.validate(value, self.resolve(rule), where)

    def _check_type(self, value: Any, rule: str | list[str], schema: Json, where: str) -> list[str]:
        kinds = [rule] if isinstance(rule, str) else rule
        if any(self._is(value, kind, schema) for kind in kinds):
            return []
        return [f"{where}: {short(value)} is not of type {' or '.join(kinds)}"]

    @staticmethod
    def _is(value: Any, kind: str, schema: Json) -> bool:
        if kind in ("integer", "number") and isinstance(value, bool):
            return False
        if kind == "integer" and isinstance(value, float):
            return value.is_integer()
        if kind == "string" and schema.get("format") == "snowflake" and isinstance(value, int):
            return not isinstance(value, bool) and 0 <= value <= MAX_SNOWFLAKE  # Discord coerces it
        return isinstance(value, JSON_TYPES[kind])

    def _check_const(self, value: Any, rule: Any, schema: Json, where: str) -> list[str]:
        return [] if same(value, rule) else [f"{where}: {short(value)} is not {rule!r}"]

    def _check_enum(self, value: Any, rule: list[Any], schema: Json, where: str) -> list[str]:
        return [] if any(same(value, choice) for choice in rule) else [f"{where}: {short(value)} is not one of {rule}"]

    def _check_properties(self, value: Any, rule: Json, schema: Json, where: str) -> list[str]:
        if not isinstance(value, dict):
            return []
        errors: list[str] = []
        for name, subschema in rule.items():
            if name in value:
                errors += self.validate(value[name], subschema, f"{where}.{name}")
        return errors

    def _check_required(self, value: Any, rule: list[str], schema: Json, where: str) -> list[str]:
        if not isinstance(value, dict):
            return []
        return [f"{where}: {name!r} is required" for name in rule if name not in value]

    def _check_additionalProperties(self, value: Any, rule: bool | Json, schema: Json, where: str) -> list[str]:
        if not isinstance(value, dict):
            return []
        extra = [name for name in value if name not in schema.get("properties", {})]
        if rule is False:
            return [f"{where}: unexpected field {name!r}" for name in extra]
        if rule is True:
            return []
        return [e for name in extra for e in self.validate(value[name], rule, f"{where}.{name}")]

    def _check_maxProperties(self, value: Any, rule: int, schema: Json, where: str) -> list[str]:
        return [f"{where}: more than {rule} fields"] if isinstance(value, dict) and len(value) > rule else []

    def _check_minProperties(self, value: Any, rule: int, schema: Json, where: str) -> list[str]:
        return [f"{where}: fewer than {rule} fields"] if isinstance(value, dict) and len(value) < rule else []

    def _check_items(self, value: Any, rule: Json, schema: Json, where: str) -> list[str]:
        if not isinstance(value, list):
            return []
        return [e for i, item in enumerate(value) for e in self.validate(item, rule, f"{where}.{i}")]

    def _check_maxItems(self, value: Any, rule: int, schema: Json, where: str) -> list[str]:
        return [f"{where}: more than {rule} items"] if isinstance(value, list) and len(value) > rule else []

    def _check_minItems(self, value: Any, rule: int, schema: Json, where: str) -> list[str]:
        return [f"{where}: fewer than {rule} items"] if isinstance(value, list) and len(value) < rule else []

    def _check_uniqueItems(self, value: Any, rule: bool, schema: Json, where: str) -> list[str]:
        if not (rule and isinstance(value, list)):
            return []
        keys = [json.dumps(item, sort_keys=True) for item in value]
        return [f"{where}: items are not unique"] if len(set(keys)) < len(keys) else []

    def _check_maxLength(self, value: Any, rule: int, schema: Json, where: str) -> list[str]:
        return [f"{where}: longer than {rule} ({len(value)})"] if isinstance(value, str) and len(value) > rule else []

    def _check_minLength(self, value: Any, rule: int, schema: Json, where: str) -> list[str]:
        return [f"{where}: shorter than {rule}"] if isinstance(value, str) and len(value) < rule else []

    def _check_pattern(self, value: Any, rule: str, schema: Json, where: str) -> list[str]:
        return (
            [f"{where}: {short(value)} does not match {rule}"]
            if isinstance(value, str) and not re.search(rule, value)
            else []
        )

    def _check_minimum(self, value: Any, rule: float, schema: Json, where: str) -> list[str]:
        return [f"{where}: {value} is below {rule}"] if number(value) and value < rule else []

    def _check_maximum(self, value: Any, rule: float, schema: Json, where: str) -> list[str]:
        return [f"{where}: {value} is above {rule}"] if number(value) and value > rule else []

    def _check_allOf(self, value: Any, rule: list[Json], schema: Json, where: str) -> list[str]:
        return [e for subschema in rule for e in self.validate(value, subschema, where)]

    def _check_anyOf(self, value: Any, rule: list[Json], schema: Json, where: str) -> list[str]:
        outcomes = [self.validate(value, subschema, where) for subschema in rule]
        if any(not errors for errors in outcomes):
            return []
        return self._none_matches(value, rule, outcomes, where)

    def _check_oneOf(self, value: Any, rule: list[Json], schema: Json, where: str) -> list[str]:
        outcomes = [self.validate(value, subschema, where) for subschema in rule]
        matches = sum(1 for errors in outcomes if not errors)
        if matches == 1:
            return []
        if matches > 1:
            return [f"{where}: matches {matches} of the alternatives, where exactly one must"]
        return self._none_matches(value, rule, outcomes, where)

    @staticmethod
    def _none_matches(value: Any, rule: list[Json], outcomes: list[list[str]], where: str) -> list[str]:
        """The problems of the alternative the value was most likely meant to be (not `null` for a
        value, not one whose `type` it does not have); if it fits none even so, say that."""

        def shallow(errors: list[str]) -> bool:
            return any(e.startswith((f"{where}: ", f"{where}.type: ")) and "type" in e for e in errors)

        def unlikely(pair: tuple[Json, list[str]]) -> tuple[bool, bool, int]:
            subschema, errors = pair
            return subschema.get("type") == "null" and value is not None, shallow(errors), len(errors)

        _, closest = min(zip(rule, outcomes, strict=True), key=unlikely)
        candidates = [s for s in rule if not (s.get("type") == "null" and value is not None)]
        if shallow(closest) and len(candidates) > 1:
            return [f"{where}: {short(value)} is none of the {len(candidates)} kinds allowed here"]
        return closest


def sender_of(request: Request) -> str:
    """Who sent it, as far as its User-Agent says ("DiscordBot (daydream-bot, 0.1.0)" is the worker;
    discord.py's REST client names itself, its webhook client sends aiohttp's default)."""
    agent = request.user_agent
    if "discord.py" in agent:
        return "the bot (discord.py)"
    if agent.startswith("DiscordBot"):
        return f"a worker ({agent})"
    return f"discord.py's webhooks or a test ({agent or 'no User-Agent'})"


def same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
