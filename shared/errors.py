"""Daydream's error hierarchy. Each error's message is written for the person
who will read it (a Discord member or an admin): what happened, what to do."""

from __future__ import annotations


class DaydreamError(Exception):
    """Base class: an expected failure with a message fit for the user."""


class InvalidRequest(DaydreamError):
    """The prompt, a parameter, a click or a command was not acceptable."""


class QueueUnavailable(DaydreamError):
    """Redis cannot be reached."""


class QueueFull(DaydreamError):
    """The user (or the server) has too many jobs waiting."""


class NoWorkerAlive(DaydreamError):
    """Jobs would queue with nobody to run them."""


class JobNotFound(DaydreamError):
    """A job id that Redis does not know (never existed, or expired)."""


class ModelUnavailable(DaydreamError):
    """The worker's MODEL could not be loaded (a wrong path or hub id)."""


class GenerationFailed(DaydreamError):
    """The worker could not produce the images."""


class ResultTooLarge(DaydreamError):
    """The result cannot be made small enough to upload."""


class DeliveryFailed(DaydreamError):
    """Discord refused or kept failing the delivery of a result."""
