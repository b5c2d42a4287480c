"""Retrieval at answer time on every backbone family (M-RoPE and 1-D positions): memory unchanged."""

from __future__ import annotations

import pytest

from pipeline.config import StreamConfig
from pipeline.session import StreamSession
from tests.model_fixtures import NEW_FAMILIES, family_checkpoints, family_models  # noqa: F401, F811  (session fixtures)
from tests.test_session import assert_same, frames_at, snapshot


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", *NEW_FAMILIES])
def test_text_and_image_answers_with_retrieval_leave_memory_unchanged(
    family_models, family: str  # noqa: F811  (the fixture)
) -> None:
    model = family_models[family]
    config = StreamConfig().replace("sampling", max_new_tokens=3)
    config = config.replace("memory", policy="sink_window", window_frames=4, budget_tokens=0)
    session = StreamSession(model, config.replace("archive", enabled=True, top_k=3))
    frames = frames_at(2.0, 4 * model.frames_per_chunk * 6)  # whole forward batches: nothing pending
    session.feed(frames)
    before = snapshot(session)
    text = session.ask("What happened?")
    image = session.ask("When did this appear?", image=frames[3].rgb)
    assert_same(before, snapshot(session))
    per_block = model.frames_per_chunk
    assert len(text.retrieved) == len(image.retrieved) == 3 * per_block
    if per_block == 1:  # a one-frame block encodes exactly like the query image
        assert frames[3].timestamp in image.retrieved
