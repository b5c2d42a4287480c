"""Errors of the real-time engine (see :mod:`pipeline.errors` for the user-input classes)."""

from __future__ import annotations

from pipeline.errors import StreamVQAError


class EngineClosedError(StreamVQAError):
    """The engine (or the stream) was closed: the request was cancelled or cannot be accepted."""


class RequestCancelledError(StreamVQAError):
    """The request was cancelled before its answer finished."""


class EngineStepError(StreamVQAError):
    """A model step failed; the affected requests fail with it (``__cause__`` is the original error)."""
