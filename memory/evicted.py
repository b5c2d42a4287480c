"""What the memory bank hands to an archive when a frame block leaves the short-term window.

The archive receives a block at the moment it leaves the short-term window, *before* any long-term
policy compresses it: every layer and every KV head still holds all of its tokens at full precision,
so an archived block can later be restored exactly (re-rotated to a new position). Whatever the
long-term policy keeps of the same block stays resident on the device as well; answers avoid
attending to a block twice by retrieving only blocks with no resident token
(see ``memory/retrieval/recall.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memory.streaming_cache import StreamingCache


@dataclass
class EvictedFrame:
    """One frame block (a visual chunk) leaving the short-term window.

    Attributes:
        chunk_index: running index of the chunk in the stream (its id in the archive).
        timestamps: media times (s) of its real frames.
        position: its place on the re-indexed position axis when it left (the keys are rotated for it).
        logical: ``(n,)`` long, the logical index of each token (the order the stream saw them).
        keys: ``(L, H, n, D)`` rotated keys of every layer and KV head.
        values: ``(L, H, n, D)`` values.
    """

    chunk_index: int
    timestamps: tuple[float, ...]
    position: int | None
    logical: torch.Tensor
    keys: torch.Tensor
    values: torch.Tensor


def frame_kv(cache: StreamingCache, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(keys (L, H, n, D), values (L, H, n, D), logical (n,))`` of the tokens with logical index in ``[start, end)``.

    Raises:
        RuntimeError: the heads of a layer hold different tokens of that range (the block was already
            compressed per head; archive blocks before the long-term policy touches them).
    """
    keys, values, logical = [], [], None
    for layer in cache.layers:
        origin = layer.origin()  # (H, N)
        inside = (origin >= start) & (origin < end)
        counts = inside.sum(dim=1)
        if int(counts.min()) != int(counts.max()):
            raise RuntimeError(f"tokens {start}..{end} differ across heads: archive a block before it is compressed")
        slots = inside[0].nonzero().squeeze(1)
        if not bool((origin[:, slots] == origin[0, slots]).all()):
            raise RuntimeError(f"tokens {start}..{end} differ across heads: archive a block before it is compressed")
        keys.append(layer.keys[0, :, slots])
        values.append(layer.values[0, :, slots])
        logical = origin[0, slots] if logical is None else logical
    assert logical is not None
    return torch.stack(keys), torch.stack(values), logical
