"""FrameMerge: the most similar adjacent long-term chunks are merged, matched tokens averaged, in place."""

from __future__ import annotations

import torch

from memory.bank import MemoryBank
from memory.blocks import Block, BlockKind
from memory.policies import build_policy
from tests.test_incremental_prefill import SYSTEM, make_frames


def stream_chunks(model, bank: MemoryBank, chunks: list[list]) -> None:
    """One chunk (two frames) per forward call, as a session with ``chunks_per_forward=1`` does."""
    cursor = model.new_stream_state()
    bank.record(Block(BlockKind.SINK, model.start(bank.cache, cursor, SYSTEM)))
    for index, images in enumerate(chunks):
        encoded = model.encode(images, [index, index + 0.5])
        bank.make_room(sum(c.n_tokens for c in encoded), len(images))
        model.prefill(encoded, bank.cache, cursor)
        for chunk in encoded:
            bank.record(Block(BlockKind.FRAMES, chunk.n_tokens, chunk.timestamps, index))


def test_the_most_similar_adjacent_pair_is_merged_into_the_earlier_slots(tiny_models) -> None:
    model = tiny_models["qwen2_5_vl"]
    a, b, c, d = (make_frames(2, size=(56, 56), seed=s) for s in range(4))
    chunks = [a, b, b, c, d]  # chunks 1 and 2 show the same frames: the pair to merge
    merged = MemoryBank(model.num_layers, build_policy("frame_merge"), window_frames=2, budget_tokens=0)
    full = MemoryBank(model.num_layers, build_policy("frame_merge"), window_frames=None)
    stream_chunks(model, full, chunks)
    per_chunk = full.spans[0].block.n_tokens
    merged.budget_tokens = 3 * per_chunk  # four long-term chunks when the last one arrives: one merge
    stream_chunks(model, merged, chunks)

    sinks = merged.sink_tokens
    starts = [span.start for span in full.spans]
    expected = [*range(starts[0], starts[2]), *range(starts[3], starts[4] + per_chunk)]  # chunk 2 folded into 1
    for layer_idx, (ours, reference) in enumerate(zip(merged.cache.layers, full.cache.layers)):
        assert ours.origin()[0, sinks:].tolist() == expected and (ours.origin() == ours.origin()[:1]).all()
        for states, full_states in ((ours.keys, reference.keys), (ours.values, reference.values)):
            first = full_states[0, :, starts[1] : starts[1] + per_chunk]
            second = full_states[0, :, starts[2] : starts[2] + per_chunk]
            slots = slice(sinks + per_chunk, sinks + 2 * per_chunk)
            assert (states[0, :, slots] - (first + second) / 2).abs().max() <= 1e-6, layer_idx
            untouched = full_states[0, :, starts[0] : starts[0] + per_chunk]  # chunk 0 keeps its own tokens
            assert torch.equal(states[0, :, sinks : sinks + per_chunk], untouched)
    stats = merged.stats()
    assert stats.long_term_tokens == 3 * per_chunk and stats.resident_frames == 8
