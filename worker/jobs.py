"""The job function's name before the pipeline moved to worker/pipeline.py.

RQ stores the dotted name of the job function in every queued job, so jobs
enqueued by an earlier version name `worker.jobs.run_job`. Keep this module
until the queues of those versions have drained (shared/keys.LEGACY_JOB_FUNC)."""

from worker.pipeline import run_job

__all__ = ["run_job"]
