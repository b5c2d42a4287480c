"""The engine core: one worker thread owns the model and runs the scheduler's steps.

Clients talk to the worker through a command inbox (thread-safe) and read answers from each request's
:class:`~pipeline.engine.channel.OutputChannel`. Per loop iteration the worker applies commands,
updates which questions may start, asks the :class:`~pipeline.engine.scheduler.Scheduler` for one step
and executes it:

* ``INGEST``: take up to one forward call's worth of frames from the stream's capture queue and feed
  them to its :class:`~pipeline.session.StreamSession` (at most one encode + prefill);
* ``START``: open an answer on a copy-on-write fork of the memory (:class:`AnswerJob`);
* ``DECODE``: one token of an open answer.

A failing step fails only what it affects: an answer step fails that request; an ingest step ends the
stream's ingest and fails the questions still waiting for its frames (answers already running on their
fork finish). Nothing hangs: every request ends with ``done``, ``cancelled`` or ``failed``.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from models.protocol import SamplingParams, VideoLM
from pipeline.config import StreamConfig
from pipeline.engine.answering import AnswerJob
from pipeline.engine.capture import CaptureQueue, CaptureThread
from pipeline.engine.channel import Event
from pipeline.engine.dialogue import Dialogue
from pipeline.engine.errors import EngineClosedError, EngineStepError, RequestCancelledError
from pipeline.engine.records import AnswerInfo, AnswerPiece, Phase, RequestView, SchedulerInput, Step, StepKind
from pipeline.engine.requests import Request
from pipeline.engine.scheduler import Scheduler
from pipeline.engine.settings import QUESTION_MODES, EngineSettings
from pipeline.engine.stream_state import EngineStream
from pipeline.errors import QuestionError
from pipeline.frames import Frame
from pipeline.session import StreamSession

logger = logging.getLogger(__name__)

StepHook = Callable[[Step], None]
"""Called by the worker before it executes each step (instrumentation; an exception fails the step)."""


class EngineCore:
    """Owns the model, the streams and the requests; all model work happens in its worker thread.

    Args:
        model: the loaded model (used only by the worker thread).
        config: configuration sessions start from.
        settings: engine settings.
        step_hook: optional callable run before each step (for timing and fault injection).
    """

    def __init__(
        self,
        model: VideoLM,
        config: StreamConfig | None = None,
        settings: EngineSettings | None = None,
        step_hook: StepHook | None = None,
    ) -> None:
        self.model = model
        self.config = config or StreamConfig()
        self.settings = settings or EngineSettings()
        self.step_hook = step_hook
        self.scheduler = Scheduler(self.settings.decode_steps_per_ingest, self.settings.max_active_answers)
        self._inbox: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], Future]] = queue.Queue()
        self._wake = threading.Event()
        self._streams: dict[int, EngineStream] = {}
        self._requests: dict[int, Request] = {}
        self._ids = itertools.count(1)
        self._arrivals = itertools.count()
        self._closing = False
        self._closed = threading.Event()
        self.steps: dict[str, int] = {kind.value: 0 for kind in StepKind if kind is not StepKind.IDLE}
        self.failure: BaseException | None = None
        self._worker = threading.Thread(target=self._run, name="engine-worker", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------------------ client side
    def call(self, function: Callable[..., Any], *args: Any, timeout: float | None = 60.0) -> Any:
        """Run ``function(*args)`` in the worker thread between steps and return its result."""
        if self._closed.is_set() or self._closing:
            raise EngineClosedError("the engine is closed: create a new one")
        future: Future = Future()
        self._inbox.put((function, args, future))
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return future.result(0.1)
            except TimeoutError:
                if self._closed.is_set() and not future.done():
                    raise EngineClosedError("the engine is closed: create a new one") from None
                if deadline is not None and time.monotonic() > deadline:
                    raise

    def add_stream(
        self,
        frames: Iterable[Frame],
        *,
        drop_oldest: bool,
        pace_speed: float | None,
        config: StreamConfig | None = None,
    ) -> int:
        """Register a stream reading ``frames``; returns its id (its capture starts at once)."""
        return self.call(self._add_stream, frames, drop_oldest, pace_speed, config or self.config)

    def submit(
        self,
        stream_id: int,
        question: str,
        *,
        at: float | None = None,
        mode: str = "covered",
        sampling: SamplingParams | None = None,
        max_wait_s: float | None = None,
    ) -> Request:
        """Queue a question on a stream without waiting for the worker; returns the request (its
        channel streams the answer). The question time defaults to the newest captured frame.

        Raises:
            QuestionError: empty or too long question, unknown mode.
            EngineClosedError: the engine or the stream is closed, or the stream failed.
        """
        if mode not in QUESTION_MODES:
            raise QuestionError(f"mode {mode!r} is not one of {', '.join(QUESTION_MODES)}")
        arrived_at = time.monotonic()
        if self._closed.is_set() or self._closing:
            raise EngineClosedError("the engine is closed: create a new one")
        stream = self._stream(stream_id)
        if stream.failure is not None:
            raise EngineClosedError(f"stream {stream_id} failed ({stream.failure}): watch the source again")
        sampling = sampling or stream.session.config.sampling
        question = stream.session._validated(question, sampling)  # reads only: safe from this thread
        question_time = at if at is not None else stream.queue.newest_timestamp
        if mode == "now" and at is None:
            question_time = stream.session._last_timestamp
        wait = self.settings.max_wait_s if max_wait_s is None else max_wait_s
        info = AnswerInfo(next(self._ids), stream_id, question, mode, question_time)
        request = Request(info, sampling, next(self._arrivals), arrived_at + wait, arrived_at=arrived_at)
        self._inbox.put((self._register, (request,), Future()))
        self._wake.set()
        return request

    def cancel(self, request_id: int) -> None:
        """Cancel a request (no-op if it already ended or the engine is closed)."""
        if not self._closed.is_set():
            self._inbox.put((self._cancel, (request_id,), Future()))
            self._wake.set()

    def close_stream(self, stream_id: int) -> None:
        """Stop a stream's capture, cancel its requests and free its memory."""
        if not self._closed.is_set():
            self.call(self._close_stream, stream_id)

    def stream_stats(self, stream_id: int) -> dict[str, Any]:
        """The stream's counters as a dict (see :class:`~pipeline.engine.records.StreamStats`)."""
        return self.call(lambda: self._stream(stream_id).stats().to_dict())

    def close(self, drain: bool = False, timeout: float = 30.0) -> None:
        """Stop the engine: cancel (or, with ``drain``, first finish) every request, stop every
        capture thread, free every session's memory and end the worker. Idempotent."""
        if self._closed.is_set():
            return
        future: Future = Future()
        self._inbox.put((self._begin_close, (drain,), future))
        self._wake.set()
        self._closing = True
        self._worker.join(timeout)
        if self._worker.is_alive():
            logger.warning("engine worker did not stop within %.1f s", timeout)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # ------------------------------------------------------------------------------ worker side
    def _add_stream(self, frames: Iterable[Frame], drop_oldest: bool, pace_speed: float | None,
                    config: StreamConfig) -> int:
        stream_id = next(self._ids)
        session = StreamSession(self.model, config)
        capture_queue = CaptureQueue(self.settings.queue_frames, drop_oldest, on_put=self._wake.set)
        capture = CaptureThread(
            frames, capture_queue, pace_speed=pace_speed, on_end=self._wake.set, name=f"capture-{stream_id}"
        )
        dialogue = Dialogue(self.settings.history_turns, self.settings.history_chars)
        self._streams[stream_id] = EngineStream(stream_id, session, capture_queue, capture, dialogue)
        capture.start()
        return stream_id

    def _stream(self, stream_id: int) -> EngineStream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise EngineClosedError(f"stream {stream_id} is closed or unknown: watch the source again")
        return stream

    def _register(self, request: Request) -> None:
        if request.stream_id not in self._streams:
            request.end(Phase.CANCELLED, EngineClosedError(f"stream {request.stream_id} was closed"))
            return
        self._requests[request.request_id] = request

    def _cancel(self, request_id: int) -> None:
        request = self._requests.pop(request_id, None)
        if request is not None:
            request.end(Phase.CANCELLED, RequestCancelledError(f"request {request_id} was cancelled"))

    def _close_stream(self, stream_id: int) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        for request in [r for r in self._requests.values() if r.stream_id == stream_id]:
            self._requests.pop(request.request_id, None)
            request.end(Phase.CANCELLED, EngineClosedError(f"stream {stream_id} was closed"))
        stream.capture.stop()
        stream.queue.clear()
        stream.session.close()

    def _begin_close(self, drain: bool) -> None:
        self._closing = True
        self._drain_on_close = drain

    def _apply_commands(self) -> None:
        while True:
            try:
                function, args, future = self._inbox.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function(*args))
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                future.set_exception(error)

    def _update_requests(self, now: float) -> set[int]:
        """Move waiting requests to ready when their frames are in (or their wait is over);
        returns the streams that must catch up for a waiting request."""
        catch_up: set[int] = set()
        for request in self._requests.values():
            if request.phase is not Phase.WAITING:
                continue
            stream = self._streams[request.stream_id]
            time_ = request.info.question_time
            if stream.failure is not None:
                continue
            if request.info.mode == "now" or time_ is None or stream.covers(time_) or now >= request.deadline:
                request.phase = Phase.READY
                request.info.status = Phase.READY.value
            else:
                catch_up.add(request.stream_id)
        return catch_up

    def _holds(self) -> dict[int, float]:
        """Per stream, the earliest question time of a question that will start soon: ingest must not
        take frames after it first, so the answer sees exactly the frames up to its time. When every
        answer slot is busy nothing is held (ingest never waits for a slot); the answer then covers
        newer frames too, and says so in ``frames_covered``."""
        decoding = sum(1 for r in self._requests.values() if r.phase is Phase.DECODING)
        if decoding >= self.settings.max_active_answers:
            return {}
        holds: dict[int, float] = {}
        for request in self._requests.values():
            time_ = request.info.question_time
            if request.phase in (Phase.WAITING, Phase.READY) and time_ is not None:
                holds[request.stream_id] = min(time_, holds.get(request.stream_id, time_))
        return holds

    def _snapshot(self, catch_up: set[int]) -> SchedulerInput:
        self._hold = self._holds()
        streams = tuple(s.view(s.stream_id in catch_up, self._hold.get(s.stream_id)) for s in self._streams.values())
        requests = tuple(
            RequestView(r.request_id, r.stream_id, r.phase, r.arrival) for r in self._requests.values()
        )
        return SchedulerInput(streams, requests)

    def _run(self) -> None:
        self._drain_on_close = False
        self._hold: dict[int, float] = {}
        try:
            while True:
                self._apply_commands()
                if self._closing and (not self._drain_on_close or not self._requests):
                    break
                now = time.monotonic()
                catch_up = self._update_requests(now)
                state = self._snapshot(catch_up)
                step = self.scheduler.schedule(state)
                self._track_stalls(state, step, now)
                if step.kind is StepKind.IDLE:
                    self._wake.wait(self.settings.idle_poll_s)
                    self._wake.clear()
                    continue
                self._execute(step)
        except BaseException as error:  # noqa: BLE001 - a bug in the loop itself: fail everything, never hang
            logger.exception("engine worker crashed")
            self.failure = error
        finally:
            self._shutdown()

    def _track_stalls(self, state: SchedulerInput, step: Step, now: float) -> None:
        for view in state.streams:
            stream = self._streams[view.stream_id]
            if not view.ingest_ready:
                stream.stall_since = None
            elif step.kind is StepKind.INGEST and step.stream_id == view.stream_id:
                if stream.stall_since is not None:
                    stream.longest_ingest_gap_s = max(stream.longest_ingest_gap_s, now - stream.stall_since)
                stream.stall_since = None
            elif stream.stall_since is None:
                stream.stall_since = now

    def _execute(self, step: Step) -> None:
        self.steps[step.kind.value] += 1
        try:
            if self.step_hook is not None:
                self.step_hook(step)
            if step.kind is StepKind.INGEST:
                self._ingest(self._streams[step.stream_id])
            else:
                self._answer_step(self._requests[step.request_id], step.kind)
        except Exception as error:  # noqa: BLE001 - fails the affected requests, the engine goes on
            self._step_failed(step, error)

    def _ingest(self, stream: EngineStream) -> None:
        session = stream.session
        frames = stream.queue.take(max(1, stream.batch_frames - len(session._buffer)), self._hold.get(stream.stream_id))
        if frames:
            session.feed(frames)
            stream.ingest_steps += 1
        if stream.capture_ended and not len(stream.queue):
            session.ingest_complete_chunks()  # the tail of an ended source does not wait for a full batch

    def _answer_step(self, request: Request, kind: StepKind) -> None:
        if kind is StepKind.START:
            stream = self._streams[request.stream_id]
            limit = stream.session.config.question.max_question_tokens

            def fits(text: str) -> bool:
                return stream.session.model.count_question_tokens(text) <= limit

            prompt, turns = stream.dialogue.prompt(request.info.question, fits)
            request.info.history_turns = turns
            request.job = AnswerJob(stream.session, request.info, prompt, request.sampling, request.arrived_at)
            request.phase = Phase.DECODING
            request.info.status = Phase.DECODING.value
            piece = request.job.start()
        else:
            assert request.job is not None
            piece = request.job.step()
        if piece is not None:
            request.channel.push(Event(piece=AnswerPiece(piece.text, list(piece.token_ids), piece.finish_reason)))
        if request.job is not None and request.job.finished:
            self._requests.pop(request.request_id, None)
            stream = self._streams.get(request.stream_id)
            if stream is not None:
                stream.dialogue.add(request.info.question, request.info.answer)
                stream.answers += 1
            request.end(Phase.DONE)

    def _step_failed(self, step: Step, error: Exception) -> None:
        wrapped = EngineStepError(f"{step.kind.value} step failed: {type(error).__name__}: {error}")
        wrapped.__cause__ = error
        logger.warning("%s", wrapped)
        if step.kind is StepKind.INGEST:
            stream = self._streams[step.stream_id]
            stream.failure = f"error: {wrapped}"
            stream.capture.stop(join_timeout=1.0)
            stream.queue.clear()
            for request in [r for r in self._requests.values() if r.stream_id == stream.stream_id]:
                if request.phase is not Phase.DECODING:
                    self._requests.pop(request.request_id, None)
                    request.end(Phase.FAILED, wrapped)
            return
        request = self._requests.pop(step.request_id, None)
        if request is not None:
            request.end(Phase.FAILED, wrapped)

    def _shutdown(self) -> None:
        """Cancel what is left, stop captures, free memory; runs once in the worker thread."""
        self._closing = True
        reason = self.failure
        for request in list(self._requests.values()):
            error = EngineClosedError("the engine was closed before this answer finished")
            if reason is not None:
                error = EngineClosedError(f"the engine stopped: {reason!r}")
            request.end(Phase.CANCELLED if reason is None else Phase.FAILED, error)
        self._requests.clear()
        for stream_id in list(self._streams):
            try:
                self._close_stream(stream_id)
            except Exception:  # noqa: BLE001 - cleanup goes on
                logger.warning("closing stream %d failed", stream_id, exc_info=True)
        self._closed.set()
        # commands that raced with the shutdown get an answer instead of hanging
        while True:
            try:
                _, _, future = self._inbox.get_nowait()
            except queue.Empty:
                break
            if future.set_running_or_notify_cancel():
                future.set_exception(EngineClosedError("the engine is closed: create a new one"))
