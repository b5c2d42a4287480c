"""A question inside the engine: its record, phase, deadline, answer job and output channel."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from models.protocol import SamplingParams
from pipeline.engine.answering import AnswerJob
from pipeline.engine.channel import Event, OutputChannel
from pipeline.engine.records import AnswerInfo, Phase


@dataclass
class Request:
    """Engine-side state of one question (the worker thread owns it after submission)."""

    info: AnswerInfo
    sampling: SamplingParams
    arrival: int  # global sequence number (fair ordering)
    deadline: float  # time.monotonic() after which a covered question stops waiting for frames
    arrived_at: float = field(default_factory=time.monotonic)
    phase: Phase = Phase.WAITING
    job: AnswerJob | None = None
    channel: OutputChannel = field(default_factory=OutputChannel)

    @property
    def request_id(self) -> int:
        return self.info.request_id

    @property
    def stream_id(self) -> int:
        return self.info.stream_id

    @property
    def finished(self) -> bool:
        return self.phase in (Phase.DONE, Phase.CANCELLED, Phase.FAILED)

    def end(self, phase: Phase, error: BaseException | None = None) -> None:
        """Move to a final phase, release the answer's memory view and tell the consumer."""
        if self.finished:
            return
        self.phase = phase
        self.info.status = phase.value
        if error is not None:
            self.info.error = str(error)
        if self.info.total_s is None:
            self.info.total_s = round(time.monotonic() - self.arrived_at, 6)
        if self.job is not None:
            self.job.close()
            self.job = None
        self.channel.push(Event(end=True, error=error))
