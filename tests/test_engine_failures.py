"""Failure behaviour of the real-time engine: cancellation, close with pending requests, failing steps,
sources that die. Every request ends (done, cancelled or failed); nothing hangs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from pipeline.config import StreamConfig
from pipeline.engine import EngineClosedError, EngineSettings, EngineStepError, RealtimeVideoQA, RequestCancelledError
from pipeline.engine.records import Step, StepKind
from pipeline.frames import Frame
from pipeline.sources import open_source
from tests.test_session import assert_same, frames_at, snapshot
from tests.video_factory import make_test_video

FAMILY = "qwen2_5_vl"


def config(max_new_tokens: int = 16) -> StreamConfig:
    return StreamConfig().replace("ingest", chunks_per_forward=2).replace("sampling", max_new_tokens=max_new_tokens)


def session_of(engine: RealtimeVideoQA, stream_id: int) -> dict:
    return engine.core.call(lambda: snapshot(engine.core._streams[stream_id].session))


def engine_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name == "engine-worker" or t.name.startswith("capture-")}


@pytest.mark.timeout(120)
def test_cancelling_a_request_stops_it_and_leaves_memory_unchanged(tiny_models) -> None:
    with RealtimeVideoQA(tiny_models[FAMILY], config(200)) as engine:
        stream = engine.watch(frames_at(2.0, 8))
        assert stream.wait_ended(timeout=30)
        before = session_of(engine, stream.stream_id)
        request = stream.ask("Describe everything in detail.")
        pieces = []
        with pytest.raises(RequestCancelledError):
            for piece in request:
                pieces.append(piece)
                if len(pieces) == 3:
                    request.cancel()
        assert request.info.status == "cancelled" and request.info.num_tokens < 200
        assert_same(before, session_of(engine, stream.stream_id))
        assert stream.ask("Still there?").result(timeout=30).status == "done"  # the engine goes on


@pytest.mark.timeout(120)
def test_a_decode_step_that_raises_fails_only_its_request(tiny_models) -> None:
    victim: list[int] = []

    def hook(step: Step) -> None:
        if step.kind is StepKind.DECODE and step.request_id in victim:
            raise RuntimeError("injected fault in a decode step")

    with RealtimeVideoQA(tiny_models[FAMILY], config(16), step_hook=hook) as engine:
        stream = engine.watch(frames_at(2.0, 8))
        assert stream.wait_ended(timeout=30)
        bad = stream.ask("This one fails.")
        victim.append(bad.info.request_id)
        good = stream.ask("This one works.")
        with pytest.raises(EngineStepError, match="injected fault") as caught:
            bad.result(timeout=30)
        assert isinstance(caught.value.__cause__, RuntimeError)
        assert bad.info.status == "failed" and "injected fault" in bad.info.error
        assert good.result(timeout=30).status == "done"
        assert stream.ask("And another.").result(timeout=30).status == "done"


def frames_then(bad: Frame | Exception, good: list[Frame]) -> Iterator[Frame]:
    yield from good
    if isinstance(bad, Exception):
        raise bad
    yield bad


@pytest.mark.timeout(120)
def test_an_ingest_step_that_raises_fails_the_waiting_questions_and_ends_the_stream(tiny_models) -> None:
    good = frames_at(2.0, 8)
    broken = Frame(8, 4.0, np.zeros((56, 84, 3), dtype=np.float32))  # not uint8: feed() raises inside the step
    with RealtimeVideoQA(tiny_models[FAMILY], config(8)) as engine:
        stream = engine.watch(frames_then(broken, good))
        waiting = stream.ask("What happens at 30 s?", at=30.0)
        with pytest.raises(EngineStepError, match="uint8"):
            waiting.result(timeout=30)
        stats = stream.stats()
        assert stats["end_reason"].startswith("error: ingest step failed") and stats["capture_ended"]
        with pytest.raises(EngineClosedError, match="failed"):
            stream.ask("Anything?")
        other = engine.watch(frames_at(2.0, 4))  # other streams are not affected
        assert other.ask("Fine?", mode="now").result(timeout=30).status == "done"


@pytest.mark.timeout(120)
def test_a_source_that_dies_mid_stream_ends_ingest_with_a_reason_and_questions_are_still_answered(
    tiny_models,
) -> None:
    good = frames_at(2.0, 12)
    with RealtimeVideoQA(tiny_models[FAMILY], config(8)) as engine:
        stream = engine.watch(frames_then(OSError("camera unplugged"), good))
        assert stream.wait_ended(timeout=30)
        stats = stream.stats()
        assert stats["end_reason"] == "error: camera unplugged" and stats["frames_read"] == 12
        info = stream.ask("What was seen?").result(timeout=30)
        assert info.status == "done" and info.frames_covered == (0.0, 5.5)


@pytest.mark.timeout(120)
def test_closing_the_engine_cancels_pending_requests_and_releases_everything(tiny_models, tmp_path) -> None:
    video = make_test_video(tmp_path / "clip.mp4", seconds=20, fps=5, size=(64, 48))
    source = open_source(str(video), fps=2.0)
    engine = RealtimeVideoQA(tiny_models[FAMILY], config(400), EngineSettings(max_active_answers=1))
    stream = engine.watch(source, realtime=True)  # 20 s of video in real time: still playing at close
    requests = [stream.ask(f"Long question {k}?", mode="now") for k in range(5)]
    first = next(iter(requests[0]))  # the first answer is running
    assert first is not None
    time.sleep(0.2)
    started = time.monotonic()
    engine.close()
    assert time.monotonic() - started < 10
    for request in requests:
        assert request.done and request.info.status == "cancelled"
        with pytest.raises((EngineClosedError, RequestCancelledError)):
            request.result(timeout=5)
    assert source.closed and engine.core.closed
    assert not engine_threads()
    assert not source.reader_alive
    with pytest.raises(EngineClosedError):
        stream.ask("After close?")
    with pytest.raises(EngineClosedError):
        engine.watch(frames_at(2.0, 4))


@pytest.mark.timeout(120)
def test_closing_with_drain_finishes_the_pending_requests(tiny_models) -> None:
    engine = RealtimeVideoQA(tiny_models[FAMILY], config(12))
    stream = engine.watch(frames_at(2.0, 8))
    requests = [stream.ask(f"Question {k}?", mode="now") for k in range(3)]
    engine.close(drain=True)
    assert [r.info.status for r in requests] == ["done"] * 3
    assert all(r.info.num_tokens > 0 for r in requests)
