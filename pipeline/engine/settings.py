"""Settings of the real-time engine: waiting bounds, queue sizes, drop policy, scheduling ratio."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import UserInputError

DROP_POLICIES = ("auto", "drop_oldest", "block")
"""Valid values of :attr:`EngineSettings.drop_policy`.

* ``drop_oldest``: when the capture queue is full, the oldest queued frame is discarded (and counted),
  so the frames waiting for the encoder are never older than ``queue_frames / fps`` seconds: latency
  stays bounded whatever the model's speed.
* ``block``: the capture thread waits for room: nothing is lost (files read as fast as possible).
* ``auto``: ``drop_oldest`` for live inputs (URLs, cameras, files paced in real time), ``block`` for
  files read as fast as possible and frame iterables.
"""

QUESTION_MODES = ("covered", "now")
"""``covered``: wait (at most ``max_wait_s``) until every frame captured up to the question time is in
memory; ``now``: answer at once from the frames already taken by the engine."""


@dataclass
class EngineSettings:
    """How the engine schedules work and treats live input.

    Attributes:
        max_wait_s: longest a ``covered`` question waits for its frames to be encoded before it is
            answered from what is in memory (the shortfall is reported as ``lag_s``).
        queue_frames: capacity of each stream's capture queue, in frames (the latency bound of live
            input is ``queue_frames / fps`` plus one ingest step).
        drop_policy: what the capture thread does when the queue is full (see :data:`DROP_POLICIES`).
        decode_steps_per_ingest: answer steps allowed between two ingest steps while frames wait; 1
            means a long answer delays ingest by at most one decode step.
        max_active_answers: answers generated concurrently (each holds a copy-on-write view of its
            stream's memory); later questions wait their turn in arrival order.
        history_turns: previous question/answer pairs of a stream kept in the context of a new question.
        history_chars: most characters of history text kept (older turns go first).
        speed: pacing speed of ``realtime`` file sources (1.0: real time; 10.0: ten times faster).
        idle_poll_s: longest the worker sleeps when there is nothing to do.
    """

    max_wait_s: float = 10.0
    queue_frames: int = 32
    drop_policy: str = "auto"
    decode_steps_per_ingest: int = 1
    max_active_answers: int = 4
    history_turns: int = 4
    history_chars: int = 2000
    speed: float = 1.0
    idle_poll_s: float = 0.05

    def __post_init__(self) -> None:
        if self.max_wait_s < 0:
            raise UserInputError(f"max_wait_s must be >= 0 seconds, got {self.max_wait_s}")
        if self.queue_frames < 1:
            raise UserInputError(f"queue_frames must be >= 1, got {self.queue_frames}: pass e.g. 32")
        if self.drop_policy not in DROP_POLICIES:
            raise UserInputError(f"drop_policy {self.drop_policy!r} is not one of {', '.join(DROP_POLICIES)}")
        if self.decode_steps_per_ingest < 1:
            raise UserInputError(f"decode_steps_per_ingest must be >= 1, got {self.decode_steps_per_ingest}")
        if self.max_active_answers < 1:
            raise UserInputError(f"max_active_answers must be >= 1, got {self.max_active_answers}")
        if self.history_turns < 0 or self.history_chars < 0:
            raise UserInputError("history_turns and history_chars must be >= 0 (0 disables multi-turn context)")
        if self.speed <= 0:
            raise UserInputError(f"speed must be positive, got {self.speed}: 1.0 is real time")
        if self.idle_poll_s <= 0:
            raise UserInputError(f"idle_poll_s must be positive, got {self.idle_poll_s}")
