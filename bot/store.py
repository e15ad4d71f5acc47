"""The async face of the job store: every blocking Redis call the bot makes,
each in `asyncio.to_thread`, so a slow Redis never stalls the gateway
heartbeat. A step that needs several calls is one method here (one thread
hop); errors are the store's (QueueUnavailable, JobNotFound, …)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from shared.claims import Earlier
from shared.grid import decode_image, encode_for_upload
from shared.job import JobRecord
from shared.messages import file_stem
from shared.settings import Settings
from shared.store import JobStore, WaitingStatus

T = TypeVar("T")


class AsyncStore:
    def __init__(self, store: JobStore) -> None:
        self.sync = store

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- submitting --------------------------------------------------------------
    async def resolve_lane(self, user_id: int, role_ids: frozenset[int], requested: str | None) -> str:
        """The lane a new job takes (the prompt's, the user's default, fast; turbo if granted)."""
        return await self._call(self.sync.policy.resolve_lane, user_id, role_ids, requested)

    async def prepare(self, job: JobRecord) -> WaitingStatus:
        """Everything submit would refuse (Redis down, no worker for the model, a
        prompt the model cannot take), checked before the waiting line is shown;
        returns what that line says: the place the job will take, its ETA…"""

        def prepare() -> WaitingStatus:
            self.sync.check(job)
            return self.sync.waiting_status(job, enqueued=False)

        return await self._call(prepare)

    async def submit(
        self,
        job: JobRecord,
        message_id: int | None,
        role_ids: frozenset[int] = frozenset(),
        shown: str | None = None,
    ) -> None:
        """Queue a prepared job whose waiting line is message `message_id` (saying
        `shown`). The message → job link comes first, so ❌ works from the first moment."""

        def submit() -> None:
            if message_id is not None:
                self.sync.claims.remember_message(message_id, job.id)
            self.sync.submit(job, check=False, role_ids=role_ids)
            if shown is not None:
                self.sync.claims.note_shown(job.id, shown)

        await self._call(submit)

    async def jobs_of(self, user_id: int) -> list[JobRecord]:
        return await self._call(self.sync.jobs_of, user_id)

    async def set_default_lane(self, user_id: int, lane: str, role_ids: frozenset[int] = frozenset()) -> None:
        await self._call(self.sync.policy.set_default_lane, user_id, lane, role_ids)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Any other store call (the admin commands': reads and writes of policy)."""
        return await self._call(fn, *args, **kwargs)

    # -- records -------------------------------------------------------------------
    async def get(self, job_id: str) -> JobRecord:
        return await self._call(self.sync.get, job_id)

    async def job_for_message(self, message_id: int) -> str | None:
        return await self._call(self.sync.claims.job_for_message, message_id)

    async def delivered(self, job_id: str) -> bool:
        return await self._call(self.sync.claims.delivered, job_id) is not None

    async def cancel(self, job_id: str, canceller_id: int) -> JobRecord | None:
        return await self._call(self.sync.cancel, job_id, canceller_id)

    async def result_upload(self, job: JobRecord, settings: Settings) -> tuple[bytes, str] | None:
        """The picture a job's result shows, sized for an upload; None once expired."""

        def upload() -> tuple[bytes, str] | None:
            data = self.sync.images.result(job)
            if data is None:
                return None
            if len(data) <= settings.upload_limit_bytes:
                return data, f"{file_stem(job)}.png"
            return encode_for_upload(decode_image(data), settings.upload_limit_bytes, stem=file_stem(job), png=data)

        return await self._call(upload)

    # -- U<i> claims --------------------------------------------------------------
    async def reserve_child(self, parent_id: str, action: str, index: int, job_id: str) -> Earlier | None:
        return await self._call(self.sync.claims.reserve_child, parent_id, action, index, job_id)

    async def keep_child(self, parent_id: str, action: str, index: int, job_id: str) -> None:
        await self._call(self.sync.claims.keep_child, parent_id, action, index, job_id)

    async def release_child(self, parent_id: str, action: str, index: int, job_id: str) -> None:
        await self._call(self.sync.claims.release_child, parent_id, action, index, job_id)

    # -- images (issue 19: the region picker's preview) ------------------------------
    async def image(self, job_id: str, index: int) -> bytes | None:
        """Image `index` of a job's result; None once expired."""
        return await self._call(self.sync.images.image, job_id, index)

    async def put_inputs(self, job_id: str, images: list[tuple[str, bytes]]) -> None:
        """A job's input images (Daydream's own PNGs), stored before it is submitted."""

        def put() -> None:
            for name, data in images:
                self.sync.images.put_input(job_id, name, data)

        await self._call(put)
