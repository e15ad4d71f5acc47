"""One structured log line per job state change, and the job metrics that go
with it. The store calls `changed` wherever a state is written (submit, start,
finish, re-queue), so the bot, every worker and the sweeps log and count the
same way.

The line is `job {json}`: job id, kind, state, attempt, user, guild, channel,
model, lane, worker, and the wait and run times once known. The fields are
picked one by one: the record's interaction token never reaches a log."""

from __future__ import annotations

import json
import logging
from typing import Any

from shared import metrics
from shared.job import JobRecord, JobState

logger = logging.getLogger(__name__)


def fields(job: JobRecord, reason: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "job": job.id,
        "kind": str(job.kind),
        "state": str(job.state),
        "attempt": job.attempts,
        "user": job.user_id,
        "guild": job.reply.guild_id,
        "channel": job.reply.channel_id,
        "model": job.model,
        "lane": job.lane,
        "worker": job.worker,
    }
    if job.started_at is not None:
        out["wait_s"] = round(job.started_at - job.created_at, 3)
    if job.started_at is not None and job.finished_at is not None:
        out["run_s"] = round(job.finished_at - job.started_at, 3)
    if job.error:
        out["error"] = job.error[:200]
    if reason:
        out["reason"] = reason
    return out


def changed(job: JobRecord, reason: str | None = None) -> None:
    """`job` has just been written in its new state."""
    line = fields(job, reason)
    metrics.JOBS.labels(line["kind"], line["state"], job.model, job.lane).inc()
    if job.state == JobState.RUNNING and "wait_s" in line:
        metrics.JOB_WAIT.labels(job.model, job.lane).observe(max(0.0, line["wait_s"]))
    if job.finished and "run_s" in line:
        metrics.JOB_RUN.labels(line["kind"], job.model, job.lane).observe(max(0.0, line["run_s"]))
    logger.info("job %s", json.dumps(line, separators=(",", ":")))
