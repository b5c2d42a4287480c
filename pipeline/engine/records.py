"""Plain records linking the scheduler (decides) and the runner (executes), and what clients receive.

The scheduler sees only :class:`SchedulerInput` (a snapshot of counts and phases) and returns a
:class:`Step`; it never touches a model, a cache or a thread, so it is unit-tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class StepKind(str, Enum):
    """What one worker step does."""

    INGEST = "ingest"  # take up to one forward call's worth of frames of a stream and prefill them
    START = "start"  # open an answer: fork memory, encode the partial chunk, prefill the question
    DECODE = "decode"  # generate one token of an open answer
    IDLE = "idle"  # nothing to do


class Phase(str, Enum):
    """Where a request is in its life."""

    WAITING = "waiting"  # its frames are not all in memory yet
    READY = "ready"  # may be started
    DECODING = "decoding"  # started; one token per decode step
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True)
class StreamView:
    """One stream as the scheduler sees it.

    Attributes:
        stream_id: the stream.
        queued_frames: captured frames waiting for the encoder.
        batch_frames: frames one forward call takes.
        capture_ended: the source will deliver no more frames.
        catch_up: a waiting question needs some of the queued frames.
    """

    stream_id: int
    queued_frames: int
    batch_frames: int
    capture_ended: bool = False
    catch_up: bool = False

    @property
    def ingest_ready(self) -> bool:
        """Whether an ingest step has useful work (a full batch, the tail of an ended source, or a catch-up)."""
        if self.queued_frames <= 0:
            return False
        return self.queued_frames >= self.batch_frames or self.capture_ended or self.catch_up


@dataclass(frozen=True)
class RequestView:
    """One question as the scheduler sees it (``arrival``: a global sequence number)."""

    request_id: int
    stream_id: int
    phase: Phase
    arrival: int


@dataclass(frozen=True)
class SchedulerInput:
    """Everything the scheduler decides from."""

    streams: tuple[StreamView, ...] = ()
    requests: tuple[RequestView, ...] = ()


@dataclass(frozen=True)
class Step:
    """The scheduler's decision: one unit of work for the runner."""

    kind: StepKind
    stream_id: int | None = None
    request_id: int | None = None


IDLE = Step(StepKind.IDLE)


@dataclass
class AnswerPiece:
    """A piece of answer text as it is generated (``finish_reason`` on the last one)."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None


@dataclass
class AnswerInfo:
    """The metadata of one answer; filled in as the request progresses.

    Attributes:
        request_id: engine-wide id.
        stream_id: the stream asked about.
        question: the question as asked.
        mode: ``covered`` or ``now``.
        question_time: stream time (s) the question refers to (default: newest captured frame when it
            arrived); None when no frame had been captured.
        frames_covered: ``(first, last)`` timestamps of the frames the answer saw (resident in memory
            plus the partial chunk), None when it saw none.
        frames_ingested: frames the answer's view contains, evicted ones included.
        lag_s: stream seconds between ``question_time`` and the newest frame the answer saw (0 when
            every frame up to the question time was covered).
        wait_s: wall seconds from arrival until the answer started (waiting for frames and its turn).
        ttft_s: wall seconds from arrival to the first text.
        total_s: wall seconds from arrival to the end.
        num_tokens: generated tokens.
        answer: the text so far (complete once ``status`` is ``done``).
        finish_reason: ``stop`` or ``length``.
        status: a :class:`Phase` value.
        error: the failure message when ``status`` is ``failed``.
        history_turns: previous turns included in the context.
        retrieved: timestamps of the archived frames retrieved for this answer (archive enabled).
    """

    request_id: int
    stream_id: int
    question: str
    mode: str
    question_time: float | None
    frames_covered: tuple[float, float] | None = None
    frames_ingested: int = 0
    lag_s: float | None = None
    wait_s: float | None = None
    ttft_s: float | None = None
    total_s: float | None = None
    num_tokens: int = 0
    answer: str = ""
    finish_reason: str | None = None
    status: str = Phase.WAITING.value
    error: str | None = None
    history_turns: int = 0
    retrieved: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy (``frames_covered`` as a list)."""
        data = dict(self.__dict__)
        data["frames_covered"] = list(self.frames_covered) if self.frames_covered else None
        return data


@dataclass
class StreamStats:
    """Counters of one stream (JSON-friendly through :meth:`to_dict`).

    Attributes:
        stream_id: the stream.
        frames_read: frames the capture thread took from the source.
        frames_dropped: frames discarded by the drop policy (never encoded).
        source_frames_dropped: frames the source itself discarded before capture (its own queue).
        frames_encoded: frames prefilled into memory.
        frames_queued: frames waiting in the capture queue.
        frames_buffered: frames taken but waiting to fill a chunk.
        ingest_steps: forward calls of ingest.
        answers: finished answers.
        capture_ended: the source delivers no more frames.
        end_reason: why it ended (``end of stream``, ``closed``, ``error: ...``), None while it runs.
        newest_captured: timestamp of the newest captured frame.
        max_queue_delay_s: longest wall time a frame waited in the capture queue.
        longest_ingest_gap_s: longest wall gap between two ingest steps while frames were waiting.
        memory: the memory bank's statistics.
    """

    stream_id: int
    frames_read: int = 0
    frames_dropped: int = 0
    source_frames_dropped: int = 0
    frames_encoded: int = 0
    frames_queued: int = 0
    frames_buffered: int = 0
    ingest_steps: int = 0
    answers: int = 0
    capture_ended: bool = False
    end_reason: str | None = None
    newest_captured: float | None = None
    max_queue_delay_s: float = 0.0
    longest_ingest_gap_s: float = 0.0
    memory: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
