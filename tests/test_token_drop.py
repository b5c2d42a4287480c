"""TokenDrop: repeated patches never reach the LLM, survivors keep their positions, policies compose."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memory.policies import TokenDrop, build_policy
from models.mrope import MRopeCursor, chunk_positions, text_positions
from pipeline.config import StreamConfig
from pipeline.errors import UserInputError
from pipeline.frames import Frame
from pipeline.session import StreamSession
from tests.test_session import assert_same, snapshot


def mostly_static_frames(n: int, seed: int = 0) -> list[Frame]:
    """A static background where one corner changes every frame."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, (56, 84, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        image = background.copy()
        image[:28, :28] = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
        frames.append(Frame(i, i / 2, image))
    return frames


def session_with(model, policy: str, **memory) -> StreamSession:
    config = StreamConfig()
    config = config.replace("memory", policy=policy, **memory)
    config = config.replace("sampling", max_new_tokens=6)
    return StreamSession(model, config)


def test_static_regions_are_dropped_before_the_llm(tiny_models) -> None:
    model = tiny_models["qwen2_5_vl"]
    dropping = session_with(model, "token_drop")
    plain = session_with(model, "sink_window")
    frames = mostly_static_frames(24)
    dropping.feed(frames)
    plain.feed(frames)
    written = dropping.bank.cache.logical_length - dropping.bank.sink_tokens
    assert dropping.counters.tokens_dropped > 0
    assert written + dropping.counters.tokens_dropped == plain.bank.cache.logical_length - plain.bank.sink_tokens
    assert written < 0.5 * (plain.bank.cache.logical_length - plain.bank.sink_tokens)
    assert dropping.bank.stats().resident_frames == 24  # every chunk keeps at least one token


def test_survivors_keep_their_positions(tiny_models) -> None:
    """Dropping before the LLM == a full forward over every token whose mask hides the dropped ones."""
    model = tiny_models["qwen2_vl"]
    session = session_with(model, "token_drop")
    frames = mostly_static_frames(8, seed=1)
    session.feed(frames)
    question = model._ids(model.question_text("What changed?"))
    checkpoint = session.bank.cache.checkpoint()
    with torch.inference_mode():
        ours = model._forward_text(question, session.bank.cache, session.cursor.copy())
    session.bank.cache.rollback(checkpoint)

    cursor = MRopeCursor()
    header = model._ids(model.header_text(session.config.question.system_prompt))
    embeds, positions, visible = [model.embed_tokens(torch.tensor(header))], [text_positions(cursor, len(header))], []
    visible.append(torch.ones(len(header), dtype=torch.bool))
    policy, previous = TokenDrop(), None
    for k in range(0, 8, 2):
        chunk = model.encode([f.rgb for f in frames[k : k + 2]], [f.timestamp for f in frames[k : k + 2]])[0]
        keep = policy.filter_chunk(chunk.embeds, previous)
        previous = chunk.embeds
        mask = torch.zeros(chunk.embeds.shape[0], dtype=torch.bool)
        mask[keep if keep is not None else slice(None)] = True
        embeds.append(chunk.embeds)
        positions.append(chunk_positions(cursor, chunk.grid_hw, frames[k].timestamp, model.tokens_per_second))
        visible.append(mask)
    embeds.append(model.embed_tokens(torch.tensor(question)))
    positions.append(text_positions(cursor, len(question)))
    visible.append(torch.ones(len(question), dtype=torch.bool))
    columns = torch.cat(visible)
    assert not columns.all()  # something was dropped
    n = columns.numel()
    attend = torch.ones(n, n, dtype=torch.bool).tril() & columns[None, :]
    attend |= torch.eye(n, dtype=torch.bool)  # dropped rows attend to themselves only (their output is unused)
    with torch.inference_mode():
        out = model.language_model(
            inputs_embeds=torch.cat(embeds).unsqueeze(0),
            position_ids=torch.cat(positions, dim=1).unsqueeze(1),
            attention_mask=attend[None, None],
        )
        reference = model.lm_head(out.last_hidden_state[0, -1]).float()
    assert (ours - reference).abs().max().item() <= 1e-5


def test_composition_holds_the_budget_and_answers_change_nothing(tiny_models) -> None:
    model = tiny_models["qwen2_5_vl"]
    session = session_with(model, "token_drop+key_norm", window_frames=6, budget_tokens=10)
    assert session.bank.policy.name == "token_drop+key_norm"
    frames = mostly_static_frames(400)
    for start in range(0, 400, 40):
        session.feed(frames[start : start + 40])
        stats = session.bank.stats()
        assert stats.long_term_tokens <= 10 and stats.short_term_frames <= 6
    before = snapshot(session)
    first = session.ask("What changed?")
    assert_same(before, snapshot(session))
    assert session.ask("What changed?").answer == first.answer


def test_bad_compositions_are_clear_errors() -> None:
    with pytest.raises(UserInputError, match="both decide"):
        build_policy("key_norm+proxy_attention")
    with pytest.raises(UserInputError, match="valid policies"):
        build_policy("token_drop+nonsense")
