"""Every line a member or a moderator reads about moderation: blocks, bans,
cooldowns, flagged images, the mod log's cases. (The queue's lines are in
shared/messages.py.)"""

from __future__ import annotations

from shared.messages import duration

APPEAL_HINT = "If you think this is a mistake, press **Appeal**: a moderator will look at it."
NOTICE_TILE = "Hidden by this server's image check"
NOT_A_CASE = "This case no longer exists (it expired), so there is nothing to decide."


def blocked(rule: str, word: str, cooldown_s: float) -> str:
    where = f"`{word}`" if word == rule else f"`{word}` (rule `{rule}`)"
    text = (
        f"Your prompt was not queued: it contains {where}, which this server's word filter blocks. "
        "Rephrase it without that word and try again."
    )
    if cooldown_s > 0:
        text += f" You have had several prompts blocked, so you can try again in {duration(cooldown_s)}."
    return f"{text} {APPEAL_HINT}"


def banned(reason: str, first: bool) -> str:
    if not first:
        return "You cannot use Daydream in this server (banned)."
    why = f" Reason: {reason}." if reason else ""
    return (
        f"A moderator has banned you from using Daydream in this server.{why} Ask the server's moderators to lift it."
    )


def cooling_down(retry_after_s: float) -> str:
    return (
        f"Several of your prompts were blocked in a short time, so Daydream waits before taking more from you: "
        f"try again in {duration(retry_after_s)}."
    )


def flagged_images(count: int, total: int, policy: str) -> str:
    """Under a result whose tiles the image check hid (blur), or instead of it (refuse)."""
    if policy == "refuse":
        return (
            "This server's image check flagged the result as not safe for this channel, so it was not posted. "
            "Use a channel marked age-restricted (NSFW), or change the prompt."
        )
    which = "image was" if count == 1 else "images were"
    return (
        f"{count} of {total} {which} hidden: this server's image check flagged them as not safe for this channel. "
        "Post in a channel marked age-restricted (NSFW) to see them, or change the prompt."
    )


def appeal_sent() -> str:
    return (
        "Your appeal was sent to the moderators. If one of them allows it, your images are made "
        "and posted in the channel, mentioning you."
    )


def appeal_no_modlog() -> str:
    return "This server has no mod log channel yet, so there is nobody to appeal to. Ask an admin to set one."


def appeal_not_yours() -> str:
    return "Only the member whose prompt was blocked can appeal it."


def already_decided(state: str) -> str:
    return f"This case is already {state}; nothing more to do."


def allowed(moderator_id: int) -> str:
    return f"Allowed by <@{moderator_id}>: the job is queued and will be posted in its channel."


def upheld(moderator_id: int) -> str:
    return f"Upheld by <@{moderator_id}>: the prompt stays blocked."


def appeal_upheld(prompt: str) -> str:
    """The member's answer when a moderator upholds their appeal (by DM: their interaction is gone)."""
    return (
        f"Your appeal was reviewed: the prompt `{prompt[:200]}` stays blocked by this server's rules. "
        "Rephrase it without the blocked word and try again."
    )


def rules_report(rules: dict[str, list[str]]) -> str:
    own = ", ".join(f"`{r}`" for r in rules["server"]) or "none"
    default = ", ".join(f"`{r}`" for r in rules["default"]) or "none"
    dropped = ", ".join(f"`{r}`" for r in rules["dropped"])
    text = f"**This server's rules:** {own}\n**Default rules in force:** {default}"
    if dropped:
        text += f"\n**Default rules removed here:** {dropped}"
    return text + "\n(Channels marked NSFW skip the default rules; this server's own apply everywhere.)"


# -- the mod log's entries ------------------------------------------------------
def log_blocked(user_id: int | None, job_id: str, prompt: str, rule: str, link: str | None) -> str:
    where = f" in {link}" if link else ""
    return f"**Blocked prompt** from <@{user_id}>{where} (job `{job_id}`): rule `{rule}`\n> {prompt[:1500]}"


def log_appeal(user_id: int | None, job_id: str, prompt: str, rule: str) -> str:
    return f"**Appeal** from <@{user_id}> (job `{job_id}`), blocked by rule `{rule}`:\n> {prompt[:1500]}"


def log_flagged(user_id: int | None, job_id: str, count: int, policy: str, link: str | None) -> str:
    where = f" — {link}" if link else ""
    return f"**Flagged images** of <@{user_id}> (job `{job_id}`): {count} tile(s), policy `{policy}`{where}"


def log_ban(user_id: int, moderator: str, reason: str, lifted: bool = False) -> str:
    if lifted:
        return f"**Unban**: <@{user_id}> by {moderator}."
    return f"**Ban**: <@{user_id}> by {moderator}" + (f" — {reason}" if reason else ".")
