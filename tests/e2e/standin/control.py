"""The control API of the standalone mode: what the tests do in-process
(slash commands, clicks, reactions, reading messages), over HTTP on `/_standin/*`."""

from __future__ import annotations

from aiohttp import web

from .interactions import Interactions
from .state import Json, User
from .wire import json_response


class ControlApi(Interactions):
    def _add_control_routes(self, app: web.Application) -> None:
        app.router.add_post("/_standin/slash", self._control_slash)
        app.router.add_post("/_standin/click", self._control_click)
        app.router.add_post("/_standin/react", self._control_react)
        app.router.add_get("/_standin/messages", self._control_messages)

    def _control_user(self, body: Json) -> User | None:
        return self.users.get(int(body["user_id"])) if body.get("user_id") else None

    async def _control_slash(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            it = await self.slash_command(
                body["name"],
                body.get("options"),
                user=self._control_user(body),
                channel_id=int(body["channel_id"]) if body.get("channel_id") else None,
                in_dm=body.get("in_dm", False),
                validate=body.get("validate", True),
            )
        except (LookupError, ValueError, TimeoutError) as error:
            return json_response({"error": str(error)}, status=400)
        return json_response({"interaction_id": str(it.id)})

    async def _control_click(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            it = await self.click(
                int(body["message_id"]),
                body["custom_id"],
                user=self._control_user(body),
                strict=body.get("strict", True),
            )
        except (LookupError, ValueError, TimeoutError) as error:
            return json_response({"error": str(error)}, status=400)
        return json_response({"interaction_id": str(it.id)})

    async def _control_react(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            event = await self.react(int(body["message_id"]), body["emoji"], user=self._control_user(body))
        except (LookupError, ValueError, TimeoutError) as error:
            return json_response({"error": str(error)}, status=400)
        return json_response(event)

    async def _control_messages(self, request: web.Request) -> web.Response:
        channel = request.query.get("channel_id")
        found = self.messages(int(channel) if channel else None, include_deleted=True)
        return json_response([m.summary() for m in found])
