"""Application commands: registered by the bot over REST, and turned into the
options Discord's client sends when a member runs one."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from .constants import (
    CONTEXT_BOT_DM,
    OPTION_ATTACHMENT,
    OPTION_BOOLEAN,
    OPTION_GROUP,
    OPTION_INTEGER,
    OPTION_NUMBER,
    OPTION_STRING,
    OPTION_SUBCOMMAND,
)
from .core import StandinCore
from .state import Json, Upload
from .wire import ApiError, form_error, json_response


class Commands(StandinCore):
    # --- REST: GET and PUT (bulk overwrite), global or per guild ---------------------------

    def _command_scope(self, request: web.Request) -> int | None:
        if int(request.match_info["application_id"]) != self.application_id:
            raise ApiError(403, "Missing Access", 50001)
        if "guild_id" not in request.match_info:
            return None
        guild_id = int(request.match_info["guild_id"])
        if guild_id != self.guild_id:
            raise ApiError(404, "Unknown Guild", 10004)
        return guild_id

    async def _get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.commands(self._command_scope(request)))

    async def _put_commands(self, request: web.Request) -> web.Response:
        guild_id = self._command_scope(request)
        body = await request.json()
        if not isinstance(body, list):
            raise form_error([], "BASE_TYPE_ARRAY", "Must be an array.")
        old = self._commands.get(guild_id, {})
        new: dict[tuple[str, int], Json] = {}
        for index, command in enumerate(body):
            name, kind = command.get("name", ""), command.get("type", 1)
            if kind == 1 and (not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower()):
                raise form_error([index, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            if kind == 1 and not 1 <= len(command.get("description", "")) <= 100:
                raise form_error([index, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            previous = old.get((name, kind))
            stored: Json = {
                "id": previous["id"] if previous else str(self._snowflake()),
                "application_id": str(self.application_id),
                "version": str(self._snowflake()),
                "type": kind,
                "name": name,
                "name_localizations": command.get("name_localizations"),
                "description": command.get("description", ""),
                "description_localizations": command.get("description_localizations"),
                "default_member_permissions": command.get("default_member_permissions"),
                "nsfw": command.get("nsfw", False),
                "integration_types": command.get("integration_types", [0]),
                "contexts": command.get("contexts"),
            }
            if command.get("options"):
                stored["options"] = command["options"]
            if guild_id is None:
                stored["dm_permission"] = command.get("dm_permission", True)
            else:
                stored["guild_id"] = str(guild_id)
            new[(name, kind)] = stored
        self._commands[guild_id] = new
        return json_response(list(new.values()))

    # --- what Discord's client sends when a member runs one --------------------------------

    def _find_command(self, name: str, *, in_dm: bool = False) -> Json | None:
        """The chat command a member can run here: in the bot's DM, only a global one whose
        contexts include the bot DM (or, without contexts, whose dm_permission is not false)."""
        for scope in (None,) if in_dm else (self.guild_id, None):
            for (cmd_name, cmd_type), cmd in self._commands.get(scope, {}).items():
                if cmd_name == name and cmd_type == 1 and (not in_dm or usable_in_dm(cmd)):
                    return cmd
        return None

    def _command_options(self, path: list[str], declared: list[Json], values: Json, validate: bool) -> list[Json]:
        """`{name: value}` as Discord's client sends it, nested under subcommands in `path`."""
        if path:
            sub = next(
                (o for o in declared if o["name"] == path[0] and o["type"] in (OPTION_SUBCOMMAND, OPTION_GROUP)), None
            )
            if sub is None and validate:
                raise LookupError(f"no subcommand {path[0]!r}")
            inner = self._command_options(path[1:], (sub or {}).get("options", []), values, validate)
            option: Json = {"name": path[0], "type": (sub or {}).get("type", OPTION_SUBCOMMAND)}
            if inner:
                option["options"] = inner
            return [option]
        by_name = {o["name"]: o for o in declared}
        out: list[Json] = []
        for name, value in values.items():
            spec = by_name.get(name)
            if spec is None and validate:
                raise ValueError(f"option {name!r} is not declared; Discord's client offers {sorted(by_name)}")
            if validate and spec is not None:
                check_option(spec, value)
            out.append({"name": name, "type": (spec or {}).get("type", OPTION_STRING), "value": value})
        if validate:
            missing = [o["name"] for o in declared if o.get("required") and o["name"] not in values]
            if missing:
                raise ValueError(f"required options missing: {missing} (Discord's client would not send this)")
        return out


def usable_in_dm(command: Json) -> bool:
    contexts = command.get("contexts")
    if contexts is not None:
        return CONTEXT_BOT_DM in contexts
    return command.get("dm_permission", True) is not False


def check_option(spec: Json, value: Any) -> None:
    """Refuse a value Discord's client would not let a member enter for option `spec`."""
    kind = spec["type"]
    wrong = ValueError(f"option {spec['name']!r}: {value!r} is not what Discord's client would send")
    if kind == OPTION_STRING:
        if not isinstance(value, str):
            raise wrong
        if not spec.get("min_length", 0) <= len(value) <= spec.get("max_length", 6000):
            raise wrong
    elif kind in (OPTION_INTEGER, OPTION_NUMBER):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong
        if kind == OPTION_INTEGER and not isinstance(value, int):
            raise wrong
        if value < spec.get("min_value", value) or value > spec.get("max_value", value):
            raise wrong
    elif kind == OPTION_BOOLEAN and not isinstance(value, bool):
        raise wrong
    elif kind == OPTION_ATTACHMENT and not isinstance(value, Upload):
        raise wrong
    choices = spec.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise wrong
