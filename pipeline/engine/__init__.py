"""The real-time engine: ingest and answering at the same time, live sources, sync and async APIs.

Public names (imported lazily so that :mod:`pipeline.config` can import the settings):
:class:`AsyncVideoQA`, :class:`AsyncStream`, :class:`AsyncAnswer` (asyncio), :class:`RealtimeVideoQA`,
:class:`StreamHandle`, :class:`AnswerRequest` (threads), :class:`EngineSettings`, and the records
:class:`AnswerInfo`, :class:`AnswerPiece`, :class:`StreamStats`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AsyncVideoQA": "pipeline.engine.async_api",
    "AsyncStream": "pipeline.engine.async_api",
    "AsyncAnswer": "pipeline.engine.async_api",
    "RealtimeVideoQA": "pipeline.engine.client",
    "StreamHandle": "pipeline.engine.client",
    "AnswerRequest": "pipeline.engine.client",
    "EngineSettings": "pipeline.engine.settings",
    "AnswerInfo": "pipeline.engine.records",
    "AnswerPiece": "pipeline.engine.records",
    "StreamStats": "pipeline.engine.records",
    "EngineClosedError": "pipeline.engine.errors",
    "RequestCancelledError": "pipeline.engine.errors",
    "EngineStepError": "pipeline.engine.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pipeline.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
