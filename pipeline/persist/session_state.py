"""A :class:`~pipeline.session.StreamSession`'s whole state as ``(tensors, meta)`` and back.

Parts (each implements the ``memory.stateful`` contract):

* ``bank``: the memory bank (cache layers: K/V, logical lengths, origin indices; ledger of sinks and
  spans with timestamps, chunk indices and positions; eviction counters; policy name and parameters;
  and any tier added to ``MemoryBank.stateful_parts``);
* ``cursor``: the model's position cursor (M-RoPE next text position, open video segment, ``t0``,
  chunk count, re-index shift, last grid; or the 1-D next position);
* ``counters``: ingest counters;
* ``archive``: when the session has one, every archived block and its retrieval vectors (re-archived
  into the resumed session's own archive, whose folder must be empty);
* ``span_memo``: the model-wide record of chunk spans (1-D families, Qwen3-VL), so re-indexing after a
  resume moves chunks exactly as it would have.

The session's own meta: the configuration, the session clock (last timestamp), the frame grid pinned
by the first frame, and the frames waiting to fill a chunk (tensors ``pending.<i>``, ``(H, W, 3)``
uint8); the previous chunk's visual tokens for token dropping are tensor ``previous_features``
``(n, hidden)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from memory.stateful import DataclassState, Stateful, load_parts, merge_states
from models.stream_base import span_memo_of
from pipeline.frames import Frame

if TYPE_CHECKING:
    from pipeline.session import StreamSession


def stateful_parts(session: StreamSession) -> dict[str, Stateful]:
    parts: dict[str, Stateful] = {
        "bank": session.bank,
        "cursor": DataclassState(session.cursor),
        "counters": DataclassState(session.counters),
    }
    if session.recall is not None:
        parts["archive"] = session.recall
    memo = span_memo_of(session.model)
    if memo is not None:
        parts["span_memo"] = memo
    return parts


def session_state(session: StreamSession) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Everything needed to continue ``session`` in another process (the attached source aside)."""
    own = {
        "config": session.config.to_dict(),
        "last_timestamp": session._last_timestamp,
        "frame_hw": list(session._frame_hw) if session._frame_hw is not None else None,
        "pending": [[frame.index, frame.timestamp] for frame in session._buffer],
        "has_previous_features": session._previous_features is not None,
    }
    tensors, meta = merge_states(stateful_parts(session), own)
    for number, frame in enumerate(session._buffer):
        tensors[f"pending.{number}"] = torch.from_numpy(np.array(frame.rgb, copy=True))
    if session._previous_features is not None:
        tensors["previous_features"] = session._previous_features
    return tensors, meta


def load_session_state(session: StreamSession, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Restore a state made by :func:`session_state` into a fresh session on the same model and config."""
    load_parts(stateful_parts(session), tensors, meta)
    session._last_timestamp = meta["last_timestamp"]
    session._frame_hw = tuple(meta["frame_hw"]) if meta["frame_hw"] is not None else None
    session._buffer = [
        Frame(int(index), float(timestamp), tensors[f"pending.{number}"].cpu().numpy())
        for number, (index, timestamp) in enumerate(meta["pending"])
    ]
    session._previous_features = tensors["previous_features"] if meta["has_previous_features"] else None
