"""ProxyAttention: the probe's proxy-row attention equals the model's own attention weights."""

from __future__ import annotations

import pytest
import torch

from memory.policies import ProxyAttention
from models.mrope import text_positions
from pipeline.config import StreamConfig
from pipeline.session import StreamSession
from tests.test_session import frames_at


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_probe_equals_eager_attention_weights(tiny_models, family: str) -> None:
    model = tiny_models[family]
    config = StreamConfig().replace("memory", policy="proxy_attention", window_frames=4, budget_tokens=6)
    session = StreamSession(model, config)
    session.feed(frames_at(1.0, 24))
    assert session.bank.stats().long_term_tokens == 6
    probe = session._probe()
    ours = [probe.attention(layer) for layer in range(model.num_layers)]

    cache = session.bank.cache
    checkpoint = cache.checkpoint()
    ids = model._ids(model.question_text(""))
    model.model.set_attn_implementation("eager")
    try:
        with torch.inference_mode():
            out = model.language_model(
                inputs_embeds=model.embed_tokens(torch.tensor([ids])),
                position_ids=text_positions(session.cursor.copy(), len(ids)).unsqueeze(1),
                past_key_values=cache,
                use_cache=True,
                output_attentions=True,
            )
    finally:
        model.model.set_attn_implementation("sdpa")
        cache.rollback(checkpoint)
    n_cached = checkpoint.physical_length
    for layer, weights in enumerate(out.attentions):  # (1, H_q, P, N + P)
        kv_heads = ours[layer].shape[0]
        reference = weights[0, :, :, :n_cached].reshape(kv_heads, -1, n_cached).mean(dim=1)
        assert (ours[layer] - reference).abs().max().item() <= 1e-5


def test_proxy_attention_keeps_what_the_proxy_reads(tiny_models) -> None:
    """The kept long-term tokens are the top-attended ones at the moment of eviction."""
    model = tiny_models["qwen2_5_vl"]
    config = StreamConfig().replace("memory", policy="proxy_attention", window_frames=4, budget_tokens=3)
    config = config.replace("ingest", chunks_per_forward=1)
    session = StreamSession(model, config)
    session.bank.policy = ProxyAttention(prototypes=False)
    session.feed(frames_at(1.0, 4))  # two chunks: the window is full, nothing is long-term yet
    assert session.bank.stats().evicted_tokens == 0
    probe = session._probe()
    sinks = session.bank.sink_tokens
    per_chunk = session.bank.spans[0].block.n_tokens  # the first chunk leaves the window next
    expected = [
        probe.attention(layer)[:, sinks : sinks + per_chunk].topk(3, dim=-1).indices.sort(dim=-1).values + sinks
        for layer in range(model.num_layers)
    ]
    session.feed(frames_at(1.0, 2, start=4))
    assert session.bank.stats().long_term_tokens == 3
    for layer, kept in zip(session.bank.cache.layers, expected):
        assert torch.equal(layer.origin()[:, sinks : sinks + 3], kept)


def test_evicted_tokens_of_a_frame_become_one_attention_weighted_prototype(tiny_models) -> None:
    """StreamMem: the chunk leaving the window keeps its best tokens plus one prototype, the
    attention-weighted mean of its evicted tokens, in the slot of the best evicted one."""
    model = tiny_models["qwen2_5_vl"]
    config = StreamConfig().replace("memory", policy="proxy_attention", window_frames=4, budget_tokens=3)
    config = config.replace("ingest", chunks_per_forward=1)
    session = StreamSession(model, config)
    session.feed(frames_at(1.0, 4))
    probe = session._probe()
    sinks = session.bank.sink_tokens
    per_chunk = session.bank.spans[0].block.n_tokens
    first_chunk = slice(sinks, sinks + per_chunk)
    before = [(layer.keys[0, :, first_chunk].clone(), layer.values[0, :, first_chunk].clone())
              for layer in session.bank.cache.layers]  # fmt: skip
    attention = [probe.attention(layer)[:, sinks : sinks + per_chunk] for layer in range(model.num_layers)]
    session.feed(frames_at(1.0, 2, start=4))
    assert session.bank.stats().long_term_tokens == 3
    for layer, (keys, values), weights in zip(session.bank.cache.layers, before, attention):
        for head in range(keys.shape[0]):
            order = weights[head].argsort(descending=True)
            best, evicted = order[:2], order[2:]  # 3 slots: 2 best tokens + 1 prototype
            kept = layer.origin()[head, sinks : sinks + 3] - sinks
            assert kept.tolist() == sorted(best.tolist() + [int(evicted[0])])
            w = weights[head, evicted].double() / weights[head, evicted].double().sum()
            prototype_key = (w[:, None] * keys[head, evicted].double()).sum(0).float()
            prototype_value = (w[:, None] * values[head, evicted].double()).sum(0).float()
            slot = kept.tolist().index(int(evicted[0]))
            assert (layer.keys[0, head, sinks + slot] - prototype_key).abs().max() <= 1e-5
            assert (layer.values[0, head, sinks + slot] - prototype_value).abs().max() <= 1e-5
            for position in range(3):  # the other kept tokens are untouched
                if position != slot:
                    assert torch.equal(layer.keys[0, head, sinks + position], keys[head, kept[position]])
