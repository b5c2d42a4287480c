"""What a policy may know about the long-term tokens it scores: which frame and patch each one is."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from memory.bank import FrameSpan
    from memory.probe import AttentionProbe


class Candidates:
    """Maps logical token indices to chunks and patches, for the spans a bank holds.

    Args:
        spans: resident chunks, oldest first.
        sink_tokens: logical length of the stream header.
        boundary: logical index where the short-term window starts (long-term tokens lie before it).
        probe: model-derived attention signals, for policies that need them.
    """

    def __init__(
        self, spans: list[FrameSpan], sink_tokens: int, boundary: int, probe: AttentionProbe | None = None
    ) -> None:
        self.spans = spans
        self.probe = probe
        self.layer_slots: dict[int, slice] = {}  # layer -> physical slots of the long-term tokens
        self.shared: dict[str, object] = {}  # decisions a policy makes once per eviction for every layer
        self.sink_tokens = sink_tokens
        self.boundary = boundary
        self.starts = torch.tensor([s.start for s in spans], dtype=torch.long)
        self.lengths = torch.tensor([s.block.n_tokens for s in spans], dtype=torch.long)
        self.chunk_index = torch.tensor([s.block.chunk_index for s in spans], dtype=torch.long)
        self.first_time = torch.tensor([s.block.frame_timestamps[0] for s in spans], dtype=torch.float64)

    def span_of(self, origin: torch.Tensor) -> torch.Tensor:
        """Index into ``spans`` of each logical token, same shape as ``origin``."""
        return torch.searchsorted(self.starts.to(origin.device), origin.contiguous(), right=True) - 1

    def patch_of(self, origin: torch.Tensor) -> torch.Tensor:
        """Position of each token inside its chunk's token grid (row-major)."""
        return origin - self.starts.to(origin.device)[self.span_of(origin)]

    def same_patch_earlier(self, origin: torch.Tensor) -> torch.Tensor:
        """Logical index of the same patch in the chunk just before, or -1 where there is none.

        "Just before" is the previous chunk of the stream (``chunk_index - 1``) when it is still
        resident and has the same number of tokens (same grid).
        """
        span = self.span_of(origin)
        starts = self.starts.to(origin.device)
        lengths = self.lengths.to(origin.device)
        chunks = self.chunk_index.to(origin.device)
        previous = (span - 1).clamp(min=0)
        valid = (span > 0) & (chunks[previous] == chunks[span] - 1) & (lengths[previous] == lengths[span])
        earlier = starts[previous] + (origin - starts[span])
        return torch.where(valid, earlier, torch.full_like(origin, -1))
