"""Done-means of the real-time engine: 20 questions at random moments while a 5-minute video plays."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from pipeline.config import StreamConfig
from pipeline.engine import AnswerInfo, EngineSettings, RealtimeVideoQA
from pipeline.engine.records import StepKind
from tests.test_engine_answers import StepLog
from tests.video_factory import make_test_video

FAMILY = "qwen2_5_vl"
SPEED = 30.0  # 300 s of video in 10 s of wall time
MAX_WAIT_S = 5.0


@pytest.fixture(scope="module")
def five_minutes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("engine") / "five.mp4", seconds=300, fps=2, size=(64, 48), gop=20)


@pytest.mark.timeout(240)
def test_twenty_questions_at_random_moments_while_a_five_minute_video_streams(tiny_models, five_minutes) -> None:
    cfg = StreamConfig().replace("sampling", max_new_tokens=24).replace("source", fps=1.0)
    log = StepLog()
    settings = EngineSettings(speed=SPEED, max_wait_s=MAX_WAIT_S)
    answers: list[AnswerInfo] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    with RealtimeVideoQA(tiny_models[FAMILY], cfg, settings, step_hook=log) as engine:
        stream = engine.watch(str(five_minutes), realtime=True)
        assert stream.description["drop_policy"] == "drop_oldest" and stream.description["pace_speed"] == SPEED

        def client(k: int) -> None:
            rng = random.Random(k)
            try:
                for j in range(5):
                    threading.Event().wait(rng.uniform(0.2, 1.8))
                    request = stream.ask(f"client {k} question {j}: what happens?")
                    pieces = "".join(piece.text for piece in request)  # stream it like a user would
                    assert pieces == request.info.answer
                    with lock:
                        answers.append(request.info)
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        clients = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(120)
        assert stream.wait_ended(timeout=60)
        stats = stream.stats()

    assert not errors
    # every question answered once: none lost, none duplicated
    assert sorted(a.question for a in answers) == sorted(f"client {k} question {j}: what happens?"
                                                        for k in range(4) for j in range(5))
    assert len({a.request_id for a in answers}) == 20
    times = [a.question_time for a in answers]
    assert all(t is not None and 0 < t < 300 for t in times) and len(set(times)) > 5  # spread over the video
    for info in answers:
        assert info.status == "done" and info.answer and info.num_tokens > 0
        # covers every frame up to its question time (captured then), within the waiting bound
        assert info.frames_covered is not None and info.frames_covered[1] >= info.question_time
        assert info.lag_s == 0.0 and info.wait_s <= MAX_WAIT_S + 1.0
        assert info.ttft_s is not None and info.ttft_s <= info.total_s
    # ingest kept encoding while answers were generated
    open_answers: set[int] = set()
    ingest_during_answers = 0
    for step in log.steps:
        if step.kind is StepKind.START:
            open_answers.add(step.request_id)
        elif step.kind is StepKind.INGEST and open_answers:
            ingest_during_answers += 1
        done = {a.request_id for a in answers if a.request_id in open_answers}
        if step.kind is StepKind.DECODE and step.request_id in done:
            last = max(i for i, s in enumerate(log.steps) if s.request_id == step.request_id)
            if log.steps[last] is step:
                open_answers.discard(step.request_id)
    assert ingest_during_answers > 0
    # every captured frame is accounted for: encoded, waiting in a partial chunk, or dropped and counted
    assert stats["frames_read"] == 300
    assert stats["frames_encoded"] + stats["frames_buffered"] + stats["frames_dropped"] == 300
    assert stats["end_reason"] == "end of stream"
