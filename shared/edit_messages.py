"""What users read about edits (Vary (Region), Zoom Out, Pan, Make Square) and
input images (image prompts, /blend, /describe): kept beside shared/messages.py,
which holds the rest."""

from __future__ import annotations

from shared.job import JobRecord
from shared.messages import mention

# -- edits: Vary (Region), Zoom Out, Pan, Make Square (issue 19) -------------------------
REGION_PICK = (
    "**Vary (Region)**: pick the cells to repaint (the numbers on the picture, several at once). "
    "You can then give a new prompt for them, or keep the old one."
)
REGION_PROMPT_LABEL = "New prompt (empty: keep the old one)"  # ≤ 45: Discord's limit on a label
ZOOM_FACTOR_LABEL = "Zoom out by (1.0 to 2.0)"
ZOOM_ASPECT_LABEL = "New aspect ratio (optional), like --ar 3:2"
NOT_AN_EDIT_SOURCE = "Edits work on a single image: press U1–U4 under a grid first, then edit the upscale."
REGION_EXPIRED_PREVIEW = (
    "**Vary (Region)**: the picture has expired from storage, so there is no preview; the cells are a 4×4 grid "
    "numbered 1 to 16 from the top left, row by row. Pick the ones to repaint."
)


# -- input images: image prompts, /blend, /describe (issue 19) ---------------------------
INPUT_EXPIRED = "The input image of this job has expired from storage; run the command again with the image."
NUMBERS = ("1\N{COMBINING ENCLOSING KEYCAP}", "2\N{COMBINING ENCLOSING KEYCAP}", "3\N{COMBINING ENCLOSING KEYCAP}",
           "4\N{COMBINING ENCLOSING KEYCAP}")  # fmt: skip


def described(job: JobRecord, prompts: list[str]) -> str:
    """/describe's answer, in Midjourney's form: the prompts numbered, then who asked."""
    lines = [f"{NUMBERS[i]} {text}" for i, text in enumerate(prompts[: len(NUMBERS)])]
    return "\n\n".join(lines) + f"\n\n— described for {mention(job)}"


def cannot_describe(model: str) -> str:
    return (
        f"The model `{model}` has no way to describe images: its admin can set DESCRIBE_MODEL "
        "(a BLIP captioning model) on its workers."
    )
