"""What the embedded model says it understood of a prompt, under its result
(shared/messages.py's status line adds it)."""

from __future__ import annotations

from shared.job import JobRecord

# The embedded model's world, said once where a prompt asks for something outside it.
EMBEDDED_WORLD = (
    "one or two circles, squares, triangles or stars, in eight colours, at nine places and three sizes, "
    "on a plain background"
)
MAX_UNREAD_SHOWN = 5


def understood_line(job: JobRecord) -> str:
    """A second line under a result: what the model read in the prompt and drew,
    or, when the prompt asked for nothing it can draw, what it can (empty when
    the engine does not say)."""
    if job.out_of_world:
        return (
            f"\nThe built-in model draws only {EMBEDDED_WORLD}; it found none of that in this prompt. "
            "A real checkpoint (`MODEL=…`) draws anything."
        )
    if not job.understood:
        return ""
    unread = job.unread[:MAX_UNREAD_SHOWN]
    more = "…" if len(job.unread) > MAX_UNREAD_SHOWN else ""
    ignored = f" (not understood: {', '.join(unread)}{more})" if unread else ""
    return f"\nUnderstood: {job.understood}{ignored}"
