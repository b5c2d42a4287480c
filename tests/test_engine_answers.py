"""Answers of the real-time engine: exact coverage, memory never changed, ingest interleaved, modes, multi-turn."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.config import StreamConfig
from pipeline.engine import EngineSettings, RealtimeVideoQA
from pipeline.engine.records import Step, StepKind
from pipeline.session import StreamSession
from tests.test_session import _ListSource, assert_same, frames_at, snapshot

FAMILY = "qwen2_5_vl"


def config(max_new_tokens: int = 24) -> StreamConfig:
    return StreamConfig().replace("ingest", chunks_per_forward=2).replace("sampling", max_new_tokens=max_new_tokens)


class StepLog:
    """Records the worker's steps in order (a step hook)."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.lock = threading.Lock()

    def __call__(self, step: Step) -> None:
        with self.lock:
            self.steps.append(step)


@pytest.mark.timeout(240)
def test_answers_interleaved_with_ingest_see_exactly_their_frames_and_never_change_memory(tiny_models) -> None:
    model = tiny_models[FAMILY]
    frames = frames_at(2.0, 48)  # 24 s of stream at 2 fps
    cfg = config(max_new_tokens=32)
    log = StepLog()
    times = [3.0, 7.5, 12.0, 18.5]
    with RealtimeVideoQA(model, cfg, EngineSettings(speed=8.0, history_turns=0), step_hook=log) as engine:
        stream = engine.watch(frames, realtime=True)
        requests = [stream.ask(f"What happens before {t} s?", at=t) for t in times]
        infos = [r.result(timeout=60) for r in requests]
        assert stream.wait_ended(timeout=60)
        live = engine.core.call(lambda: snapshot(engine.core._streams[stream.stream_id].session))

    # memory after the stream equals a session that was fed the same frames and never asked anything
    plain = StreamSession(model, cfg)
    plain.feed(frames)
    assert_same(live, snapshot(plain))

    for t, info in zip(times, infos):
        assert info.status == "done" and info.question_time == t and info.lag_s == 0.0
        assert info.frames_covered == (0.0, t)  # exactly the frames up to the question time
        # the same answer as the synchronous session gives at that time (greedy)
        reference = StreamSession(model, cfg)
        reference.feed([f for f in frames if f.timestamp <= t])
        expected = reference.ask(info.question).answer
        assert info.answer == expected

    # ingest kept running while answers were generated: ingest steps between an answer's start and end
    interleaved = 0
    for request in requests:
        mine = [i for i, s in enumerate(log.steps) if s.request_id == request.info.request_id]
        interleaved += sum(1 for s in log.steps[mine[0] : mine[-1]] if s.kind is StepKind.INGEST)
    assert interleaved > 0


@pytest.mark.timeout(120)
def test_covered_waits_for_future_frames_within_the_bound_and_now_answers_at_once(tiny_models) -> None:
    model = tiny_models[FAMILY]
    frames = frames_at(2.0, 40)  # 20 s, played at 4x: 5 s of wall time
    with RealtimeVideoQA(model, config(8), EngineSettings(speed=4.0, max_wait_s=30.0)) as engine:
        stream = engine.watch(frames, realtime=True)
        waiting = stream.ask("What happens at 6 s?", at=6.0)
        bounded = stream.ask("What happens at 60 s?", at=60.0, max_wait_s=0.5)
        started = time.monotonic()
        now = stream.ask("What is on screen?", mode="now")
        now_info = now.result(timeout=30)
        assert now_info.status == "done" and now_info.wait_s < 1.0
        info = waiting.result(timeout=30)
        assert info.frames_covered is not None and info.frames_covered[1] == 6.0 and info.lag_s == 0.0
        assert info.wait_s > 0.5  # it waited for the frames up to 6 s to be captured (1.5 s at 4x)
        late = bounded.result(timeout=30)
        assert late.wait_s < 3.0 and late.lag_s > 40.0  # answered from what was there, the shortfall reported
        assert time.monotonic() - started < 30


@pytest.mark.timeout(120)
def test_previous_turns_stay_in_context_bounded_and_memory_is_unchanged(tiny_models) -> None:
    model = tiny_models[FAMILY]
    frames = frames_at(2.0, 8)
    settings = EngineSettings(history_turns=2)
    with RealtimeVideoQA(model, config(6), settings) as engine:
        stream = engine.watch(frames)
        assert stream.wait_ended(timeout=30)
        before = engine.core.call(lambda: snapshot(engine.core._streams[stream.stream_id].session))
        infos = [stream.ask(f"Question number {k}?").result(timeout=30) for k in range(4)]
        after = engine.core.call(lambda: snapshot(engine.core._streams[stream.stream_id].session))
    assert [i.history_turns for i in infos] == [0, 1, 2, 2]
    assert_same(before, after)
    # the history changes the context: a first question asked again later gets its own, earlier turns
    plain = StreamSession(model, config(6))
    plain.feed(frames)
    assert infos[0].answer == plain.ask("Question number 0?").answer


@pytest.mark.timeout(120)
def test_the_tail_of_an_ended_source_goes_into_memory_without_waiting_for_a_full_batch(tiny_models) -> None:
    model = tiny_models[FAMILY]
    cfg = StreamConfig().replace("ingest", chunks_per_forward=4)  # 8 frames per forward call
    frames = frames_at(2.0, 13)  # one full batch, two complete chunks and one odd frame
    with RealtimeVideoQA(model, cfg) as engine:
        stream = engine.watch(frames)
        assert stream.wait_ended(timeout=30)
        stats = stream.stats()
    assert stats["frames_encoded"] == 12 and stats["frames_buffered"] == 1

    session = StreamSession(model, cfg)
    session.watch(_ListSource(frames))
    session.ingest()
    assert session.source_exhausted and session.counters.frames_ingested == 12
    assert session.stats()["buffered_frames"] == 1
