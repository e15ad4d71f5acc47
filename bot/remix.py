"""Remix mode (/settings): with it on, V1–V4, 🔄 and Vary open a modal holding
the parent's prompt and parameters as text; what the member submits is parsed
like a prompt and becomes the child's prompt, and the result reads
`**prompt** - Remix (Strong) by @user`. A mistake in the edit is answered
privately, as a prompt's is."""

from __future__ import annotations

import logging
from dataclasses import replace

import discord

from bot import modals, replies
from bot.store import AsyncStore
from shared.custom_id import Action, ButtonRef
from shared.errors import DaydreamError
from shared.job import JobRecord
from shared.params import PromptPart
from shared.prompt_text import NEGATIVE_WEIGHT, parse_one
from shared.resolution import canonical_of
from shared.settings import Settings

logger = logging.getLogger(__name__)

REMIXABLE = frozenset({Action.VARY, Action.REROLL, Action.VARY_STRONG, Action.VARY_SUBTLE})
MAX_TEXT = 1000  # Discord's text input allows 4000; prompts are capped at 1000


async def is_on(store: AsyncStore, user_id: int) -> bool:
    try:
        prefs = await store.call(store.sync.preferences.user, user_id)
    except DaydreamError:
        return False  # the click goes on without the modal; Redis' trouble is said there
    return prefs.remix


def remixed(child: JobRecord, action: Action, text: str) -> JobRecord:
    """`child` with the edited prompt and parameters (its seeds, strength and lineage kept)."""
    parsed = parse_one(text)
    params = replace(parsed.params, strength=child.params.strength, seed=None)
    return replace(
        child,
        prompt=parsed.prompt,
        negative_prompt=parsed.negative_prompt,
        prompts=list(parsed.prompts) + [PromptPart(t, NEGATIVE_WEIGHT) for t in parsed.avoid],
        params=params,
        loras=list(parsed.loras),
        remix="subtle" if action == Action.VARY_SUBTLE else "strong",
    )


PROMPT_INPUT = "prompt"  # the text input's custom_id: the submit is read by it (bot/modals.py)


def remix_modal(ref: ButtonRef, text: str) -> discord.ui.Modal:
    """The modal holding the parent's prompt; its submit comes to `on_submit` by its custom_id,
    after a bot restart too (bot/modals.py)."""
    modal = discord.ui.Modal(title="Remix", custom_id=modals.custom_id(ref), timeout=None)
    modal.add_item(
        discord.ui.TextInput(
            label="Prompt and parameters",
            custom_id=PROMPT_INPUT,
            style=discord.TextStyle.paragraph,
            default=text[:MAX_TEXT],
            max_length=MAX_TEXT,
        )
    )
    return modal


@modals.handles(*REMIXABLE)
async def on_submit(
    interaction: discord.Interaction,
    ref: ButtonRef,
    extra: str,
    values: dict[str, str],
    settings: Settings,
    store: AsyncStore,
) -> None:
    from bot.buttons import queue_click  # it opens this modal

    await interaction.response.defer()
    await queue_click(interaction, ref, settings, store, remix_text=values.get(PROMPT_INPUT, ""))


async def open_modal(interaction: discord.Interaction, ref: ButtonRef, settings: Settings, store: AsyncStore) -> None:
    try:
        parent = await store.get(ref.job_id)
    except DaydreamError as exc:
        await replies.tell_privately(interaction, str(exc))
        return
    await modals.send(interaction, remix_modal(ref, canonical_of(parent)))
