"""Modals that survive a bot restart, like the buttons that open them.

discord.py keeps an open modal in the process's memory and drops a submit it
does not know, so a member who opened Remix, Vary (Region) or Custom Zoom
before a restart would press Submit and get "Something went wrong". Daydream's
modals therefore hold their whole state in their custom_id
(`ddm:<action>:<job id>:<index>[:<extra>]`, the buttons' codec plus one free
part), are sent already finished (discord.py stores none), and every submit,
before a restart or after, reaches `dispatch` from the bot's `on_interaction`:
one path, whatever the process remembers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot import replies
from bot.store import AsyncStore
from shared.custom_id import MAX_CUSTOM_ID, Action, ButtonRef, decode
from shared.errors import DaydreamError, InvalidRequest
from shared.settings import Settings

logger = logging.getLogger(__name__)

PREFIX = "ddm:"
LABEL = 18  # Discord's Label component, which newer clients wrap each text input in

# (interaction, ref, extra, values by input custom_id, settings, store)
Handler = Callable[[discord.Interaction, ButtonRef, str, dict[str, str], Settings, AsyncStore], Awaitable[None]]
_HANDLERS: dict[Action, Handler] = {}


def handles(*actions: Action) -> Callable[[Handler], Handler]:
    """Register the submit handler of the modals opened for `actions`."""

    def register(handler: Handler) -> Handler:
        for action in actions:
            _HANDLERS[action] = handler
        return handler

    return register


def custom_id(ref: ButtonRef, extra: str = "") -> str:
    value = f"{PREFIX}{ref.action.value}:{ref.job_id}:{ref.index}" + (f":{extra}" if extra else "")
    if len(value) > MAX_CUSTOM_ID:
        raise ValueError(f"modal custom_id too long: {value!r}")
    return value


def parse(value: str) -> tuple[ButtonRef, str]:
    """The ref and extra part of a modal's custom_id; InvalidRequest when forged."""
    action, job_id, index, extra = [*value.removeprefix(PREFIX).split(":", 3), None, None, None][:4]
    return decode(action, job_id, index), extra or ""


def values(data: dict[str, Any]) -> dict[str, str]:
    """The submitted text inputs by custom_id, in action rows or (newer clients) labels."""
    out: dict[str, str] = {}
    for outer in data.get("components") or []:
        inner = [outer["component"]] if outer.get("type") == LABEL and "component" in outer else []
        for component in inner or outer.get("components") or []:
            if "custom_id" in component:
                out[str(component["custom_id"])] = str(component.get("value") or "")
    return out


async def send(interaction: discord.Interaction, modal: discord.ui.Modal) -> None:
    """Open `modal` without discord.py keeping it: its submit comes to `dispatch`."""
    modal.stop()
    await interaction.response.send_modal(modal)


async def dispatch(interaction: discord.Interaction, settings: Settings, store: AsyncStore) -> bool:
    """Handle a submit of one of Daydream's modals; False if it is not one."""
    data: dict[str, Any] = interaction.data or {}  # type: ignore[assignment]
    raw = str(data.get("custom_id", ""))
    if interaction.type != discord.InteractionType.modal_submit or not raw.startswith(PREFIX):
        return False
    try:
        ref, extra = parse(raw)
        handler = _HANDLERS.get(ref.action)
        if handler is None:
            raise InvalidRequest("This form is not one Daydream knows. Click the button under the image again.")
    except DaydreamError as exc:
        logger.info("unusable modal custom_id %r from user %s: %s", raw, interaction.user.id, exc)
        await replies.tell_privately(interaction, str(exc))
        return True
    await handler(interaction, ref, extra, values(data), settings, store)
    return True
