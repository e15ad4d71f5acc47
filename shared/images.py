"""Images in Redis: each job's results and inputs, kept `RESULT_TTL_S` where
every worker on every host can read them. Past the TTL a result is
regenerated from the job's stored seeds (the worker's handlers do that)."""

from __future__ import annotations

import redis

from shared import keys
from shared.connection import redis_errors
from shared.job import JobRecord
from shared.settings import Settings


@redis_errors
class ImageStore:
    def __init__(self, conn: redis.Redis, settings: Settings) -> None:
        self._redis = conn
        self.ttl_s = settings.result_ttl_s

    # -- results ------------------------------------------------------------
    def write(self, pipe: redis.client.Pipeline, job_id: str, images: list[bytes], grid: bytes | None) -> None:
        """Queue the writes of a job's images on `pipe` (the store's fenced transaction)."""
        for i, data in enumerate(images, start=1):
            pipe.set(keys.image(job_id, i), data, ex=self.ttl_s)
        if grid is not None:
            pipe.set(keys.grid(job_id), grid, ex=self.ttl_s)

    def put(self, job_id: str, images: list[bytes], grid: bytes | None) -> None:
        """Store images made again from seeds (no attempt to fence: any copy is the same)."""
        with self._redis.pipeline() as pipe:
            self.write(pipe, job_id, images, grid)
            pipe.execute()

    def image(self, job_id: str, index: int) -> bytes | None:
        return self._redis.get(keys.image(job_id, index))

    def grid(self, job_id: str) -> bytes | None:
        return self._redis.get(keys.grid(job_id))

    def result(self, job: JobRecord) -> bytes | None:
        """The picture a job's result shows: its grid when it made several images,
        else its one image. None before it is done and after the TTL."""
        return self.grid(job.id) if job.images > 1 else self.image(job.id, 1)

    def forget(self, job_id: str, count: int = 4) -> None:
        """Drop a job's images now, as the TTL would (an admin's clean-up, tests)."""
        self._redis.delete(keys.grid(job_id), *[keys.image(job_id, i) for i in range(1, count + 1)])

    # -- inputs -------------------------------------------------------------
    def put_input(self, job_id: str, name: str, data: bytes) -> None:
        self._redis.set(keys.input_image(job_id, name), data, ex=self.ttl_s)

    def input(self, job_id: str, name: str) -> bytes | None:
        return self._redis.get(keys.input_image(job_id, name))
