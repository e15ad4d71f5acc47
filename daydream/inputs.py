"""`daydream imagine --image a.png [--iw 1.5]`, `daydream blend a.png b.png …` and
`daydream describe image.png [--json]`: the twins of /imagine's image prompts,
/blend and /describe. Files are checked exactly as the bot checks attachments
(shared/uploads.py) and stored as Daydream's own PNGs beside the job."""

from __future__ import annotations

import argparse
from pathlib import Path

from daydream import models, submit
from shared.builders import BLEND_DIMENSIONS, blend_job, describe_job, with_inputs
from shared.errors import BadImage, InvalidRequest
from shared.job import JobRecord
from shared.models import model_name
from shared.params import MAX_IMAGE_WEIGHT, MIN_IMAGE_WEIGHT
from shared.settings import Settings
from shared.store import JobStore
from shared.uploads import CheckedImage, check_declared, check_image, split_links

COMMANDS = ("blend", "describe")


def read_images(paths: list[Path], settings: Settings) -> list[CheckedImage]:
    images = []
    for path in paths:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise BadImage(str(path), f"`{path}`: cannot read it ({exc.strerror or exc}).") from None
        check_declared(path.name, size, None, settings.input_max_bytes)  # before reading a byte of it
        images.append(check_image(path.name, path.read_bytes(), settings.input_max_bytes, settings.input_max_pixels))
    return images


def image_files(args: argparse.Namespace, settings: Settings) -> list[CheckedImage]:
    """`daydream imagine`'s image prompts: the `--image` files (links are for Discord)."""
    links, _ = split_links(args.prompt)
    if links:
        raise InvalidRequest(
            "The command line reads image prompts from files: give them with `--image FILE` instead of links."
        )
    return read_images(getattr(args, "image", None) or [], settings)


def cmd_blend(args: argparse.Namespace, settings: Settings) -> int:
    images = read_images(args.images, settings)
    store = JobStore(settings)
    lane = store.policy.resolve_lane(args.user, frozenset(), None)
    model = model_name(args.model or settings.model)
    job = blend_job(len(images), args.dimensions, user_id=args.user, model=model, lane=lane)
    return submit.submit_and_wait(store, job, args, with_inputs(job, images))


def show_prompts(job: JobRecord) -> None:
    for i, text in enumerate(job.described, start=1):
        print(f"{i}. {text}")


def cmd_describe(args: argparse.Namespace, settings: Settings) -> int:
    images = read_images([args.image], settings)
    store = JobStore(settings)
    lane = store.policy.resolve_lane(args.user, frozenset(), None)
    job = describe_job(user_id=args.user, model=model_name(args.model or settings.model), lane=lane)
    return submit.submit_and_wait(store, job, args, with_inputs(job, images), show=show_prompts)


def weight(raw: str) -> float:
    """argparse type: --iw 0–3."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--iw needs a number from 0 to 3, got {raw!r}") from None
    if not MIN_IMAGE_WEIGHT <= value <= MAX_IMAGE_WEIGHT:
        raise argparse.ArgumentTypeError(f"--iw must be from 0 to 3, got {raw}")
    return value


def add_image_options(p: argparse.ArgumentParser) -> None:
    """`daydream imagine`'s image prompts."""
    p.add_argument("--image", type=Path, action="append", help="an image prompt (repeat for several)")
    p.add_argument("--iw", type=weight, help="how much the images count against the text, 0 to 3 (default 1)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("blend", help="four images mixing 2-5 image files (the twin of /blend)")
    p.add_argument("images", type=Path, nargs="+", help="2 to 5 PNG, JPEG, WebP or GIF files")
    p.add_argument("--dimensions", choices=sorted(BLEND_DIMENSIONS), default="square")
    submit.add_wait_options(p)
    models.add_model_option(p, "the model to blend with")
    p.set_defaults(func=cmd_blend)

    p = sub.add_parser("describe", help="four prompts for an image file (the twin of /describe)")
    p.add_argument("image", type=Path)
    submit.add_wait_options(p)
    models.add_model_option(p, "the model to describe with")
    p.set_defaults(func=cmd_describe)
