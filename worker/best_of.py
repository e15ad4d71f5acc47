"""Best four of N: a grid samples N candidates in one batch and keeps the four
that a ranker rates closest to the prompt, best first.

The ranker is the engine's own (`engine.rank`, the embedded model's scorer
against its reading of the prompt) or, for a real checkpoint, a CLIP model
the admin configures (`RANK_CLIP`, worker/engines/clip_rank.py). Without one
a grid samples four and keeps them. N is the `BEST_OF` setting; `--chaos`
lowers it, down to no ranking at 100: chaos asks for variety, ranking picks
the most literal four.

The record keeps the seed of every image shown (`kept_seeds`) and how many
candidates there were (`candidates`): regenerating an expired result samples
the same batch again and takes those seeds' images, with no ranking. The
same batch, not just the four seeds: under bfloat16 a batch of eight and a
batch of four differ by a few pixel levels, and a result must come back the
same."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import lru_cache

from PIL import Image

from shared.params import Params
from shared.settings import Settings
from worker.engines.base import Engine, ProgressFn, RankFn, Request, Understanding

logger = logging.getLogger(__name__)

GRID = 4
MAX_CHAOS = 100
# Extra candidate k of seed s is seed s + SEED_STRIDE * k (mod 2**32): far from
# the seed + 1, + 2, + 3 of a grid's own images, so no two candidates share a seed.
SEED_STRIDE = 0x9E3779B1
SEED_SPACE = 2**32


@dataclass(frozen=True)
class Picked:
    images: list[Image.Image]
    kept_seeds: list[int]  # the seed of each image, in order; empty when nothing was ranked
    scores: list[float]  # the ranker's score of each image kept (empty: not ranked)
    candidates: int = 0  # how many were sampled (0: not ranked)


def chaos_of(params: Params) -> int:
    """The job's --chaos (0 when it has none; also from a record written by a version that knows it)."""
    value = getattr(params, "chaos", None)
    if value is None:
        value = params.unknown.get("chaos")
    try:
        return max(0, min(MAX_CHAOS, int(value or 0)))
    except (TypeError, ValueError):
        return 0


def candidate_count(best_of: int, chaos: int) -> int:
    """How many candidates a grid samples: `best_of` at chaos 0, falling linearly to four at chaos 100."""
    if best_of <= GRID:
        return GRID
    return GRID + round((best_of - GRID) * (1 - chaos / MAX_CHAOS))


def candidate_seeds(seeds: tuple[int, ...], count: int) -> tuple[int, ...]:
    """The grid's own seeds first, then more derived from them, `count` in all."""
    out = list(seeds)
    k = 1
    while len(out) < count:
        for s in seeds:
            if len(out) == count:
                break
            out.append((s + SEED_STRIDE * k) % SEED_SPACE)
        k += 1
    return tuple(out[:count])


@lru_cache(maxsize=2)
def clip_ranker(source: str) -> RankFn:
    from worker.engines.clip_rank import ClipRanker

    return ClipRanker(source).rank


def ranker_for(engine: Engine, settings: Settings) -> RankFn | None:
    own = getattr(engine, "rank", None)
    if own is not None:
        return own
    if settings.rank_clip:
        return clip_ranker(settings.rank_clip)
    return None


def understanding(engine: Engine, prompt: str) -> Understanding | None:
    """What the engine read in the prompt, when it can say."""
    understand = getattr(engine, "understand", None)
    return understand(prompt) if understand is not None else None


def sample_grid(
    engine: Engine,
    req: Request,
    settings: Settings,
    params: Params,
    kept_seeds: list[int],
    progress: ProgressFn | None,
    candidates: int = 0,
) -> Picked:
    """The four images of a grid: the best four of N, or the kept four of an
    earlier run of `candidates` candidates (regenerated from the same batch)."""
    if kept_seeds:
        seeds = candidate_seeds(req.seeds, max(candidates, len(req.seeds)))
        if not set(kept_seeds) <= set(seeds):  # a record from elsewhere: the four seeds alone
            seeds = tuple(kept_seeds)
        images = engine.generate(replace(req, seeds=seeds), progress)
        return Picked([images[seeds.index(s)] for s in kept_seeds], list(kept_seeds), [], len(seeds))
    rank = ranker_for(engine, settings)
    count = candidate_count(settings.best_of, chaos_of(params))
    read = understanding(engine, req.prompt)
    if read is not None and not read.in_world:
        rank = None  # nothing to rank against: the scorer would only pick the flattest backgrounds
    if rank is None or count <= len(req.seeds) or len(req.seeds) != GRID:
        return Picked(engine.generate(req, progress), [], [])
    seeds = candidate_seeds(req.seeds, count)
    images = engine.generate(replace(req, seeds=seeds), progress)
    scores = rank(req.prompt, images)
    # Best first; of equal scores the earlier candidate (the grid's own seeds come first).
    order = sorted(range(len(images)), key=lambda i: (-scores[i], i))[:GRID]
    logger.info("kept candidates %s of %d (scores %s)", order, count, [round(scores[i], 3) for i in order])
    return Picked([images[i] for i in order], [seeds[i] for i in order], [scores[i] for i in order], count)
