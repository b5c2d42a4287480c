"""MixedPrecision: evicted tokens stay in a low-precision tier that answers and later chunks attend to."""

from __future__ import annotations

import dataclasses

import torch

from memory.bank import MemoryBank
from memory.policies import MixedPrecision, ProxyAttention, TokenDrop, build_policy
from pipeline.config import StreamConfig
from pipeline.engine.snapshot import fork_cache
from pipeline.session import StreamSession
from tests.test_policies import stream_into
from tests.test_session import assert_same, frames_at, quantized_state, snapshot
from tests.test_token_drop import mostly_static_frames


def session_with(model, policy, window_frames: int | None = 4, budget_tokens: int = 0) -> StreamSession:
    config = StreamConfig().replace("memory", window_frames=window_frames, budget_tokens=budget_tokens)
    config = config.replace("sampling", max_new_tokens=6)
    session = StreamSession(model, config)
    session.bank.policy = policy
    session.bank.budget_tokens = policy.long_term_budget(budget_tokens)
    return session


def question_logits(session: StreamSession) -> torch.Tensor:
    model = session.model
    checkpoint = session.bank.cache.checkpoint()
    try:
        with torch.inference_mode():
            return model._forward_text(model._ids(model.question_text("What happens?")), session.bank.cache,
                                       session.cursor.copy())  # fmt: skip
    finally:
        session.bank.cache.rollback(checkpoint)


def test_full_precision_tier_equals_the_uncompressed_cache(tiny_models) -> None:
    """With the edge layers at full precision (both layers of the tiny model) nothing is lost: the
    demoted tokens sit in front of the others, and answers *and later chunks* see exactly the full cache."""
    model = tiny_models["qwen2_5_vl"]
    frames = frames_at(1.0, 40)
    full = session_with(model, build_policy("sink_window"), window_frames=None)
    kept = session_with(model, MixedPrecision(full_precision_edge_layers=1))
    dropped = session_with(model, build_policy("sink_window"))
    for session in (full, kept, dropped):
        session.feed(frames)
    stats = kept.bank.stats()
    assert stats.quantized_tokens > 0 and stats.long_term_tokens == 0
    assert stats.device_tokens == full.bank.stats().device_tokens
    assert (question_logits(kept) - question_logits(full)).abs().max() <= 1e-4
    assert (question_logits(dropped) - question_logits(full)).abs().max() > 1e-3

    # the last chunk's layer-1 keys depend on layer-0 attention over every earlier token
    last = kept.bank.cache.layers[1]
    origin = last.origin()[:, -4:]
    reference = full.bank.cache.layers[1].keys[0].gather(1, origin.unsqueeze(-1).expand(-1, -1, last.keys.shape[-1]))
    assert (last.keys[0, :, -4:] - reference).abs().max() <= 1e-5


def test_int8_tier_is_read_by_answers(tiny_models) -> None:
    """int8 in every layer: the answer's logits stay close to the full cache, far closer than dropping."""
    model = tiny_models["qwen2_5_vl"]
    frames = frames_at(1.0, 40)
    full = session_with(model, build_policy("sink_window"), window_frames=None)
    low = session_with(model, MixedPrecision(bits=8, group_size=16, full_precision_edge_layers=0))
    dropped = session_with(model, build_policy("sink_window"))
    for session in (full, low, dropped):
        session.feed(frames)
    reference = question_logits(full)
    quantized_error = (question_logits(low) - reference).abs().max().item()
    dropped_error = (question_logits(dropped) - reference).abs().max().item()
    assert low.bank.cache.layers[0].quantized_segment.bits == 8
    assert quantized_error < 0.1 * dropped_error


def test_bytes_per_tier_are_exact(tiny_models) -> None:
    model = tiny_models["qwen2_5_vl"]
    policy = MixedPrecision(bits=4, group_size=8, full_precision_edge_layers=0, inner=build_policy("key_norm"))
    bank = MemoryBank(model.num_layers, policy, window_frames=8, budget_tokens=6)
    stream_into(model, bank, 64)
    stats = bank.stats()
    layer = bank.cache.layers[0]
    heads, dim = layer.keys.shape[1], layer.keys.shape[-1]
    full_token = model.num_layers * heads * dim * 2 * layer.keys.element_size()  # K and V
    low_token = model.num_layers * heads * 2 * (dim // 2 + 2 * 2 * (dim // 8))  # int4 codes + fp16 scale, zero
    key_offsets = model.num_layers * heads * dim * 4  # float32, fixed
    assert stats.long_term_tokens == 6 and stats.quantized_tokens > 0
    assert stats.long_term_bytes == 6 * full_token
    assert stats.quantized_bytes == stats.quantized_tokens * low_token + key_offsets
    tiers = stats.sink_bytes + stats.short_term_bytes + stats.long_term_bytes + stats.quantized_bytes
    assert stats.device_bytes == tiers


def test_byte_budget_of_the_low_precision_tier_holds_at_every_step(tiny_models) -> None:
    model = tiny_models["qwen2_5_vl"]
    budget = 3000
    policy = MixedPrecision(bits=4, group_size=8, budget_tokens=None, budget_bytes=budget, full_precision_edge_layers=0)
    bank = MemoryBank(model.num_layers, policy, window_frames=4, budget_tokens=0)
    seen = []

    def check(bank: MemoryBank) -> None:
        stats = bank.stats()
        assert stats.quantized_bytes <= budget
        seen.append(stats.quantized_tokens)

    stream_into(model, bank, 300, check=check)
    assert max(seen) == seen[-1] > 0  # filled up to the budget and stayed there
    fixed = sum(layer.quantized_segment.fixed_nbytes() for layer in bank.cache.layers)
    per_token = (bank.cache.quantized_nbytes() - fixed) // seen[-1]
    assert bank.stats().quantized_bytes + per_token > budget  # one more token would not fit


def test_token_drop_proxy_attention_mixed_precision_compose_and_answer(tiny_models) -> None:
    policy = build_policy("token_drop+proxy_attention+mixed_precision")
    assert isinstance(policy, TokenDrop) and isinstance(policy.inner, MixedPrecision)
    assert isinstance(policy.inner.inner, ProxyAttention)
    assert policy.name == "token_drop+mixed_precision+proxy_attention"
    model = tiny_models["qwen2_5_vl"]
    policy.inner = dataclasses.replace(policy.inner, full_precision_edge_layers=0, budget_tokens=20)
    session = session_with(model, policy, window_frames=6, budget_tokens=10)
    frames = mostly_static_frames(200)
    for start in range(0, 200, 40):
        session.feed(frames[start : start + 40])
        stats = session.bank.stats()
        assert stats.long_term_tokens <= 10 and stats.quantized_tokens <= 20 and stats.short_term_frames <= 6
    assert session.counters.tokens_dropped > 0 and session.bank.stats().quantized_tokens == 20
    before = snapshot(session)
    first = session.ask("What changed?")
    assert_same(before, snapshot(session))
    assert session.ask("What changed?").answer == first.answer


def test_streams_past_the_position_range_re_rotate_the_low_precision_tier(tiny_models, monkeypatch) -> None:
    """Re-indexing re-rotates the quantised keys too; with a full-precision tier that is exact."""
    model = tiny_models["qwen2_vl"]
    monkeypatch.setattr(model, "max_positions", 120)
    config = StreamConfig().replace("memory", window_frames=8, budget_tokens=8)
    config = config.replace("question", max_question_tokens=24).replace("sampling", max_new_tokens=4)
    session = StreamSession(model, config)
    session.bank.policy = MixedPrecision(full_precision_edge_layers=1, budget_tokens=12, inner=build_policy("key_norm"))
    session.feed(frames_at(1.0, 96))
    assert session.counters.reindexes >= 1 and session.bank.stats().quantized_tokens == 12
    before = snapshot(session)
    session.ask("What happens?")
    assert_same(before, snapshot(session))


def test_a_forked_cache_keeps_its_low_precision_tier_while_the_stream_moves_on(tiny_models) -> None:
    """The engine answers from a copy-on-write fork: demotion and trimming on the stream must not
    reach the fork's low-precision tier (segments are immutable and shared)."""
    model = tiny_models["qwen2_5_vl"]
    session = session_with(model, MixedPrecision(full_precision_edge_layers=0, budget_tokens=10))
    session.feed(frames_at(1.0, 24))
    fork = fork_cache(session.bank.cache)
    before = [quantized_state(layer) for layer in fork.layers]
    assert before[0] is not None
    session.feed(frames_at(1.0, 24, start=24))
    after = [quantized_state(layer) for layer in fork.layers]
    for old, new in zip(before, after):
        assert all(torch.equal(a, b) for a, b in zip(old, new))
    assert not torch.equal(session.bank.cache.layers[0].quantized_segment.origin, before[0][0])
    assert fork.physical_length == fork.layers[0].full_precision_length + before[0][0].shape[1]
