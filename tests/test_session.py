"""The session API: answers see exactly the frames up to the question time and never change memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.protocol import SamplingParams
from pipeline.config import StreamConfig
from pipeline.errors import QuestionError, UserInputError
from pipeline.frames import Frame
from pipeline.session import StreamSession
from tests.test_incremental_prefill import make_frames


def frames_at(fps: float, n: int, start: int = 0, seed: int = 0) -> list[Frame]:
    images = make_frames(n + start, size=(56, 84), seed=seed)
    return [Frame(i, i / fps, images[i]) for i in range(start, start + n)]


def snapshot(session: StreamSession) -> dict:
    cache = session.bank.cache
    return {
        "tensors": [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers],
        "quantized": [quantized_state(layer) for layer in cache.layers],
        "lengths": (cache.physical_length, cache.logical_length),
        "cursor": session.cursor.copy(),
        "blocks": list(session.bank.blocks),
        "buffer": [f.index for f in session._buffer],
        "stats": session.bank.stats(),
    }


def quantized_state(layer) -> tuple[torch.Tensor, ...] | None:
    """The low-precision tier of a layer as plain tensors (origin, dequantised keys and values)."""
    segment = layer.quantized_segment
    if segment is None:
        return None
    return (segment.origin.clone(), *(t.clone() for t in segment.dequantized(torch.float32)))


def assert_same(a: dict, b: dict) -> None:
    for (k1, v1), (k2, v2) in zip(a["tensors"], b["tensors"]):
        assert torch.equal(k1, k2) and torch.equal(v1, v2)
    for q1, q2 in zip(a["quantized"], b["quantized"]):
        assert (q1 is None) == (q2 is None)
        if q1 is not None:
            assert all(torch.equal(t1, t2) for t1, t2 in zip(q1, q2))
    assert a["lengths"] == b["lengths"]
    assert a["cursor"] == b["cursor"]
    assert a["blocks"] == b["blocks"]
    assert a["buffer"] == b["buffer"]
    assert a["stats"] == b["stats"]


def new_session(model, **memory) -> StreamSession:
    config = StreamConfig()
    config = config.replace("sampling", max_new_tokens=8)
    if memory:
        config = config.replace("memory", **memory)
    return StreamSession(model, config)


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
@pytest.mark.parametrize("n_frames", [8, 9])  # 9: a trailing half chunk lives only in the answer's view
def test_answering_leaves_memory_exactly_as_it_was(tiny_models, family: str, n_frames: int) -> None:
    session = new_session(tiny_models[family])
    session.feed(frames_at(2.0, n_frames))
    before = snapshot(session)
    first = session.ask("What happens?")
    assert_same(before, snapshot(session))
    second = session.ask("What happens?")
    assert first.answer == second.answer and first.num_tokens == second.num_tokens
    stream = session.ask_stream("Describe it.", sampling=SamplingParams(max_new_tokens=8))
    next(stream)
    stream.close()  # abandoned midway
    assert_same(before, snapshot(session))


def test_streamed_pieces_equal_the_answer(tiny_models) -> None:
    session = new_session(tiny_models["qwen2_5_vl"])
    session.feed(frames_at(1.0, 6))
    streamed = session.ask_stream("What happens?")
    text = "".join(piece.text for piece in streamed)
    answer = streamed.result()
    assert text == answer.answer == session.ask("What happens?").answer
    assert answer.finish_reason in ("stop", "length")
    assert answer.timing["ttft_s"] <= answer.timing["total_s"]


def test_partial_chunk_answer_equals_padded_chunk(tiny_models) -> None:
    """A question after an odd frame sees it: same logits as a stream whose last chunk repeats that frame."""
    model = tiny_models["qwen2_5_vl"]
    frames = frames_at(2.0, 5)
    odd = new_session(model)
    odd.feed(frames)
    padded = new_session(model)
    padded.feed(frames + [Frame(5, frames[-1].timestamp, frames[-1].rgb)])
    assert odd.ask("What happens?").answer == padded.ask("What happens?").answer
    assert odd.bank.stats().resident_frames == 4 and len(odd._buffer) == 1


def test_answer_covers_frames_up_to_question_time(tiny_models, tmp_path) -> None:
    session = new_session(tiny_models["qwen2_5_vl"])
    session.watch(_ListSource(frames_at(2.0, 20)))
    answer = session.ask("What happened so far?", at=3.0)
    assert answer.question_time == 3.0
    assert answer.frames_covered == (0.0, 3.0)
    assert answer.frames_ingested == 7  # 0.0, 0.5, ..., 3.0
    later = session.ask("And now?", at=6.2)
    assert later.frames_covered == (0.0, 6.0)
    with pytest.raises(QuestionError, match="before frames already in memory"):
        session.ask("Back then?", at=1.0)
    assert session.ask("Still fine?").frames_covered == (0.0, 6.0)


def test_memory_is_bounded_by_the_window(tiny_models) -> None:
    session = new_session(tiny_models["qwen2_5_vl"], window_frames=8)
    sizes = []
    for start in range(0, 64, 8):
        session.feed(frames_at(1.0, 8, start=start))
        sizes.append(session.bank.stats().device_tokens)
    stats = session.bank.stats()
    assert stats.resident_frames == 8 and stats.evicted_frames == 56
    assert len(set(sizes[1:])) == 1  # flat once the window is full
    answer = session.ask("What happens?")
    assert answer.frames_covered == (56.0, 63.0)


@pytest.mark.parametrize(
    "question,match",
    [("", "empty"), ("   \n", "empty"), ("word " * 3000, "at most")],
)
def test_bad_questions_are_clear_errors_and_memory_is_kept(tiny_models, question: str, match: str) -> None:
    session = new_session(tiny_models["qwen2_5_vl"])
    session.feed(frames_at(1.0, 4))
    before = snapshot(session)
    with pytest.raises(QuestionError, match=match):
        session.ask(question)
    assert_same(before, snapshot(session))
    assert session.ask("What happens?").frames_ingested == 4


def test_bad_frames_are_rejected_with_the_fix(tiny_models) -> None:
    session = new_session(tiny_models["qwen2_5_vl"])
    session.feed(frames_at(1.0, 2))
    with pytest.raises(UserInputError, match="time order"):
        session.feed([Frame(9, 0.5, np.zeros((56, 84, 3), np.uint8))])
    with pytest.raises(UserInputError, match="uint8 RGB"):
        session.feed([Frame(9, 5.0, np.zeros((56, 84), np.uint8))])
    assert session.ask("What happens?").frames_ingested == 2


class _ListSource:
    """A minimal in-memory source (the real sources are tested in test_sources.py)."""

    end_reason = None

    def __init__(self, frames: list[Frame]) -> None:
        self._frames = frames

    def __iter__(self):
        return iter(self._frames)

    def close(self) -> None:
        self.end_reason = "closed"


def test_a_second_source_continues_the_session_clock(tiny_models) -> None:
    """Re-watching (a reconnect, the next file) keeps time moving forward instead of failing."""
    session = new_session(tiny_models["qwen2_5_vl"])
    session.watch(_ListSource(frames_at(1.0, 4)))
    session.ingest()
    session.watch(_ListSource(frames_at(1.0, 4)))  # timestamps restart at 0 in the new source
    session.ingest()
    answer = session.ask("What happens?")
    assert answer.frames_ingested == 8
    assert answer.frames_covered == (0.0, 7.0)


def test_frame_size_is_pinned_by_the_first_frame(tiny_models) -> None:
    session = new_session(tiny_models["qwen2_5_vl"])
    session.feed(frames_at(1.0, 8))
    bigger = [Frame(8 + i, 8.0 + i, np.zeros((112, 168, 3), np.uint8)) for i in range(8)]
    session.feed(bigger)  # a camera that changed resolution: resized to the stream's grid
    per_chunk = [b.n_tokens for b in session.bank.blocks if b.n_frames]
    assert len(per_chunk) == 8 and len(set(per_chunk)) == 1
