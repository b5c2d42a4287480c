"""One answer in flight: its own view of memory, stepped one token at a time by the runner."""

from __future__ import annotations

import time
from collections.abc import Iterator

from models.protocol import SamplingParams, TextPiece
from pipeline.engine.records import AnswerInfo
from pipeline.engine.snapshot import fork_cache
from pipeline.session import StreamSession


class AnswerJob:
    """Generates one answer from a copy-on-write fork of a session's memory.

    :meth:`start` forks the cache and cursor, encodes the frames still waiting to fill a chunk into the
    fork only (the stream's chunking never depends on questions), prefills the question and produces
    the first token; each :meth:`step` produces one more. The session is never written.

    Args:
        session: the stream's session (read only here).
        info: the request's metadata record, updated in place.
        prompt: the text given to the model (the question, with history ahead of it).
        sampling: how to pick tokens.
        arrived_at: ``time.monotonic()`` when the question arrived.
    """

    def __init__(
        self, session: StreamSession, info: AnswerInfo, prompt: str, sampling: SamplingParams, arrived_at: float
    ) -> None:
        self.session = session
        self.info = info
        self.prompt = prompt
        self.sampling = sampling
        self.arrived_at = arrived_at
        self._pieces: Iterator[TextPiece] | None = None
        self._text: list[str] = []
        self.finished = False

    def start(self) -> TextPiece | None:
        """Fork memory, cover the partial chunk, prefill the question; returns the first piece."""
        session = self.session
        now = time.monotonic()
        self.info.wait_s = round(now - self.arrived_at, 6)
        pending = list(session._buffer)
        cache = fork_cache(session.bank.cache)
        cursor = session.cursor.copy()
        resident = session.bank.resident_frame_timestamps + [f.timestamp for f in pending]
        self.info.frames_covered = (resident[0], resident[-1]) if resident else None
        self.info.frames_ingested = session.counters.frames_ingested + len(pending)
        newest = session._last_timestamp
        if self.info.question_time is not None:
            self.info.lag_s = round(max(0.0, self.info.question_time - (newest if newest is not None else 0.0)), 6)
        else:
            self.info.lag_s = 0.0
        if pending:
            session.model.prefill(session._encode(pending), cache, cursor)
        if session.recall is not None:  # archived blocks join the fork only
            self.info.retrieved = session.recall.attach(self.prompt, None, cache, cursor, session.bank,
                                                        session._frame_hw)
        self._pieces = iter(session.model.answer(self.prompt, cache, cursor, self.sampling))
        return self.step()

    def step(self) -> TextPiece | None:
        """One more token; None once the answer has ended."""
        assert self._pieces is not None, "start() first"
        piece = next(self._pieces, None)
        now = time.monotonic()
        if piece is None:
            self._finish(now)
            return None
        if piece.text and self.info.ttft_s is None:
            self.info.ttft_s = round(now - self.arrived_at, 6)
        self._text.append(piece.text)
        self.info.answer = "".join(self._text)
        self.info.num_tokens += len(piece.token_ids)
        if piece.finish_reason:
            self.info.finish_reason = piece.finish_reason
            self._finish(now)
        return piece

    def _finish(self, now: float) -> None:
        if self.finished:
            return
        self.finished = True
        self.info.total_s = round(now - self.arrived_at, 6)
        if self.info.ttft_s is None:
            self.info.ttft_s = self.info.total_s
        self.close()

    def close(self) -> None:
        """Drop the forked memory (the generator and the cache it holds)."""
        if self._pieces is not None:
            close = getattr(self._pieces, "close", None)
            if close is not None:
                close()
            self._pieces = None
