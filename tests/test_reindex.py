"""Position re-indexing: re-rotated keys equal fresh keys at the new positions; long streams fit."""

from __future__ import annotations

import pytest
import torch

from memory.streaming_cache import StreamingCache
from models.mrope import MRopeCursor, chunk_positions, text_positions
from pipeline.config import StreamConfig
from pipeline.session import StreamSession
from tests.test_session import assert_same, frames_at, snapshot


def small_position_session(model, monkeypatch, max_positions: int, policy: str = "sink_window") -> StreamSession:
    monkeypatch.setattr(model, "max_positions", max_positions)
    config = StreamConfig()
    config = config.replace("memory", policy=policy, window_frames=8, budget_tokens=8)
    config = config.replace("question", max_question_tokens=24)
    config = config.replace("sampling", max_new_tokens=6)
    return StreamSession(model, config)


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_rerotated_keys_equal_fresh_keys_at_new_positions(tiny_models, family: str, monkeypatch) -> None:
    model = tiny_models[family]
    session = small_position_session(model, monkeypatch, max_positions=120)
    session.feed(frames_at(1.0, 96))
    assert session.counters.reindexes >= 1
    bank = session.bank

    # Fresh: the header, then every resident chunk written directly at its new position.
    fresh = StreamingCache(model.num_layers)
    cursor = MRopeCursor()
    header = model._ids(model.header_text(session.config.question.system_prompt))
    images = {f.timestamp: f.rgb for f in frames_at(1.0, 96)}
    embeds = [model.embed_tokens(torch.tensor(header))]
    positions = [text_positions(cursor, len(header))]
    for span in bank.spans:
        stamps = span.block.frame_timestamps
        chunk = model.encode([images[t] for t in stamps], stamps, session._frame_hw)[0]
        pos = chunk_positions(cursor, chunk.grid_hw, stamps[0], None)  # grid rows/cols from s
        pos[0] = span.block.position  # the temporal component re-indexing gave this chunk
        embeds.append(chunk.embeds)
        positions.append(pos)
    with torch.inference_mode():
        model.language_model(
            inputs_embeds=torch.cat(embeds).unsqueeze(0),
            position_ids=torch.cat(positions, dim=1).unsqueeze(1),
            past_key_values=fresh,
            use_cache=True,
        )
    ours, theirs = bank.cache.layers[0].keys, fresh.layers[0].keys  # layer 0: keys depend on no other token
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= 1e-5
    assert (bank.cache.layers[0].values - fresh.layers[0].values).abs().max().item() <= 1e-6  # batching noise only


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
@pytest.mark.parametrize("policy", ["sink_window", "uniform_frames", "key_norm"])
def test_stream_ten_times_longer_than_the_position_range(tiny_models, family, policy, monkeypatch) -> None:
    model = tiny_models[family]
    max_positions = 150
    session = small_position_session(model, monkeypatch, max_positions, policy)
    frames = frames_at(1.0, 1200)  # Qwen2.5 tiny: 2 positions per second -> ~2400 natural positions
    for start in range(0, len(frames), 40):
        session.feed(frames[start : start + 40])
        assert model.next_position(session.cursor) <= session._position_limit
    natural = 1200 * (2 if family == "qwen2_5_vl" else 0.5)
    assert natural >= 4 * max_positions
    assert session.counters.reindexes > 1
    before = snapshot(session)
    answer = session.ask("What happens?")
    assert answer.frames_covered[1] == 1199.0
    assert_same(before, snapshot(session))
