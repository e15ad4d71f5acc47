"""The edits under an upscale that need more than a click: Vary (Region) (a
private picker — the image with its 4×4 cells numbered and a select over
them — then a modal for an optional new prompt) and Custom Zoom (a modal:
the factor and an optional --ar). Zoom Out 2x / 1.5x, Pan and Make Square are
plain clicks (shared/builders.py `EDIT_ACTIONS`). Each ends in the buttons'
own `handle_click`, so the job is built, checked and queued exactly as theirs."""

from __future__ import annotations

import asyncio
import io
import logging

import discord

from bot import modals, permissions, replies
from bot.buttons import OPENERS, handle_click, load_parent
from bot.store import AsyncStore
from shared import edit_messages
from shared.builders import edit_job
from shared.canvas import cell_preview
from shared.components import region_select_components
from shared.custom_id import Action, ButtonRef
from shared.edits import REGION_CELLS, Edit, check_aspect, check_factor, parse_cells
from shared.errors import DaydreamError
from shared.grid import decode_image, encode_png
from shared.job import JobKind, JobRecord, ReplyTarget
from shared.settings import Settings

logger = logging.getLogger(__name__)

PICKER_TIMEOUT_S = 900  # the private picker lives as long as its interaction token
PREVIEW_FILE = "daydream_cells.png"


def region_picker_view(job_id: str) -> discord.ui.View:
    """The select under the preview; its clicks reach ResultButton by custom_id
    (a restart of the bot does not break an open picker)."""
    [row] = region_select_components(job_id, REGION_CELLS)
    spec = row["components"][0]
    view = discord.ui.View(timeout=PICKER_TIMEOUT_S)
    view.add_item(
        discord.ui.Select(
            custom_id=spec["custom_id"],
            placeholder=spec["placeholder"],
            min_values=spec["min_values"],
            max_values=spec["max_values"],
            options=[discord.SelectOption(label=o["label"], value=o["value"]) for o in spec["options"]],
        )
    )
    return view


async def open_region_picker(
    interaction: discord.Interaction, ref: ButtonRef, settings: Settings, store: AsyncStore
) -> None:
    """Vary (Region): the image with numbered cells and a select, privately."""
    try:
        parent = await load_parent(store, ref.job_id)
        permissions.check_may_click(
            settings, parent, interaction.user.id, permissions.interaction_admin(settings, interaction)
        )
        data = await store.image(parent.id, 1)
    except DaydreamError as exc:
        await replies.tell_privately(interaction, str(exc))
        return
    view = region_picker_view(parent.id)
    if data is None:
        await interaction.response.send_message(edit_messages.REGION_EXPIRED_PREVIEW, ephemeral=True, view=view)
        return
    png = await asyncio.to_thread(lambda: encode_png(cell_preview(decode_image(data))))
    await interaction.response.send_message(
        edit_messages.REGION_PICK, ephemeral=True, view=view, file=discord.File(io.BytesIO(png), PREVIEW_FILE)
    )


def region_prompt_modal(ref: ButtonRef, cells: tuple[int, ...]) -> discord.ui.Modal:
    """The optional new prompt for the picked cells, which travel in its custom_id (bot/modals.py)."""
    modal = discord.ui.Modal(
        title="Vary (Region)", custom_id=modals.custom_id(ref, ".".join(map(str, cells))), timeout=None
    )
    modal.add_item(
        discord.ui.TextInput(
            label=edit_messages.REGION_PROMPT_LABEL,
            custom_id="prompt",
            required=False,
            max_length=1000,
            style=discord.TextStyle.paragraph,
        )
    )
    return modal


@modals.handles(Action.REGION_SELECT)
async def on_region_prompt(
    interaction: discord.Interaction,
    ref: ButtonRef,
    extra: str,
    values: dict[str, str],
    settings: Settings,
    store: AsyncStore,
) -> None:
    try:
        cells = parse_cells(extra.split("."))
    except DaydreamError as exc:
        await replies.tell_privately(interaction, str(exc))
        return
    prompt = values.get("prompt", "")

    def build(parent: JobRecord, user_id: int, reply: ReplyTarget, lane: str) -> JobRecord:
        edit = Edit(cells=cells)
        return edit_job(parent, JobKind.REGION, edit, 1, user_id, settings, prompt=prompt, reply=reply, lane=lane)

    await handle_click(interaction, ref, settings, store, build=build)


async def on_region_select(
    interaction: discord.Interaction, ref: ButtonRef, settings: Settings, store: AsyncStore
) -> None:
    """The cells are picked: ask for an optional new prompt (a modal must be the first answer)."""
    values = (interaction.data or {}).get("values") or []
    try:
        cells = parse_cells([str(v) for v in values])
    except DaydreamError as exc:
        await replies.tell_privately(interaction, str(exc))
        return
    await modals.send(interaction, region_prompt_modal(ref, cells))


def custom_zoom_modal(ref: ButtonRef) -> discord.ui.Modal:
    modal = discord.ui.Modal(title="Custom Zoom", custom_id=modals.custom_id(ref), timeout=None)
    modal.add_item(
        discord.ui.TextInput(
            label=edit_messages.ZOOM_FACTOR_LABEL, custom_id="factor", default="2", max_length=8, required=True
        )
    )
    modal.add_item(
        discord.ui.TextInput(
            label=edit_messages.ZOOM_ASPECT_LABEL,
            custom_id="aspect",
            required=False,
            max_length=16,
            placeholder="--ar 3:2",
        )
    )
    return modal


@modals.handles(Action.ZOOM_CUSTOM)
async def on_custom_zoom(
    interaction: discord.Interaction,
    ref: ButtonRef,
    extra: str,
    values: dict[str, str],
    settings: Settings,
    store: AsyncStore,
) -> None:
    try:
        edit = Edit(factor=check_factor(values.get("factor", "")), aspect=check_aspect(values.get("aspect", "")))
    except DaydreamError as exc:
        await replies.tell_privately(interaction, str(exc))
        return

    def build(parent: JobRecord, user_id: int, reply: ReplyTarget, lane: str) -> JobRecord:
        return edit_job(parent, JobKind.ZOOM, edit, 1, user_id, settings, reply=reply, lane=lane)

    await handle_click(interaction, ref, settings, store, build=build)


async def open_custom_zoom(
    interaction: discord.Interaction, ref: ButtonRef, settings: Settings, store: AsyncStore
) -> None:
    await modals.send(interaction, custom_zoom_modal(ref))


OPENERS[Action.VARY_REGION] = open_region_picker
OPENERS[Action.REGION_SELECT] = on_region_select
OPENERS[Action.ZOOM_CUSTOM] = open_custom_zoom
