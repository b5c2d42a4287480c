"""Copy-on-write views of a stream's memory, so an answer can run while ingest goes on.

Why not checkpoint/rollback (what :class:`~pipeline.session.AnswerStream` does)? Rollback truncates
the tail of the *same* cache, which only works if nothing else touches the cache until the answer
ends. With ingest steps between decode steps, new frames would land after the answer's tokens (the
answer's tokens would leak into memory, the frames would see the question) and an eviction would make
the checkpoint invalid. So an answer gets its own cache object whose layers point at the same
tensors. Every write to a :class:`~memory.streaming_cache.StreamingCache` builds new tensors
(``torch.cat``, ``index_select``, ``gather``, re-rotation) and never writes in place, so the stream and
the answer diverge without copying anything: the answer keeps the memory as of its start (at most one
extra copy of the memory alive while the stream moves on), the stream never sees the answer's tokens.
"""

from __future__ import annotations

from memory.streaming_cache import StreamingCache, StreamingLayer


def fork_cache(cache: StreamingCache) -> StreamingCache:
    """A new cache holding the same tensors as ``cache`` right now; later writes to either are private."""
    forked = StreamingCache(len(cache.layers))
    for source, target in zip(cache.layers, forked.layers):
        _copy_layer(source, target)
    return forked


def _copy_layer(source: StreamingLayer, target: StreamingLayer) -> None:
    target.logical_length = source.logical_length
    target._compacted_origin = source._compacted_origin
    target.quantized_segment = source.quantized_segment  # immutable: shared safely
    if source.is_initialized:
        target.dtype, target.device = source.dtype, source.device
        target.keys, target.values = source.keys, source.values
        target.is_initialized = True
