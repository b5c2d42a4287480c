"""StreamingCache: eviction between forward calls equals masked full attention; rollback is exact."""

from __future__ import annotations

import pytest
import torch

from memory.bank import MemoryBank
from memory.blocks import Block, BlockKind
from memory.policies import SinkWindow
from memory.streaming_cache import StreamingCache
from tests.test_incremental_prefill import SYSTEM, make_frames


def _prefill_stream(model, cache, n_frames: int, record=None):
    cursor = model.new_stream_state()
    header = model.start(cache, cursor, SYSTEM)
    if record:
        record(Block(BlockKind.SINK, header))
    frames = make_frames(n_frames, seed=3)
    for k in range(0, n_frames, 2):
        chunks = model.encode(frames[k : k + 2], [k / 2, (k + 1) / 2])
        if record:
            record.__self__.make_room(chunks[0].n_tokens, 2)
        model.prefill(chunks, cache, cursor)
        if record:
            record(Block(BlockKind.FRAMES, chunks[0].n_tokens, (k / 2, (k + 1) / 2), k // 2))
    return cursor, header, chunks[0].n_tokens


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_evicted_cache_equals_masked_full_attention(tiny_models, family) -> None:
    """Sinks + window with eviction between calls == one full forward whose mask hides evicted chunks.

    Row r of chunk c may see the header, the chunks still resident when c was written (the
    ``window_chunks - 1`` before it) and the causal part of c; question rows see the header and the
    last ``window_chunks`` chunks.
    """
    model = tiny_models[family]
    n_frames, window_frames = 12, 4
    window_chunks = window_frames // 2
    bank = MemoryBank(model.num_layers, SinkWindow(), window_frames=window_frames)
    cursor, header, per_chunk = _prefill_stream(model, bank.cache, n_frames, record=bank.record)
    question = model._ids(model.question_text("What is new?"))
    with torch.inference_mode():
        evicted_logits = model._forward_text(question, bank.cache, cursor.copy())
    assert bank.stats().resident_frames == window_frames

    frames = make_frames(n_frames, seed=3)
    ref_cursor = model.new_stream_state()
    header_ids = model._ids(model.header_text(SYSTEM))
    from models.mrope import chunk_positions, text_positions

    embeds = [model.embed_tokens(torch.tensor(header_ids))]
    positions = [text_positions(ref_cursor, header)]
    for k in range(0, n_frames, 2):
        chunk = model.encode(frames[k : k + 2], [k / 2, (k + 1) / 2])[0]
        embeds.append(chunk.embeds)
        positions.append(chunk_positions(ref_cursor, chunk.grid_hw, k / 2, model.tokens_per_second))
    embeds.append(model.embed_tokens(torch.tensor(question)))
    positions.append(text_positions(ref_cursor, len(question)))
    length = sum(e.shape[0] for e in embeds)
    n_chunks = n_frames // 2
    chunk_start = [header + c * per_chunk for c in range(n_chunks)]
    visible = torch.ones(length, length, dtype=torch.bool).tril()
    for c in range(n_chunks + 1):  # c == n_chunks: the question rows
        if c < n_chunks:
            rows = slice(chunk_start[c], chunk_start[c] + per_chunk)
        else:
            rows = slice(length - len(question), length)
        first_resident = max(0, c - (window_chunks - 1)) if c < n_chunks else n_chunks - window_chunks
        for old in range(first_resident):
            visible[rows, chunk_start[old] : chunk_start[old] + per_chunk] = False
    with torch.inference_mode():
        out = model.language_model(
            inputs_embeds=torch.cat(embeds).unsqueeze(0),
            position_ids=torch.cat(positions, dim=1).unsqueeze(1),
            attention_mask=visible[None, None],
        )
        reference_logits = model.lm_head(out.last_hidden_state[0, -1]).float()
    assert (evicted_logits - reference_logits).abs().max().item() <= 1e-5


def test_memory_stays_bounded(tiny_models) -> None:
    model = tiny_models["qwen2_5_vl"]
    bank = MemoryBank(model.num_layers, SinkWindow(), window_frames=6)
    _prefill_stream(model, bank.cache, 30, record=bank.record)
    stats = bank.stats()
    assert stats.resident_frames == 6
    assert stats.evicted_frames == 24
    assert stats.logical_tokens > stats.device_tokens


def test_rollback_restores_tensors_exactly() -> None:
    cache = StreamingCache(num_layers=2)
    for layer in range(2):
        cache.update(torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4), layer)
    before = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]
    checkpoint = cache.checkpoint()
    for layer in range(2):
        cache.update(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4), layer)
    assert cache.logical_length == 8
    cache.rollback(checkpoint)
    assert cache.logical_length == 5 and cache.physical_length == 5
    for layer, (keys, values) in zip(cache.layers, before):
        assert torch.equal(layer.keys, keys) and torch.equal(layer.values, values)


def test_keep_reports_logical_offset_to_the_mask() -> None:
    cache = StreamingCache(num_layers=1)
    cache.update(torch.randn(1, 1, 10, 4), torch.randn(1, 1, 10, 4), 0)
    cache.keep(torch.tensor([0, 1, 7, 8, 9]))
    assert cache.get_seq_length() == 10
    assert cache.get_mask_sizes(3, 0) == (8, 5)
    with pytest.raises(RuntimeError, match="evicted"):
        checkpoint = type(cache.checkpoint())(physical_length=9, logical_length=10)
        cache.rollback(checkpoint)
