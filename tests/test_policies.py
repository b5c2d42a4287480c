"""Every memory policy: budgets hold at every step, eviction moves nothing, answers change nothing."""

from __future__ import annotations

import pytest
import torch

from memory.bank import MemoryBank
from memory.blocks import Block, BlockKind
from memory.policies import POLICIES, MixedPrecision, Policy, build_policy
from memory.probe import AttentionProbe
from pipeline.config import StreamConfig
from pipeline.session import StreamSession
from tests.test_incremental_prefill import SYSTEM, make_frames
from tests.test_session import assert_same, frames_at, snapshot

SCORED = [name for name in POLICIES if name != "sink_window"]
MERGING = ("proxy_attention", "frame_merge")  # policies that merge evicted tokens into kept slots
QUANTIZED_BUDGET = 24  # low-precision tokens per layer and head in these tests


def policy_under_test(name: str) -> Policy:
    """``build_policy(name)`` with a small low-precision budget and no full-precision edge layers
    (the tiny model has only two layers: with the MiKV default nothing would be quantised)."""
    policy = build_policy(name)
    node = policy
    while node is not None:
        if isinstance(node, MixedPrecision):
            node.budget_tokens, node.full_precision_edge_layers = QUANTIZED_BUDGET, 0
        node = getattr(node, "inner", None)
    return policy


def allowed_long_term(name: str, budget: int) -> int:
    """Full-precision long-term tokens a policy may keep under ``budget``."""
    return 0 if name in ("sink_window", "mixed_precision") else budget


def stream_into(model, bank: MemoryBank, n_frames: int, frames_per_call: int = 8, check=None, seed: int = 0) -> None:
    """Ingest ``n_frames`` small random frames chunk batch by chunk batch, as a session does."""
    cursor = model.new_stream_state()
    bank.record(Block(BlockKind.SINK, model.start(bank.cache, cursor, SYSTEM)))
    images = make_frames(16, size=(56, 56), seed=seed)
    chunk_index = 0
    for k in range(0, n_frames, frames_per_call):
        count = min(frames_per_call, n_frames - k)
        frames = [images[(k + i) % 16] for i in range(count)]
        stamps = [(k + i) / 2 for i in range(count)]
        chunks = model.encode(frames, stamps)
        probe = AttentionProbe(bank.cache, lambda: model.proxy_queries(bank.cache, cursor))
        bank.make_room(sum(c.n_tokens for c in chunks), count, probe)
        model.prefill(chunks, bank.cache, cursor)
        for chunk in chunks:
            bank.record(Block(BlockKind.FRAMES, chunk.n_tokens, chunk.timestamps, chunk_index))
            chunk_index += 1
        if check:
            check(bank)


@pytest.mark.parametrize("name", list(POLICIES))
def test_budget_holds_at_every_step_of_a_long_stream(tiny_models, name: str) -> None:
    model = tiny_models["qwen2_5_vl"]
    window, budget = 16, 40
    bank = MemoryBank(model.num_layers, policy_under_test(name), window_frames=window, budget_tokens=budget)
    quantized = QUANTIZED_BUDGET if bank.policy.demotion() is not None else 0
    allowed_long = allowed_long_term(name, budget)
    worst = {"device": 0}

    def check(bank: MemoryBank) -> None:
        stats = bank.stats()
        assert stats.short_term_frames <= window
        assert stats.long_term_tokens <= allowed_long
        assert stats.quantized_tokens <= quantized
        assert stats.device_tokens <= stats.sink_tokens + stats.short_term_tokens + allowed_long + quantized
        tiers = stats.sink_bytes + stats.short_term_bytes + stats.long_term_bytes + stats.quantized_bytes
        assert stats.device_bytes == tiers
        worst["device"] = max(worst["device"], stats.device_tokens)
        for layer in bank.cache.layers:  # same count in every layer and head
            assert layer.physical_length == stats.device_tokens

    stream_into(model, bank, 2000, check=check)
    stats = bank.stats()
    assert stats.logical_tokens > 20 * stats.device_tokens  # 2000 frames, bounded memory
    assert stats.evicted_frames > 0 and stats.resident_frames < 2000
    assert stats.quantized_tokens == quantized  # the low-precision tier fills up to its budget
    assert worst["device"] <= stats.sink_tokens + window * 2 + allowed_long + quantized  # 2 tokens per frame


@pytest.mark.parametrize("name", list(POLICIES))
def test_evicted_keys_are_the_original_keys_at_their_original_positions(tiny_models, name: str) -> None:
    """Layer-0 K/V do not depend on attention, so after any eviction they must equal the unevicted
    cache's K/V gathered at the kept tokens' origins: nothing shifted, nothing re-rotated."""
    model = tiny_models["qwen2_vl"]
    kept = MemoryBank(model.num_layers, policy_under_test(name), window_frames=8, budget_tokens=24)
    full = MemoryBank(model.num_layers, build_policy(name), window_frames=None)
    stream_into(model, kept, 120, seed=1)
    stream_into(model, full, 120, seed=1)
    layer_kept, layer_full = kept.cache.layers[0], full.cache.layers[0]
    origin = layer_kept.origin()  # (H, N)
    heads, n = origin.shape
    dim = layer_full.keys.shape[-1]
    gathered_keys = layer_full.keys[0].gather(1, origin.unsqueeze(-1).expand(-1, -1, dim))
    gathered_values = layer_full.values[0].gather(1, origin.unsqueeze(-1).expand(-1, -1, dim))
    assert n < layer_full.keys.shape[-2]
    exact = (layer_kept.keys[0] == gathered_keys).all(-1) & (layer_kept.values[0] == gathered_values).all(-1)
    if name in MERGING:  # merged tokens hold means (in the earlier token's slot); every other one is exact
        assert exact[:, : kept.sink_tokens].all() and exact[:, -8:].all() and (~exact).any()
    else:
        assert exact.all()

    # attention of a query over the kept tokens == masked attention over every token (per-head mask),
    # the full cache holding the kept contents at the kept tokens' origins
    query = torch.randn(1, heads, 3, dim)
    ours = torch.nn.functional.scaled_dot_product_attention(query, layer_kept.keys, layer_kept.values)
    mask = torch.zeros(heads, layer_full.keys.shape[-2], dtype=torch.bool)
    mask.scatter_(1, origin, True)
    full_keys = layer_full.keys[0].scatter(1, origin.unsqueeze(-1).expand(-1, -1, dim), layer_kept.keys[0])
    full_values = layer_full.values[0].scatter(1, origin.unsqueeze(-1).expand(-1, -1, dim), layer_kept.values[0])
    reference = torch.nn.functional.scaled_dot_product_attention(
        query, full_keys.unsqueeze(0), full_values.unsqueeze(0), attn_mask=mask[None, :, None, :]
    )
    assert (ours - reference).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", list(POLICIES))
def test_answering_leaves_every_policy_bank_unchanged(tiny_models, name: str) -> None:
    config = StreamConfig()
    config = config.replace("memory", policy=name, window_frames=6, budget_tokens=10)
    config = config.replace("sampling", max_new_tokens=6)
    session = StreamSession(tiny_models["qwen2_5_vl"], config)
    session.bank.policy = policy_under_test(name)  # same policy, small low-precision budget
    session.feed(frames_at(1.0, 41))
    assert session.bank.stats().evicted_tokens > 0
    before = snapshot(session)
    first = session.ask("What happens?")
    assert_same(before, snapshot(session))
    assert session.ask("What happens?").answer == first.answer


def test_stats_report_tiers_and_kept_fractions(tiny_models) -> None:
    model = tiny_models["qwen2_5_vl"]
    bank = MemoryBank(model.num_layers, build_policy("key_norm"), window_frames=8, budget_tokens=12)
    stream_into(model, bank, 64)
    stats = bank.stats()
    assert stats.short_term_frames == 8 and stats.long_term_tokens == 12
    assert stats.compression_ratio > 1.0
    fractions = bank.kept_per_frame()
    assert all(0 < f <= 1 for _, f in fractions)
    assert fractions[-1][1] == 1.0  # the short-term window is untouched


@pytest.mark.parametrize("budget_tokens", [pytest.param(None, marks=pytest.mark.slow), 12])
def test_byte_budget_holds_at_every_step_of_a_long_stream(tiny_models, budget_tokens: int | None) -> None:
    """``budget_bytes`` alone (2000 frames, ~80 s on a loaded 2-core machine: slow), or with a tighter
    ``budget_tokens``: the tighter one wins at every step."""
    model = tiny_models["qwen2_5_vl"]
    budget_bytes = 5000
    bank = MemoryBank(model.num_layers, build_policy("key_norm"), 8, budget_tokens, budget_bytes=budget_bytes)
    seen = []

    def check(bank: MemoryBank) -> None:
        stats = bank.stats()
        assert stats.long_term_bytes <= budget_bytes and stats.budget_bytes == budget_bytes
        seen.append(stats.long_term_tokens)

    stream_into(model, bank, 2000 if budget_tokens is None else 200, check=check)
    per_token = bank.full_precision_bytes_per_token()
    expected = budget_bytes // per_token if budget_tokens is None else min(budget_tokens, budget_bytes // per_token)
    assert seen[-1] == max(seen) == expected
    assert bank.stats().logical_tokens > 20 * bank.stats().device_tokens or budget_tokens is not None
