"""Putting retrieved archive blocks back into an answer's cache, at contiguous positions.

Retrieved blocks are appended to the cache *after* the answer's checkpoint, so rolling the answer back
removes them and memory is left exactly as it was. On the re-indexed position axis they are placed
in time order, one after the other (``min_position_gap`` apart, at least 1), ending right before
the first resident frame block; the question follows the resident memory as usual. Each block's keys
are rotated from the position they were archived at to their new one (RoPE: moving a key is one more
rotation). When earlier re-indexing has packed the resident memory against the stream header, the
retrieved blocks share positions with the header; attention allows that, and their order is kept.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from memory.archive.block import ArchivedBlock
from memory.streaming_cache import StreamingCache

RotateKeys = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def contiguous_targets(blocks: list[ArchivedBlock], end: int, min_gap: Callable[[int], int]) -> list[int]:
    """Positions for ``blocks`` (time order), one after the other, the last one ending before ``end``."""
    targets: list[int] = []
    position = end
    for block in reversed(blocks):
        position -= max(1, min_gap(block.n_tokens))
        targets.append(position)
    return targets[::-1]


def append_blocks(
    cache: StreamingCache, blocks: list[ArchivedBlock], targets: list[int], rotate_keys: RotateKeys
) -> int:
    """Append ``blocks`` to every layer of ``cache``, keys moved to ``targets``; returns tokens added.

    Call only between forward calls, after a checkpoint that will be rolled back.
    """
    if not blocks:
        return 0
    for layer_index, layer in enumerate(cache.layers):
        keys, values = [], []
        for block, target in zip(blocks, targets):
            block_keys = block.keys[layer_index].to(layer.device)
            delta = torch.full(block_keys.shape[:2], target - int(block.position or 0), dtype=torch.long,
                               device=block_keys.device)
            keys.append(rotate_keys(block_keys, delta))
            values.append(block.values[layer_index].to(layer.device))
        keys_in, values_in = torch.cat(keys, dim=1).unsqueeze(0), torch.cat(values, dim=1).unsqueeze(0)
        layer.update(keys_in.to(layer.dtype), values_in.to(layer.dtype))
    return sum(block.n_tokens for block in blocks)
