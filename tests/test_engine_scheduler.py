"""The engine's scheduler on plain records, without a model: ingest is never starved, sharing is fair."""

from __future__ import annotations

import pytest

from pipeline.engine.records import Phase, RequestView, SchedulerInput, StepKind, StreamView
from pipeline.engine.scheduler import Scheduler


def stream(stream_id: int, queued: int = 8, batch: int = 8, ended: bool = False, catch_up: bool = False) -> StreamView:
    return StreamView(stream_id, queued, batch, ended, catch_up)


def request(request_id: int, stream_id: int = 1, phase: Phase = Phase.DECODING) -> RequestView:
    return RequestView(request_id, stream_id, phase, arrival=request_id)


def test_ingest_readiness_needs_a_full_batch_unless_the_source_ended_or_a_question_waits() -> None:
    assert stream(1, queued=8).ingest_ready
    assert not stream(1, queued=7).ingest_ready
    assert stream(1, queued=3, ended=True).ingest_ready
    assert stream(1, queued=3, catch_up=True).ingest_ready
    assert not stream(1, queued=0, ended=True).ingest_ready


def test_a_long_answer_never_delays_ingest_by_more_than_one_decode_step() -> None:
    scheduler = Scheduler(decode_steps_per_ingest=1)
    state = SchedulerInput((stream(1),), (request(10),))
    kinds = [scheduler.schedule(state).kind for _ in range(10)]
    assert kinds == [StepKind.INGEST, StepKind.DECODE] * 5


def test_decode_steps_per_ingest_sets_the_ratio() -> None:
    scheduler = Scheduler(decode_steps_per_ingest=3)
    state = SchedulerInput((stream(1),), (request(10),))
    kinds = [scheduler.schedule(state).kind for _ in range(8)]
    assert kinds == [StepKind.INGEST] + [StepKind.DECODE] * 3 + [StepKind.INGEST] + [StepKind.DECODE] * 3


def test_answers_run_back_to_back_when_no_frames_wait_and_idle_when_nothing_to_do() -> None:
    scheduler = Scheduler()
    state = SchedulerInput((stream(1, queued=2),), (request(10),))
    assert {scheduler.schedule(state).kind for _ in range(5)} == {StepKind.DECODE}
    assert scheduler.schedule(SchedulerInput((stream(1, queued=0),), ())).kind is StepKind.IDLE


def test_open_answers_share_decode_steps_round_robin() -> None:
    scheduler = Scheduler()
    state = SchedulerInput((stream(1, queued=0),), (request(10), request(11), request(12)))
    served = [scheduler.schedule(state).request_id for _ in range(6)]
    assert served == [10, 11, 12, 10, 11, 12]


def test_ready_questions_start_in_arrival_order_up_to_the_active_limit() -> None:
    scheduler = Scheduler(max_active=2)
    ready = [RequestView(i, 1, Phase.READY, arrival=a) for i, a in ((20, 2), (21, 0), (22, 1))]
    step = scheduler.schedule(SchedulerInput((), tuple(ready)))
    assert step.kind is StepKind.START and step.request_id == 21  # earliest arrival first
    full = SchedulerInput((), (request(10), request(11), *ready))
    assert {scheduler.schedule(full).kind for _ in range(6)} == {StepKind.DECODE}  # no slot free


def test_streams_get_fair_shares_of_ingest_and_answer_steps() -> None:
    scheduler = Scheduler()
    state = SchedulerInput((stream(1), stream(2), stream(3)), ())
    assert [scheduler.schedule(state).stream_id for _ in range(6)] == [1, 2, 3, 1, 2, 3]
    answers = SchedulerInput((), (request(10, 1), request(11, 1), request(12, 1), request(20, 2)))
    served = [scheduler.schedule(answers) for _ in range(6)]
    # stream 2's single answer gets every other step although stream 1 has three
    assert [s.stream_id for s in served] == [1, 2, 1, 2, 1, 2]
    assert [s.request_id for s in served if s.stream_id == 1] == [10, 11, 12]


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        Scheduler(decode_steps_per_ingest=0)
