"""The scheduler: which step the worker runs next. Pure logic over plain records, no model.

Rules, in order:

1. **Ingest is never starved.** When a stream has ingest work (:attr:`StreamView.ingest_ready`) and at
   most ``decode_steps_per_ingest`` answer steps ran since the last ingest step, the next step is an
   ingest step. With the default of 1, a long answer delays ingest by at most one decode step.
2. **Answers share fairly.** Answer steps go round-robin over streams that have answer work, and
   within a stream round-robin over its started answers, so a long answer does not block a short one.
   A new answer starts (in arrival order) when fewer than ``max_active`` answers are open.
3. **Streams share fairly.** Ingest steps go round-robin over the streams that have ingest work.
4. Otherwise the worker idles until something arrives.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.engine.records import IDLE, Phase, RequestView, SchedulerInput, Step, StepKind, StreamView


def _next_after(ids: Sequence[int], last: int | None) -> int:
    """The first id greater than ``last`` in sorted ``ids``, wrapping around (round-robin)."""
    ordered = sorted(ids)
    if last is not None:
        for item in ordered:
            if item > last:
                return item
    return ordered[0]


class Scheduler:
    """Decides the next :class:`Step`; keeps only round-robin cursors and a step counter.

    Args:
        decode_steps_per_ingest: answer steps allowed between ingest steps while frames wait.
        max_active: answers open at the same time, engine-wide.
    """

    def __init__(self, decode_steps_per_ingest: int = 1, max_active: int = 4) -> None:
        if decode_steps_per_ingest < 1 or max_active < 1:
            raise ValueError("decode_steps_per_ingest and max_active must be >= 1")
        self.decode_steps_per_ingest = decode_steps_per_ingest
        self.max_active = max_active
        self.answer_steps_since_ingest = decode_steps_per_ingest  # waiting frames go first
        self._last_ingest_stream: int | None = None
        self._last_answer_stream: int | None = None
        self._last_request: dict[int, int] = {}  # stream -> last request served

    def schedule(self, state: SchedulerInput) -> Step:
        """The next step for ``state``; updates the fairness cursors as if it ran."""
        ingest = [s for s in state.streams if s.ingest_ready]
        answer = self._answer_candidates(state.requests)
        ingest_due = self.answer_steps_since_ingest >= self.decode_steps_per_ingest
        if ingest and (ingest_due or not answer):
            return self._ingest_step(ingest)
        if answer:
            return self._answer_step(answer)
        return IDLE

    def _answer_candidates(self, requests: Sequence[RequestView]) -> list[RequestView]:
        decoding = [r for r in requests if r.phase is Phase.DECODING]
        ready = sorted((r for r in requests if r.phase is Phase.READY), key=lambda r: r.arrival)
        startable = ready[: max(0, self.max_active - len(decoding))]
        return decoding + startable

    def _ingest_step(self, streams: list[StreamView]) -> Step:
        stream_id = _next_after([s.stream_id for s in streams], self._last_ingest_stream)
        self._last_ingest_stream = stream_id
        self.answer_steps_since_ingest = 0
        return Step(StepKind.INGEST, stream_id=stream_id)

    def _answer_step(self, candidates: list[RequestView]) -> Step:
        stream_id = _next_after(list({r.stream_id for r in candidates}), self._last_answer_stream)
        self._last_answer_stream = stream_id
        mine = [r for r in candidates if r.stream_id == stream_id]
        decoding = [r for r in mine if r.phase is Phase.DECODING]
        # a started answer keeps its stream's turn unless a waiting one may start: starts go in arrival order
        starting = [r for r in mine if r.phase is Phase.READY]
        pool = decoding + starting[:1]
        request_id = _next_after([r.request_id for r in pool], self._last_request.get(stream_id))
        self._last_request[stream_id] = request_id
        self.answer_steps_since_ingest += 1
        chosen = next(r for r in pool if r.request_id == request_id)
        kind = StepKind.START if chosen.phase is Phase.READY else StepKind.DECODE
        return Step(kind, stream_id=stream_id, request_id=request_id)
