"""Bookkeeping of what the physical KV cache holds, block by block."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class BlockKind(str, Enum):
    """What a run of cached tokens stands for."""

    SINK = "sink"  # system prompt and stream header: always kept
    FRAMES = "frames"  # one visual chunk (the model's temporal patch of frames)


@dataclass
class Block:
    """A contiguous run of tokens in the physical cache.

    Attributes:
        kind: sink or frames.
        n_tokens: tokens this block occupies in every layer.
        frame_timestamps: media times (s) of the real frames in the chunk (empty for sinks).
        chunk_index: running index of the visual chunk in the stream (-1 for sinks).
        position: where the chunk sits on the re-indexed position axis (see ``VisualChunk.position``);
            re-indexing updates it.
    """

    kind: BlockKind
    n_tokens: int
    frame_timestamps: tuple[float, ...] = ()
    chunk_index: int = -1
    position: int | None = None

    @property
    def n_frames(self) -> int:
        return len(self.frame_timestamps)
