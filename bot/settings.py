"""A member's own defaults, as in Midjourney: /settings (an ephemeral panel of
selects and buttons: model, stylize, quality, lane, Remix mode, raw), /prefer
suffix and /prefer option set|list|delete (macros), /info and /show.

The panel's components carry their whole state in the custom_id
(`dds:<setting>`, outside the result buttons' `dd:`), so they keep working
after a restart; each change is saved (shared/preferences.py) and the panel
redrawn with the new values."""

from __future__ import annotations

import io
import logging
import re
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot import permissions, replies
from shared import messages, personal, reports
from shared.components import grid_components, upscale_components
from shared.errors import DaydreamError, NotAllowed
from shared.job import LANES, JobKind, JobState
from shared.preferences import UserPrefs

if TYPE_CHECKING:
    from bot.app import DaydreamBot

logger = logging.getLogger(__name__)

SELECT_PATTERN = r"dds:(?P<name>model|stylize|quality|lane)"
BUTTON_PATTERN = r"dds:(?P<name>remix|raw)"
DEFAULT = "default"


def _bot(interaction: discord.Interaction) -> DaydreamBot:
    return cast("DaydreamBot", interaction.client)


def _select(name: str, placeholder: str, options: list[tuple[str, str]], current: str) -> discord.ui.Select:
    return discord.ui.Select(
        custom_id=f"dds:{name}",
        placeholder=placeholder,
        options=[discord.SelectOption(label=label, value=value, default=value == current) for label, value in options],
    )


def panel_view(prefs: UserPrefs, lane: str | None, models: list[str]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    model_options = [("Server default", DEFAULT)] + [(m, m) for m in models[:24]]
    view.add_item(_select("model", "Model", model_options, prefs.model or DEFAULT))
    stylize = [("Stylize: default (100)", DEFAULT)] + [(f"Stylize {s}", str(s)) for s in personal.STYLIZE_CHOICES]
    view.add_item(_select("stylize", "Stylize", stylize, DEFAULT if prefs.stylize is None else str(prefs.stylize)))
    quality = [("Quality: default (1)", DEFAULT)] + [(f"Quality {q:g}", f"{q:g}") for q in personal.QUALITY_CHOICES]
    view.add_item(_select("quality", "Quality", quality, DEFAULT if prefs.quality is None else f"{prefs.quality:g}"))
    view.add_item(_select("lane", "Lane", [(f"{x.title()} lane", x) for x in LANES], lane or "fast"))
    for name, on in (("remix", prefs.remix), ("raw", prefs.raw)):
        style = discord.ButtonStyle.success if on else discord.ButtonStyle.secondary
        label = f"{'Remix mode' if name == 'remix' else 'Raw'}: {'on' if on else 'off'}"
        view.add_item(discord.ui.Button(custom_id=f"dds:{name}", label=label, style=style, row=4))
    return view


async def panel(interaction: discord.Interaction) -> tuple[str, discord.ui.View]:
    store = _bot(interaction).jobs
    uid = interaction.user.id
    prefs = await store.call(store.sync.preferences.user, uid)
    lane = await store.call(store.sync.policy.default_lane, uid)
    models = await store.call(store.sync.dispatch.served_models)
    return personal.settings_panel(prefs, lane), panel_view(prefs, lane, sorted(models))


async def change(interaction: discord.Interaction, name: str, value: str | None) -> None:
    """One setting from the panel, then the panel redrawn (or the refusal said privately)."""
    store = _bot(interaction).jobs
    uid = interaction.user.id
    try:
        if name == "lane":
            await store.set_default_lane(uid, value or "fast", permissions.roles_of(interaction.user))
        elif name in {"remix", "raw"}:
            prefs = await store.call(store.sync.preferences.user, uid)
            await store.call(store.sync.preferences.set, uid, name, "off" if getattr(prefs, name) else "on")
        else:
            await store.call(store.sync.preferences.set, uid, name, None if value == DEFAULT else value)
    except DaydreamError as exc:
        await replies.tell_privately(interaction, str(exc))
        return
    logger.info("user %s set %s to %s", uid, name, value)
    content, view = await panel(interaction)
    await interaction.response.edit_message(content=content, view=view)


class SettingsSelect(discord.ui.DynamicItem[discord.ui.Select], template=SELECT_PATTERN):
    def __init__(self, name: str) -> None:
        super().__init__(discord.ui.Select(custom_id=f"dds:{name}", options=[discord.SelectOption(label="-")]))
        self.name = name

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> SettingsSelect:
        return cls(match["name"])

    async def callback(self, interaction: discord.Interaction) -> None:
        values = (interaction.data or {}).get("values") or [DEFAULT]  # type: ignore[union-attr]
        await change(interaction, self.name, str(values[0]))


class SettingsButton(discord.ui.DynamicItem[discord.ui.Button], template=BUTTON_PATTERN):
    def __init__(self, name: str) -> None:
        super().__init__(discord.ui.Button(custom_id=f"dds:{name}"))
        self.name = name

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> SettingsButton:
        return cls(match["name"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await change(interaction, self.name, None)


def result_view(components: list[dict[str, Any]]) -> discord.ui.View:
    """The buttons of a result (shared/components.py) as a view to send."""
    view = discord.ui.View(timeout=None)
    for row, line in enumerate(components):
        for c in line["components"]:
            emoji = (c.get("emoji") or {}).get("name")
            view.add_item(discord.ui.Button(custom_id=c["custom_id"], label=c.get("label"), emoji=emoji, row=row))
    return view


class SettingsCog(commands.Cog):
    prefer = app_commands.Group(name="prefer", description="Your prompt suffix and option macros.")
    option = app_commands.Group(name="option", description="Option macros: --name stands for flags.", parent=prefer)

    def __init__(self, bot: DaydreamBot) -> None:
        self.bot = bot

    async def _call(self, interaction: discord.Interaction, fn: Any, *args: Any) -> Any:
        try:
            return await self.bot.jobs.call(fn, *args)
        except DaydreamError as exc:
            await replies.tell_privately(interaction, str(exc))
            return None

    @app_commands.command(name="settings", description="Your defaults: model, stylize, quality, lane, Remix, raw.")
    async def settings_command(self, interaction: discord.Interaction) -> None:
        try:
            content, view = await panel(interaction)
        except DaydreamError as exc:
            await replies.tell_privately(interaction, str(exc))
            return
        await interaction.response.send_message(content, view=view, ephemeral=True)

    @prefer.command(name="suffix", description="Text and flags added to every prompt (leave empty to clear).")
    @app_commands.describe(text="e.g. in watercolour --ar 3:2")
    async def suffix(self, interaction: discord.Interaction, text: str = "") -> None:
        prefs = await self._call(interaction, self.bot.store.preferences.set_suffix, interaction.user.id, text)
        if prefs is not None:
            said = f"Your suffix is now `{prefs.suffix}`." if prefs.suffix else "You have no suffix now."
            await replies.tell_privately(interaction, said)

    @option.command(name="set", description="Make --name stand for flags, e.g. poster → --ar 2:3 --s 250.")
    async def option_set(self, interaction: discord.Interaction, name: str, value: str) -> None:
        prefs = await self._call(interaction, self.bot.store.preferences.set_option, interaction.user.id, name, value)
        if prefs is not None:
            key = name.lower().lstrip("-")
            await replies.tell_privately(interaction, f"`--{key}` now stands for `{prefs.options[key]}`.")

    @option.command(name="list", description="Your option macros.")
    async def option_list(self, interaction: discord.Interaction) -> None:
        prefs = await self._call(interaction, self.bot.store.preferences.user, interaction.user.id)
        if prefs is not None:
            await replies.tell_privately(interaction, personal.options_text(prefs))

    @option.command(name="delete", description="Forget an option macro.")
    async def option_delete(self, interaction: discord.Interaction, name: str) -> None:
        gone = await self._call(interaction, self.bot.store.preferences.delete_option, interaction.user.id, name)
        if gone is not None:
            key = name.lower().lstrip("-")
            text = (
                f"Deleted `--{key}`." if gone else f"You have no option `--{key}`; `/prefer option list` shows yours."
            )
            await replies.tell_privately(interaction, text)

    @app_commands.command(name="info", description="Your running and waiting jobs, settings and usage today.")
    async def info(self, interaction: discord.Interaction) -> None:
        uid, roles = interaction.user.id, permissions.roles_of(interaction.user)
        report = await self._call(interaction, reports.user_report, self.bot.store, uid, roles)
        prefs = await self._call(interaction, self.bot.store.preferences.user, uid) if report else None
        if report is not None and prefs is not None:
            await replies.tell_privately(interaction, personal.info_text(report, prefs))

    @app_commands.command(name="show", description="Post a job's result again here, with its buttons.")
    @app_commands.describe(job_id="the job's id (✉️ on a result sends it)")
    async def show(self, interaction: discord.Interaction, job_id: str) -> None:
        store = self.bot.jobs
        try:
            job = await store.get(job_id.strip())
            if job.user_id != interaction.user.id and not permissions.interaction_admin(self.bot.settings, interaction):
                raise NotAllowed("Only the person who asked for that job, or an admin, can show it again.")
            if job.state != JobState.DONE:
                raise NotAllowed(f"Job `{job.id}` is {job.state}; only a finished job has a result to show.")
            upload = await store.result_upload(job, self.bot.settings)
        except DaydreamError as exc:
            await replies.tell_privately(interaction, str(exc))
            return
        if upload is None:
            await replies.tell_privately(interaction, messages.EXPIRED_RESULT)
            return
        data, name = upload
        buttons = upscale_components(job.id) if job.kind == JobKind.UPSCALE else grid_components(job.id)
        await interaction.response.send_message(
            messages.result(job),
            file=discord.File(fp=io.BytesIO(data), filename=name),
            view=result_view(buttons),
            allowed_mentions=replies.only_mention(job.user_id),
        )
