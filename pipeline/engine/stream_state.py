"""Engine-side state of one stream: its session, capture thread, dialogue and ingest bookkeeping."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pipeline.engine.capture import CaptureQueue, CaptureThread
from pipeline.engine.dialogue import Dialogue
from pipeline.engine.records import StreamStats, StreamView
from pipeline.session import StreamSession


@dataclass
class EngineStream:
    """One watched stream (owned by the worker thread)."""

    stream_id: int
    session: StreamSession
    queue: CaptureQueue
    capture: CaptureThread
    dialogue: Dialogue
    failure: str | None = None  # an ingest step failed: no more ingest, new questions are refused
    ingest_steps: int = 0
    answers: int = 0
    stall_since: float | None = None  # ingest had work but was not served since then
    longest_ingest_gap_s: float = 0.0
    closing: bool = False
    created_at: float = field(default_factory=time.monotonic)

    @property
    def batch_frames(self) -> int:
        return self.session._batch_frames

    @property
    def capture_ended(self) -> bool:
        return self.capture.ended.is_set() or self.failure is not None

    @property
    def end_reason(self) -> str | None:
        if self.failure is not None:
            return self.failure
        return self.capture.end_reason if self.capture.ended.is_set() else None

    def covers(self, question_time: float) -> bool:
        """Whether every frame captured up to ``question_time`` has been taken into the session."""
        oldest = self.queue.oldest_timestamp()
        if oldest is not None and oldest <= question_time:
            return False
        newest = self.queue.newest_timestamp
        return self.capture_ended or (newest is not None and newest >= question_time)

    def view(self, catch_up: bool, hold: float | None) -> StreamView:
        """The scheduler's view; ``hold``: frames after this time wait (a question about it starts first)."""
        queued = 0 if self.failure is not None else self.queue.count(hold)
        ended = self.capture_ended or (hold is not None and queued < len(self.queue))
        return StreamView(self.stream_id, queued, self.batch_frames, ended, catch_up)

    def stats(self) -> StreamStats:
        session = self.session
        return StreamStats(
            stream_id=self.stream_id,
            frames_read=self.queue.frames_read,
            frames_dropped=self.queue.frames_dropped,
            source_frames_dropped=int(getattr(self.capture.frames, "frames_dropped", 0) or 0),
            frames_encoded=session.counters.frames_ingested,
            frames_queued=len(self.queue),
            frames_buffered=len(session._buffer),
            ingest_steps=self.ingest_steps,
            answers=self.answers,
            capture_ended=self.capture_ended,
            end_reason=self.end_reason,
            newest_captured=self.queue.newest_timestamp,
            max_queue_delay_s=round(self.queue.max_delay_s, 6),
            longest_ingest_gap_s=round(self.longest_ingest_gap_s, 6),
            memory=session.bank.stats().as_dict() if session.bank.cache.layers[0].is_initialized else {},
        )
