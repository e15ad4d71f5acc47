"""Daydream's error hierarchy, after discord.py's `ext/commands/errors.py`:
a middle layer says whose problem it is, and each error carries its data.

* `UserError`: the prompt, a parameter, a click or a command was not
  acceptable; the user can fix it (exit code 2).
* `Unavailable`: a service Daydream needs is not there right now (Redis, a
  worker for the model); trying again later may work.
* `JobFailed`: an accepted job could not produce or deliver its result.
* `ConfigError`: the host's environment is wrong; no Discord user can fix it.

The message of every error is written for the person who reads it (a Discord
member or an admin): what happened, and what to do. The CLI's exit code comes
from the class (`exit_code`), `--json` from `to_dict()`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DaydreamError(Exception):
    """Base class: an expected failure with a message fit for its reader."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def data(self) -> dict[str, Any]:
        """The fields this error carries besides its message (for `--json`)."""
        return {k: v for k, v in vars(self).items() if k != "message" and not k.startswith("_")}

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, **self.data()}


# -- the user's mistake ------------------------------------------------------------
class UserError(DaydreamError):
    """Something the user asked for was not acceptable; they can fix it."""

    exit_code = 2


class InvalidRequest(UserError):
    """The prompt, a parameter, a click or a command was not acceptable."""


class JobNotFound(UserError):
    """A job id that Redis does not know (never existed, or expired)."""

    def __init__(self, job_id: str, message: str | None = None) -> None:
        super().__init__(message or f"No job `{job_id}` is known (it never existed or has expired).")
        self.job_id = job_id


class NotAllowed(UserError):
    """The user may not do this (click someone else's buttons, cancel another's job)."""


class QueueFull(UserError):
    """Queue full: the user already has as many jobs waiting as they may."""

    def __init__(self, active: int, limit: int, jobs: list | None = None) -> None:
        super().__init__(
            f"Queue full: you already have {active} jobs waiting (the limit is {limit}). "
            "Wait for one to start, or cancel one (❌), then try again."
        )
        self.active = active
        self.limit = limit
        self._jobs = jobs or []  # the user's current jobs (records), for the ❌ buttons

    @property
    def jobs(self) -> list:
        return self._jobs


class PromptTooLong(InvalidRequest):
    """More tokens than the model's text encoder reads."""

    def __init__(self, tokens: int, limit: int, model: str, part: str = "prompt") -> None:
        what = "Your prompt" if part == "prompt" else "Your negative prompt (`--no`)"
        super().__init__(f"{what} is {tokens} tokens long; this model reads at most {limit}. Shorten it and try again.")
        self.part = part
        self.tokens = tokens
        self.limit = limit
        self.model = model


class Unsupported(InvalidRequest):
    """The model cannot do what the job needs (a task, a size)."""

    def __init__(self, model: str, message: str) -> None:
        super().__init__(message)
        self.model = model


class UnknownLora(Unsupported):
    """A LoRA the job's model does not have (unknown, or for another architecture)."""

    def __init__(self, lora: str, model: str, available: list[str], message: str) -> None:
        super().__init__(model, message)
        self.lora = lora
        self.available = available


class BadImage(InvalidRequest):
    """An input image (an attachment or a link) that Daydream will not read: the
    wrong kind of file, too large, too many pixels, or from a host it does not fetch from."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(message)
        self.source = source  # the file name or the link, as the user gave it


class PromptBlocked(NotAllowed):
    """A server's word filter matched the prompt (shared/wordfilter.py); nothing was queued.
    `job_id`: the held case an appeal names; `cooldown_s`: the cooldown this block began."""

    def __init__(self, message: str, rule: str, word: str, job_id: str, cooldown_s: float = 0.0) -> None:
        super().__init__(message)
        self.rule = rule
        self.word = word
        self.job_id = job_id
        self.cooldown_s = cooldown_s


class Banned(NotAllowed):
    """An admin banned the user from Daydream in this server. `first`: the first refusal
    since the ban (the one that explains it; later ones are short)."""

    def __init__(self, message: str, reason: str, first: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.first = first


class CoolingDown(NotAllowed):
    """Repeated blocked prompts: the user waits `retry_after_s` before the next request."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InvalidPrompt(InvalidRequest):
    """A prompt the parser could not read: what was written (`text`), the form it
    accepts and an example; `flag` when one flag was at fault."""

    def __init__(self, message: str, *, text: str = "", accepted: str = "", example: str = "", flag: str = "") -> None:
        super().__init__(message)
        self.text = text
        self.accepted = accepted
        self.example = example
        self.flag = flag


# -- a service is not there --------------------------------------------------------
class Unavailable(DaydreamError):
    """A service Daydream needs is not available right now."""

    exit_code = 4


class QueueUnavailable(Unavailable):
    """Redis cannot be reached."""

    NOT_QUEUED = (
        "Daydream's queue (Redis) cannot be reached right now, so your request was not queued. "
        "Try again in a minute; if it persists, tell a server admin."
    )

    exit_code = 4

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "Daydream's queue (Redis) cannot be reached right now. "
            "Try again in a minute; if it persists, tell a server admin."
        )


class NoWorkerAlive(Unavailable):
    """No live worker holds the model a job names."""

    exit_code = 3

    def __init__(self, model: str, served: list[str], message: str | None = None) -> None:
        if message is None:
            if served:
                names = ", ".join(f"`{name}`" for name in served)
                message = (
                    f"No image worker holds the model `{model}` right now, so your request was not queued. "
                    f"Models being served: {names}."
                )
            else:
                message = (
                    "No image worker is running right now, so your request was not queued. "
                    "Ask a server admin to start one with `daydream worker`."
                )
        super().__init__(message)
        self.model = model
        self.served = served


class ModelUnavailable(Unavailable):
    """The worker's MODEL could not be loaded (a wrong path or hub id)."""

    exit_code = 1


# -- an accepted job failed --------------------------------------------------------
class JobFailed(DaydreamError):
    """An accepted job could not produce or deliver its result."""

    exit_code = 1


class GenerationFailed(JobFailed):
    """The worker could not produce the images."""


class ResultTooLarge(JobFailed):
    """The result cannot be made small enough to upload."""


class DeliveryFailed(JobFailed):
    """Discord refused or kept failing the delivery of a result. `permanent`: it
    will refuse again (the channel is gone, or the bot may not post there)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ImageRefused(JobFailed):
    """The image check flagged the result in a channel whose policy is `refuse`."""

    def __init__(self, message: str, flagged: int) -> None:
        super().__init__(message)
        self.flagged = flagged


# -- the host's configuration ------------------------------------------------------
class ConfigError(DaydreamError):
    """An environment variable has a value Daydream cannot use."""

    exit_code = 2

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(message)
        self.variable = variable


class FleetFileError(ConfigError):
    """The fleet file (models.toml) is missing, unreadable, or wrong in an entry."""

    def __init__(self, file: str, entry: str | None, message: str) -> None:
        super().__init__("MODELS_FILE", message)
        self.file = file
        self.entry = entry


# -- internal signals (never shown to a user) ---------------------------------------
class Superseded(Exception):
    """A worker wrote for an attempt of a job that is no longer current: its lease
    lapsed and the job was re-queued (or it finished elsewhere). Every write a
    worker makes carries its attempt number, so a stale worker writes nothing."""

    def __init__(self, job_id: str, attempt: int, current: int | None) -> None:
        super().__init__(f"job {job_id}: attempt {attempt} is superseded (current attempt {current})")
        self.job_id = job_id
        self.attempt = attempt
        self.current = current
