"""`daydream region|zoom|pan|square JOB I`: the twins of Vary (Region), Zoom Out
(2x, 1.5x, Custom Zoom), ⬅ ➡ ⬆ ⬇ and Make Square under an upscale. The same
records as the buttons' (shared/builders.py), through the real queue."""

from __future__ import annotations

import argparse
import re

from daydream import submit
from shared.builders import edit_job
from shared.edits import DIRECTIONS, Edit, check_aspect, check_factor, parse_cells
from shared.errors import InvalidRequest
from shared.job import JobKind, JobState
from shared.settings import Settings
from shared.store import JobStore

COMMANDS = ("region", "zoom", "pan", "square")
CELLS = re.compile(r"[\d,\s]+")


def _submit(args: argparse.Namespace, settings: Settings, kind: JobKind, edit: Edit, prompt: str | None = None) -> int:
    store = JobStore(settings)
    parent = store.get(args.job_id)
    if parent.state != JobState.DONE:
        raise InvalidRequest(f"Job {parent.id} is {parent.state}; only finished jobs can be edited.")
    job = edit_job(parent, kind, edit, args.index, user_id=args.user, settings=settings, prompt=prompt)
    return submit.submit_and_wait(store, job, args)


def cmd_region(args: argparse.Namespace, settings: Settings) -> int:
    # argparse fills the optional prompt before it reaches `--cells`, so a prompt written
    # after the cells (`--cells 1,2,5 "a cat"`) arrives among them: split it off.
    cells = [c for c in args.cells if CELLS.fullmatch(c)]
    after = [c for c in args.cells if not CELLS.fullmatch(c)]
    if after and args.prompt:
        raise InvalidRequest(f"Two prompts for the region: {args.prompt!r} and {' '.join(after)!r}. Give one.")
    prompt = args.prompt or " ".join(after) or None
    return _submit(args, settings, JobKind.REGION, Edit(cells=parse_cells(",".join(cells))), prompt)


def cmd_zoom(args: argparse.Namespace, settings: Settings) -> int:
    edit = Edit(factor=check_factor(args.factor), aspect=check_aspect(args.ar))
    return _submit(args, settings, JobKind.ZOOM, edit)


def cmd_pan(args: argparse.Namespace, settings: Settings) -> int:
    return _submit(args, settings, JobKind.PAN, Edit(direction=args.direction))


def cmd_square(args: argparse.Namespace, settings: Settings) -> int:
    return _submit(args, settings, JobKind.SQUARE, Edit())


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument("job_id")
    p.add_argument("index", type=int, help="the image of that job (1 for an upscale, 1-4 in a grid)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("region", help="Vary (Region): repaint some cells (a 4×4 grid, 1-16) of image INDEX of a job")
    _target(p)
    p.add_argument(
        "--cells", required=True, nargs="+", help="the cells to repaint, like 1,2,5 (row by row from the top left)"
    )
    p.add_argument("prompt", nargs="?", help="a new prompt for the region (default: the job's)")
    submit.add_wait_options(p)
    p.set_defaults(func=cmd_region)

    p = sub.add_parser("zoom", help="Zoom Out: shrink image INDEX of a job into a larger canvas and paint the border")
    _target(p)
    p.add_argument("--factor", default="2", help="how far to zoom out, 1.0 to 2.0 (default 2)")
    p.add_argument("--ar", help="a new aspect ratio for the canvas, like 3:2 (Custom Zoom)")
    submit.add_wait_options(p)
    p.set_defaults(func=cmd_zoom)

    p = sub.add_parser("pan", help="Pan: grow image INDEX of a job by half in one direction and paint the new strip")
    _target(p)
    p.add_argument("direction", choices=DIRECTIONS)
    submit.add_wait_options(p)
    p.set_defaults(func=cmd_pan)

    p = sub.add_parser("square", help="Make Square: outpaint image INDEX of a job to 1:1")
    _target(p)
    submit.add_wait_options(p)
    p.set_defaults(func=cmd_square)
