"""The archive's first tier: frame blocks in CPU RAM, oldest first, within a byte budget.

On CUDA, blocks are copied into pinned host memory with ``non_blocking=True`` so that archiving does
not stall the stream; an event per block marks the copy's end and is waited on before the block is
read (this path needs a GPU and is not exercised by the CPU tests).
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from memory.archive.block import ArchivedBlock


def to_host(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` on the CPU: a pinned, asynchronous copy for CUDA tensors, a clone otherwise."""
    if tensor.device.type == "cuda":
        host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        host.copy_(tensor, non_blocking=True)
        return host
    return tensor.detach().clone()


class RamTier:
    """Blocks in host memory, in insertion (= time) order."""

    def __init__(self) -> None:
        self.blocks: OrderedDict[int, ArchivedBlock] = OrderedDict()
        self._events: dict[int, torch.cuda.Event] = {}
        self.nbytes = 0

    def add(self, block: ArchivedBlock) -> None:
        on_cuda = block.keys.device.type == "cuda"
        block.keys, block.values = to_host(block.keys), to_host(block.values)
        block.logical = to_host(block.logical)
        block.vectors = {kind: to_host(v) for kind, v in block.vectors.items()}
        if on_cuda:
            event = torch.cuda.Event()
            event.record()
            self._events[block.block_id] = event
        self.blocks[block.block_id] = block
        self.nbytes += block.nbytes

    def get(self, block_id: int) -> ArchivedBlock | None:
        block = self.blocks.get(block_id)
        event = self._events.pop(block_id, None)
        if event is not None:
            event.synchronize()
        return block

    def pop_oldest(self) -> ArchivedBlock:
        block_id, block = self.blocks.popitem(last=False)
        event = self._events.pop(block_id, None)
        if event is not None:
            event.synchronize()
        self.nbytes -= block.nbytes
        return block

    def __len__(self) -> int:
        return len(self.blocks)
