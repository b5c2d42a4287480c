"""What ``ask`` returns: the answer text with the facts a user needs to trust it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    """A finished answer.

    Attributes:
        question: the question as asked.
        answer: the generated text.
        question_time: stream time (s) the question refers to; the answer saw every frame with a
            timestamp <= this and none after (None when no frame had been seen).
        frames_ingested: frames fed into memory before the question (including frames that were
            evicted since).
        frames_covered: ``[first, last]`` timestamps of the frames resident in memory for this answer.
        finish_reason: ``stop`` (end token or stop string) or ``length`` (max tokens reached).
        num_tokens: generated tokens.
        memory: memory statistics at question time (``device_tokens``, ``device_bytes``, ...).
        timing: ``ttft_s`` (question to first text), ``total_s``, ``catch_up_s`` (ingest the question
            had to wait for).
        retrieved: timestamps of the archived frames retrieved for this answer (time order).
        archive: archive statistics (blocks and bytes per tier, dropped/damaged/lost), None without archive.
    """

    question: str
    answer: str
    question_time: float | None
    frames_ingested: int
    frames_covered: tuple[float, float] | None
    finish_reason: str | None
    num_tokens: int
    memory: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    retrieved: list[float] = field(default_factory=list)
    archive: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["frames_covered"] = list(self.frames_covered) if self.frames_covered else None
        return data
