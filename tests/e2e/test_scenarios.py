"""Issue 4's scenarios, end to end: the real `daydream bot` process, a real
worker process and a real redis-server, driven through the Discord stand-in
the way a member does — slash commands and button clicks — and judged by what
Discord (the stand-in) recorded: acknowledgements, messages, edits, uploads.

Every wait is on an event: something the stand-in records (`wait_for`), a
process's log line, a Redis keyspace notification. Prompts use few sampling
steps to keep jobs short on a CPU."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio

from shared.custom_id import Action, parse
from shared.job import JobKind, JobRecord, JobState

from .scenario_helpers import (
    ACK_DEADLINE_S,
    ANSWER_WAIT_S,
    GRID_LABELS,
    MAKE_SQUARE,
    PROGRESS_LINE,
    UPSCALE_BUTTONS,
    UPSCALE_LABELS,
    WAITING_LINE,
    Deployment,
    button_labels,
    channel_post_of,
    click_result,
    command_result,
    finished,
    first_progress,
    grid_ids,
    image_size,
    imagine,
    job_count,
    job_of,
    private_answer,
    waiting_line_shown,
    worker_heartbeat,
)
from .standin import (
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    TEXT_PERMISSIONS,
    Interaction,
    Message,
)

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.slow,
    pytest.mark.timeout(240),
]

TEXT = "a red circle on a blue background"
PROMPT = f"{TEXT} --ar 3:2 --steps 2"  # 3:2, so that a swapped width and height shows
PUBLIC_GONE_WAIT_S = 10.0  # for the bot to delete a public line it no longer needs


# -- the first grid: scenario 1 checks it, scenarios 2, 3 and 6 click on it ---------------


@dataclass(frozen=True)
class Grid:
    interaction: Interaction
    message: Message
    job_id: str
    record: JobRecord


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def first_grid(daydream: Deployment) -> Grid:
    await daydream.ensure_running()
    it = await imagine(daydream, PROMPT)
    message = await command_result(daydream, it)
    job_id = job_of(message)
    return Grid(it, message, job_id, await finished(daydream, job_id))


# -- 1. /imagine: deferred, waiting line and progress, then the grid ----------------------


async def test_imagine_is_deferred_then_shows_progress_then_the_grid(deployment: Deployment, first_grid: Grid) -> None:
    standin, it, message = deployment.standin, first_grid.interaction, first_grid.message
    member = standin.member

    # Acknowledged within Discord's 3 s, as "thinking…" (type 5), in public.
    first = standin.interaction_responses(it.id)[0]
    assert first.type == DEFERRED_CHANNEL_MESSAGE and first.accepted, first
    assert it.ack_latency_s is not None and it.ack_latency_s < ACK_DEADLINE_S, it.ack_latency_s
    assert it.acknowledged and not message.ephemeral and not message.loading

    # The same message moved through the waiting line and progress edits to the grid.
    assert message.id == it.original_message_id
    contents = [r.content for r in message.revisions]
    assert message.revisions[0].flags & (1 << 7), "the first state is Discord's 'thinking…'"
    between = contents[1:-1]
    assert between and WAITING_LINE.search(between[0]), contents
    assert all(WAITING_LINE.search(c) or PROGRESS_LINE.search(c) for c in between), contents
    assert all(c.startswith(f"**{TEXT}** - <@{member.id}>") for c in between), contents

    # The grid: the requester mentioned, an image of 2W×2H, the nine buttons.
    record = await finished(deployment, first_grid.job_id)
    assert record.state == JobState.DONE and record.kind == JobKind.IMAGINE
    assert record.user_id == member.id and record.reply.message_id == message.id
    # Under the title, what the embedded model understood of the prompt (issue 21).
    assert message.content == f"**{TEXT}** - <@{member.id}> (fast)\nUnderstood: a red circle on blue"
    assert message.mentions == [member.id]
    assert record.width and record.height and record.width > record.height  # --ar 3:2 reached the worker
    assert image_size(message) == (2 * record.width, 2 * record.height)
    assert message.custom_ids == grid_ids(first_grid.job_id)
    assert button_labels(message) == GRID_LABELS


# -- 2. U2, V3 and 🔄 are answered with the right messages; a second U2 is not recomputed -----


async def test_grid_buttons_make_the_right_follow_ups(deployment: Deployment, first_grid: Grid) -> None:
    standin, store = deployment.standin, deployment.store
    member, grid, parent = standin.member, first_grid.message, first_grid.job_id
    tile = (first_grid.record.width or 0, first_grid.record.height or 0)
    grid_edits = grid.edits

    u2 = await standin.click(grid.id, f"dd:u:{parent}:2")
    v3 = await standin.click(grid.id, f"dd:v:{parent}:3")
    reroll = await standin.click(grid.id, f"dd:r:{parent}:0")
    upscaled, varied, rerolled = await asyncio.gather(
        click_result(deployment, u2), click_result(deployment, v3), click_result(deployment, reroll)
    )
    for click in (u2, v3, reroll):
        first = standin.interaction_responses(click.id)[0]
        assert first.type == DEFERRED_UPDATE_MESSAGE and first.accepted, first  # silent: the grid stays
        assert first.latency_s < ACK_DEADLINE_S, first.latency_s
    assert grid.edits == grid_edits and grid.custom_ids == grid_ids(parent)

    # U2: image #2 alone, twice the tile, with the four buttons of an upscale.
    assert upscaled.content == f"**{TEXT}** - Image #2 <@{member.id}> (fast)" and not upscaled.ephemeral
    assert image_size(upscaled) == (2 * tile[0], 2 * tile[1])
    assert button_labels(upscaled) == [*UPSCALE_LABELS, MAKE_SQUARE]  # 3:2: not square
    upscale_job = job_of(upscaled)
    assert [parse(c).action for c in upscaled.custom_ids] == [*UPSCALE_BUTTONS, Action.SQUARE]
    record = await finished(deployment, upscale_job)
    assert (record.kind, record.parent_id, record.index, record.state) == (JobKind.UPSCALE, parent, 2, JobState.DONE)

    # V3: a new grid of variations, with its own nine buttons.
    assert varied.content == f"**{TEXT}** - Variations by <@{member.id}> (fast)"
    assert image_size(varied) == (2 * tile[0], 2 * tile[1])
    variation_job = job_of(varied)
    assert varied.custom_ids == grid_ids(variation_job)
    record = store.get(variation_job)
    assert (record.kind, record.parent_id, record.index) == (JobKind.VARIATION, parent, 3)

    # 🔄: the same prompt, new seeds, a new grid.
    assert rerolled.content == f"**{TEXT}** - <@{member.id}> (fast)\nUnderstood: a red circle on blue"
    assert image_size(rerolled) == (2 * tile[0], 2 * tile[1])
    reroll_job = job_of(rerolled)
    assert rerolled.custom_ids == grid_ids(reroll_job)
    record = store.get(reroll_job)
    assert (record.kind, record.parent_id) == (JobKind.REROLL, parent)
    assert record.seeds != first_grid.record.seeds
    assert len({upscale_job, variation_job, reroll_job, parent}) == 4

    # U2 again, by someone else: a private link to the upscale, nothing recomputed.
    jobs = job_count(store)
    public = len(standin.messages(include_ephemeral=False))
    again = await standin.click(grid.id, f"dd:u:{parent}:2", user=standin.add_member("second-clicker"))
    answer = await private_answer(deployment, again)
    assert standin.interaction(again.id).acknowledged
    link = f"https://discord.com/channels/{standin.guild_id}/{standin.channel_id}/{upscaled.id}"
    assert link in answer.content and "Image #2" in answer.content, answer.content
    assert job_count(store) == jobs
    assert len(standin.messages(include_ephemeral=False)) == public


# -- 3. The bot is killed and restarted: old buttons work, the running job delivers --------


async def test_bot_killed_mid_job_then_restarted(deployment: Deployment, first_grid: Grid) -> None:
    standin, store, bot = deployment.standin, deployment.store, deployment.bot
    member = standin.member
    prompt = "a blue square on a yellow background"

    # Killed right after the job's first progress edit: three of its four steps are still to come.
    running = await imagine(deployment, f"{prompt} --steps 4")
    await first_progress(deployment, running)
    running_job = next(r for r in store.recent(20) if r.reply.interaction_token == running.token)
    assert running_job.state == JobState.RUNNING, "the job finished before the bot died"
    await bot.kill()
    assert bot.returncode == -signal.SIGKILL

    await bot.start(standin)
    session = standin.live_session()
    assert session is not None and standin.identify_count >= 2

    # A button on a message posted before the restart.
    old_click = await standin.click(first_grid.message.id, f"dd:u:{first_grid.job_id}:1")
    upscaled = await click_result(deployment, old_click)
    first = standin.interaction_responses(old_click.id)[0]
    assert old_click.session_id == session.id
    assert first.accepted and first.latency_s < ACK_DEADLINE_S, first
    assert upscaled.content == f"**{TEXT}** - Image #1 <@{member.id}> (fast)"
    assert button_labels(upscaled) == [*UPSCALE_LABELS, MAKE_SQUARE]

    # The job that was running when the bot died delivered its grid on its own message.
    grid = await command_result(deployment, running)
    assert grid.content == f"**{prompt}** - <@{member.id}> (fast)\nUnderstood: a blue square on yellow"
    assert grid.custom_ids == grid_ids(running_job.id)
    assert (await finished(deployment, running_job.id)).state == JobState.DONE


# -- 4. Past the interaction token's lifetime: a channel message that mentions the user ------


async def test_job_waiting_past_the_token_lifetime_is_posted_in_the_channel(deployment: Deployment) -> None:
    standin = deployment.standin
    member = standin.member
    prompt = "a green triangle on a white background"

    since = max((m.id for m in standin.messages()), default=0)
    waiting = await imagine(deployment, f"{prompt} --steps 2")
    await waiting_line_shown(deployment, waiting)
    # Its 15 minutes are up before any worker has taken it (the bot enqueues after this edit).
    standin.expire_token(waiting.id)

    posted = await channel_post_of(deployment, prompt, member, since)
    job_id = job_of(posted)
    record = await finished(deployment, job_id)
    assert record.reply.interaction_token == waiting.token and record.state == JobState.DONE
    assert posted.via == "bot" and posted.channel_id == standin.channel_id and not posted.ephemeral
    assert posted.mentions == [member.id]
    assert posted.content == f"**{prompt}** - <@{member.id}> (fast)\nUnderstood: a green triangle on white"
    assert posted.custom_ids == grid_ids(job_id)
    assert image_size(posted) == (2 * (record.width or 0), 2 * (record.height or 0))
    assert record.reply.message_id == posted.id

    # Posted once, and not through the dead token.
    assert [m.id for m in standin.messages() if m.custom_ids == grid_ids(job_id)] == [posted.id]
    original = standin.message(waiting.original_message_id or 0)
    # Untouched past the token: its ❌ stays (a click on it now says the job has ended).
    assert not original.attachments and original.custom_ids == [f"dd:x:{job_id}:0"]
    refused = standin.requests_to(f"PATCH /webhooks/*/{waiting.token}/messages/@original")
    assert 401 in [r.status for r in refused], "the worker never met the expired token"


# -- 5. 429 then 5xx on message creation: delivered once, after the advertised wait ----------


async def test_rate_limit_and_server_error_on_delivery(deployment: Deployment) -> None:
    standin = deployment.standin
    member = standin.member
    prompt = "a yellow star on a black background"
    retry_after = 1.5

    since = max((m.id for m in standin.messages()), default=0)
    first_request = len(standin.requests)
    it = await imagine(deployment, f"{prompt} --steps 2")
    await waiting_line_shown(deployment, it)
    standin.expire_token(it.id)  # the result goes out as a new channel message
    limited = standin.fail("POST /channels/*/messages", status=429, retry_after=retry_after)
    broken = standin.fail("POST /channels/*/messages", status=502)

    posted = await channel_post_of(deployment, prompt, member, since)
    job_id = job_of(posted)
    posts = [r for r in standin.requests[first_request:] if r.key == f"POST /channels/{standin.channel_id}/messages"]
    assert [(r.status, r.fault) for r in posts] == [(429, "injected"), (502, "injected"), (200, None)]
    assert (limited.hits, broken.hits) == (1, 1)
    assert posts[1].received_at - posts[0].received_at >= retry_after
    assert [m.id for m in standin.messages() if m.custom_ids == grid_ids(job_id)] == [posted.id]
    record = await finished(deployment, job_id)
    assert record.state == JobState.DONE and record.reply.message_id == posted.id


# -- 6. Bad input through the real command path: clear private answers, and the bot serves on ----


async def post_as_the_bot(deployment: Deployment, content: str, custom_ids: list[str]) -> Message:
    """A message with these buttons, posted with the bot token as Daydream's own messages are.

    Discord only delivers clicks on buttons a message carries, and discord.py drops
    any other (`ViewStore.schedule_dynamic_item_call`): a forged custom_id reaches the
    bot only on a message of the bot's application — say, one left by an older version."""
    standin = deployment.standin
    buttons = [{"type": 2, "style": 2, "label": f"B{n}", "custom_id": c} for n, c in enumerate(custom_ids)]
    payload = {"content": content, "components": [{"type": 1, "components": buttons}]}
    headers = {"Authorization": f"Bot {standin.token}"}
    url = f"{standin.api_base}/channels/{standin.channel_id}/messages"
    async with aiohttp.ClientSession() as http, http.post(url, json=payload, headers=headers) as response:
        assert response.status == 200, await response.text()
        return standin.message(int((await response.json())["id"]))


async def answer_of(deployment: Deployment, it: Interaction) -> Message | None:
    """The message that answered `it` (its latest follow-up, else its own response
    message), or None when the bot did not even acknowledge it in time."""
    standin = deployment.standin
    try:
        # Past Discord's deadline the user has seen "This interaction failed": no point waiting longer.
        await deployment.bot.until(standin.wait_for(lambda: it.callbacks, ACK_DEADLINE_S + 1), "an acknowledgement")
    except TimeoutError:
        return None

    def answered() -> Message | None:
        if it.followup_ids:
            return standin.message(it.followup_ids[-1])
        if it.response_type == CHANNEL_MESSAGE and it.original_message_id:
            return standin.message(it.original_message_id)
        return None

    return await deployment.bot.until(standin.wait_for(answered, ANSWER_WAIT_S), "its answer")


async def test_bad_input_is_answered_privately_and_the_bot_keeps_serving(
    deployment: Deployment, first_grid: Grid
) -> None:
    standin, store, bot = deployment.standin, deployment.store, deployment.bot
    jobs = job_count(store)
    problems: list[str] = []  # every case is checked, then all that went wrong is reported

    async def expect_private_answer(case: str, it: Interaction, text: str) -> None:
        answer = await answer_of(deployment, it)
        if answer is None:
            problems.append(f"{case}: not acknowledged at all (the user sees 'This interaction failed')")
            return
        latency = it.ack_latency_s
        if latency is None or latency >= ACK_DEADLINE_S or not it.acknowledged:
            problems.append(f"{case}: not acknowledged within {ACK_DEADLINE_S} s ({latency})")
        if not answer.ephemeral or answer.deleted or text not in answer.content:
            problems.append(f"{case}: expected a visible ephemeral answer with {text!r}, got {answer.summary()}")

        def public() -> list[Message]:
            return [m for m in standin.messages() if m.interaction_id == it.id and not m.ephemeral]

        try:  # the bot may take its public "thinking…" line down after answering
            await standin.wait_for(lambda: not public(), PUBLIC_GONE_WAIT_S)
        except TimeoutError:
            problems.append(f"{case}: public messages left behind: {[m.summary() for m in public()]}")

    # Prompts the parser refuses, answered at once.
    empty = await imagine(deployment, "", validate=False)  # Discord's client would not send it
    await expect_private_answer("empty prompt", empty, "prompt is empty")
    too_long = await imagine(deployment, "a red circle " * 80)  # 1040 characters; Discord allows 6000
    await expect_private_answer("over-long prompt", too_long, "the limit is 1000")

    # Forged buttons on a message of the bot's.
    job = first_grid.job_id
    forged = {
        f"dd:u:{'0' * 32}:2": "no longer exists",  # a well-formed id of an unknown job
        "dd:v:not-a-job:3": "malformed job id",
        f"dd:u:{job}:7": "images 1 to 4",
        f"dd:zz:{job}:1": "not one Daydream knows",
        f"dd:u:{job}": "",  # truncated: Daydream's prefix, so Daydream's to answer
    }
    message = await post_as_the_bot(deployment, "buttons from an older Daydream", list(forged))
    for custom_id, text in forged.items():
        click = await standin.click(message.id, custom_id)
        await expect_private_answer(f"click on {custom_id!r}", click, text)
    if job_count(store) != jobs:
        problems.append(f"bad input made jobs: {job_count(store) - jobs}")
    if not bot.alive:
        problems.append(f"the bot died: {bot.returncode}")

    # Redis down: deferred at once, then a clear private answer.
    deployment.redis_server.stop()
    try:
        down = await imagine(deployment, PROMPT)
        await expect_private_answer("/imagine with Redis down", down, "(Redis)")
    finally:
        deployment.redis_server.start()

    # And the bot keeps serving: a normal /imagine afterwards is delivered.
    await worker_heartbeat(deployment)
    after = await imagine(deployment, PROMPT)
    result = await command_result(deployment, after)
    assert result.custom_ids == grid_ids(job_of(result)) and bot.alive
    assert not problems, "\n".join(problems)


# -- 7. In a thread and a forum post: Send Messages in Threads is what posting there needs ---------


async def test_imagine_in_a_thread_and_a_forum_post(deployment: Deployment) -> None:
    standin = deployment.standin
    member = standin.member
    thread = await standin.add_thread("daydreams")
    forum = await standin.add_forum("gallery")
    post = await standin.add_forum_post(forum, "my lighthouse", "what would it look like?")
    prompt = "a white square on a green background"
    try:
        # Send Messages in Threads, not Send Messages: the post past the token still lands.
        standin.bot_permissions = TEXT_PERMISSIONS & ~SEND_MESSAGES
        for channel_id in (thread, post):
            since = max((m.id for m in standin.messages()), default=0)
            it = await imagine(deployment, f"{prompt} --steps 2", channel_id=channel_id)
            await waiting_line_shown(deployment, it)
            standin.expire_token(it.id)
            posted = await channel_post_of(deployment, prompt, member, since, channel_id)
            assert posted.channel_id == channel_id and posted.via == "bot"
            assert posted.custom_ids == grid_ids(job_of(posted))

        # Without it, the bot says so at once and queues nothing.
        standin.bot_permissions = TEXT_PERMISSIONS & ~SEND_MESSAGES_IN_THREADS
        jobs = job_count(deployment.store)
        refused = await imagine(deployment, f"{prompt} --steps 2", channel_id=thread)
        answer = await private_answer(deployment, refused)
        assert "Send Messages in Threads" in answer.content, answer.content
        assert job_count(deployment.store) == jobs
    finally:
        standin.bot_permissions = TEXT_PERMISSIONS
