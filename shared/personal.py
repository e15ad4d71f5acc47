"""What /settings, /prefer, /info and their CLI twins say: a user's settings,
option macros, jobs and usage, in the words a Discord member reads."""

from __future__ import annotations

from shared.messages import lane_label, usage_lines
from shared.preferences import UserPrefs
from shared.reports import UserReport

STYLIZE_CHOICES = (0, 50, 100, 250, 500, 750, 1000)
QUALITY_CHOICES = (0.25, 0.5, 1.0, 2.0, 4.0)


def settings_lines(prefs: UserPrefs, lane: str | None) -> list[str]:
    def on(value: bool) -> str:
        return "on" if value else "off"

    return [
        f"Model: {prefs.model or 'the server default'}",
        f"Stylize: {prefs.stylize if prefs.stylize is not None else 'default (100)'}",
        f"Quality: {f'{prefs.quality:g}' if prefs.quality is not None else 'default (1)'}",
        f"Lane: {lane_label(lane or 'fast')}",
        f"Remix mode: {on(prefs.remix)}",
        f"Raw: {on(prefs.raw)}",
        f"Suffix: {prefs.suffix or 'none'}",
    ]


def settings_panel(prefs: UserPrefs, lane: str | None) -> str:
    return "**Your Daydream settings** (parameters typed in a prompt win)\n" + "\n".join(settings_lines(prefs, lane))


def options_text(prefs: UserPrefs) -> str:
    if not prefs.options:
        return "You have no options. Make one: `/prefer option set name:poster value:--ar 2:3 --s 250`."
    return "Your options:\n" + "\n".join(f"`--{name}` → `{value}`" for name, value in prefs.options.items())


def info_text(report: UserReport, prefs: UserPrefs) -> str:
    lines = ["**Your jobs**"]
    if not report.jobs:
        lines.append("none waiting or running")
    for job in report.jobs:
        where = f"#{report.positions[job.id]} in queue" if report.positions.get(job.id) else str(job.state)
        lines.append(f"• `{job.id[:8]}` {job.prompt[:60]} — {where}, {lane_label(job.lane)}")
    lines.append("**Your settings**")
    lines.extend(settings_lines(prefs, report.default_lane))
    lines.append(f"Limits: {report.limits.running} running, {report.limits.queued} waiting at once")
    lines.append("**Usage**")
    lines.extend(usage_lines(report.usage))
    return "\n".join(lines)
