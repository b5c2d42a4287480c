"""Sinks plus a recent window of frames (StreamingLLM / StreamingVLM): the bounded baseline."""

from __future__ import annotations

from dataclasses import dataclass

from memory.blocks import Block, BlockKind
from memory.policies.base import Policy


@dataclass
class SinkWindow(Policy):
    """Keep every sink block and the most recent frame blocks.

    Attributes:
        window_frames: most real frames kept resident (None = unbounded).
        window_tokens: most visual tokens kept resident (None = unbounded).
    """

    window_frames: int | None = 64
    window_tokens: int | None = None

    def __post_init__(self) -> None:
        for field_name in ("window_frames", "window_tokens"):
            value = getattr(self, field_name)
            if value is not None and value <= 0:
                raise ValueError(f"SinkWindow.{field_name} must be a positive integer or None, got {value}")

    def blocks_to_keep(self, blocks: list[Block], incoming_tokens: int, incoming_frames: int) -> list[int]:
        frames_left = None if self.window_frames is None else self.window_frames - incoming_frames
        tokens_left = None if self.window_tokens is None else self.window_tokens - incoming_tokens
        keep: list[int] = []
        for i in range(len(blocks) - 1, -1, -1):
            block = blocks[i]
            if block.kind is BlockKind.SINK:
                keep.append(i)
                continue
            fits_frames = frames_left is None or block.n_frames <= frames_left
            fits_tokens = tokens_left is None or block.n_tokens <= tokens_left
            if fits_frames and fits_tokens:
                keep.append(i)
                frames_left = None if frames_left is None else frames_left - block.n_frames
                tokens_left = None if tokens_left is None else tokens_left - block.n_tokens
            else:
                frames_left, tokens_left = 0, 0  # the window is contiguous: nothing older fits either
        return sorted(keep)
