"""The per-stream memory: a streaming KV cache plus the block ledger and the policy that bounds it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from memory.blocks import Block, BlockKind
from memory.policies.base import Policy
from memory.streaming_cache import StreamingCache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryStats:
    """What the memory holds now and what it has let go (JSON-friendly via ``as_dict``)."""

    device_tokens: int
    device_bytes: int
    logical_tokens: int
    resident_frames: int
    sink_tokens: int
    evicted_blocks: int
    evicted_frames: int
    evicted_tokens: int
    policy: str

    def as_dict(self) -> dict[str, int | str]:
        return dict(self.__dict__)


class MemoryBank:
    """Owns one stream's :class:`StreamingCache` and keeps it within the policy's bounds.

    The model writes tokens into ``bank.cache`` during a forward call; the bank is told what was
    written with :meth:`record` and frees space with :meth:`make_room` *before* the next write, never
    during a forward call.
    """

    def __init__(self, num_layers: int, policy: Policy) -> None:
        self.cache = StreamingCache(num_layers)
        self.policy = policy
        self.blocks: list[Block] = []
        self._evicted_blocks = 0
        self._evicted_frames = 0
        self._evicted_tokens = 0

    def record(self, block: Block) -> None:
        """Register ``block.n_tokens`` tokens that were just appended to the cache."""
        self.blocks.append(block)

    def make_room(self, incoming_tokens: int, incoming_frames: int) -> None:
        """Evict what the policy drops so that the next write of ``incoming_tokens`` fits."""
        keep = self.policy.blocks_to_keep(self.blocks, incoming_tokens, incoming_frames)
        if len(keep) == len(self.blocks):
            return
        keep_set = set(keep)
        token_index: list[torch.Tensor] = []
        start = 0
        kept_blocks: list[Block] = []
        for i, block in enumerate(self.blocks):
            if i in keep_set:
                token_index.append(torch.arange(start, start + block.n_tokens))
                kept_blocks.append(block)
            else:
                if block.kind is BlockKind.SINK:
                    raise RuntimeError(f"policy {self.policy.name} tried to evict a sink block")
                self._evicted_blocks += 1
                self._evicted_frames += block.n_frames
                self._evicted_tokens += block.n_tokens
            start += block.n_tokens
        index = torch.cat(token_index) if token_index else torch.zeros(0, dtype=torch.long)
        self.cache.keep(index)
        self.blocks = kept_blocks
        logger.debug("evicted down to %d blocks (%d tokens)", len(self.blocks), self.cache.physical_length)

    @property
    def resident_frame_timestamps(self) -> list[float]:
        """Timestamps of the real frames whose tokens are resident, oldest first."""
        return [t for block in self.blocks for t in block.frame_timestamps]

    def stats(self) -> MemoryStats:
        return MemoryStats(
            device_tokens=self.cache.physical_length,
            device_bytes=self.cache.nbytes(),
            logical_tokens=self.cache.logical_length,
            resident_frames=sum(b.n_frames for b in self.blocks),
            sink_tokens=sum(b.n_tokens for b in self.blocks if b.kind is BlockKind.SINK),
            evicted_blocks=self._evicted_blocks,
            evicted_frames=self._evicted_frames,
            evicted_tokens=self._evicted_tokens,
            policy=self.policy.name,
        )
