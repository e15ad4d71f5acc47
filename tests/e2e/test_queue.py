"""The fair queue through the Discord stand-in, with the real bot and a real
worker: a waiting line shows its place and an estimate and moves up as the
line does (the workers edit it), and ❌ under it cancels for its requester."""

from __future__ import annotations

import re

import pytest

from shared import keys
from shared.job import JobState
from tests.e2e.scenario_helpers import (
    ANSWER_WAIT_S,
    JOB_WAIT_S,
    Deployment,
    command_result,
    finished,
    first_progress,
    imagine,
    job_of,
    redis_until,
    waiting_line_shown,
)
from tests.e2e.standin import Message

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow, pytest.mark.timeout(240)]

# Eight candidates a grid (the shipped BEST_OF; the suite's workers sample four, tests/conftest.py),
# so the long job below outlasts the line's moves.
DEPLOYMENT_ENV = {"BEST_OF": "8"}
PLACE = re.compile(r"\(Waiting to start, #(\d+) in queue(?:, ~(\d+) (s|min))?\)$")


def place_of(message: Message) -> tuple[int, bool] | None:
    """(#N, whether an estimate shows) of a waiting line, or None."""
    found = PLACE.search(message.content)
    return (int(found[1]), found[2] is not None) if found else None


async def test_a_waiting_line_shows_its_place_and_moves_up(deployment: Deployment) -> None:
    standin = deployment.standin
    # One job through first, so the worker knows how long a job of this size takes (the estimate).
    warm = await imagine(deployment, "a white circle on a black background --steps 4")
    await finished(deployment, job_of(await command_result(deployment, warm)))
    # A long job holds the worker; two members queue behind it.
    # 100 steps of eight candidates (best four of eight): about ten seconds on a quiet 2-core
    # machine, so it still holds the worker when the second member cancels and the third's line
    # moves up (24 steps finished first on a quiet machine: the line then never showed #1).
    long_job = await imagine(deployment, "a red square on a blue background --steps 100")
    await first_progress(deployment, long_job)
    second, third = standin.add_member("second"), standin.add_member("third")
    two = await imagine(deployment, "a green star on a white background --steps 4", user=second)
    await waiting_line_shown(deployment, two)

    # The line is shown before its job is queued (so a fast worker's result can't be overwritten):
    # wait for the job itself, or the third member's place could be counted without it.
    message_key = keys.message(two.original_message_id or 0)

    async def job_id_of_two(client):
        raw = await client.get(message_key)
        return raw.decode() if raw is not None else None

    two_id = await redis_until(deployment, message_key, job_id_of_two, "the second member's line → job")

    async def two_stored(client):
        return True if await client.exists(keys.job(two_id)) else None

    await redis_until(deployment, keys.job(two_id), two_stored, "the second member's job to be queued")
    three = await imagine(deployment, "a yellow triangle on a black background --steps 4", user=third)
    await waiting_line_shown(deployment, three)
    line_two = standin.message(two.original_message_id or 0)
    line_three = standin.message(three.original_message_id or 0)
    assert place_of(line_two) == (1, True) and place_of(line_three) == (2, True), (line_two.content, line_three.content)

    # The second member cancels with the ❌ under their line: theirs says so, the third moves up.
    [cross] = line_two.custom_ids
    await standin.click(line_two.id, cross, user=second)
    await deployment.bot.until(
        standin.wait_for(lambda: "cancelled by" in line_two.content, ANSWER_WAIT_S), "the cancelled line"
    )
    assert not line_two.custom_ids
    await deployment.worker.until(
        standin.wait_for(lambda: (place_of(line_three) or (0, False))[0] == 1, JOB_WAIT_S), "the line to move up"
    )
    assert line_three.custom_ids == [cross.replace(cross.split(":")[2], line_job(deployment, line_three))]
    # The long job's requester cancels it (under load it would hold the worker for minutes),
    # and the third member's job runs to its result.
    long_line = standin.message(long_job.original_message_id or 0)
    [long_cross] = long_line.custom_ids
    await standin.click(long_line.id, long_cross)
    assert (await command_result(deployment, three)).attachments
    assert (await finished(deployment, line_job(deployment, long_line))).state == JobState.CANCELLED


def line_job(deployment: Deployment, line: Message) -> str:
    job_id = deployment.store.claims.job_for_message(line.id)
    assert job_id is not None
    return job_id
