"""One stream's state and the synchronous verbs on it: feed frames, watch a source, ask questions.

The model holds weights only; a :class:`StreamSession` holds everything that belongs to one stream:
the memory bank (KV cache + block ledger + policy), the position cursor, frames waiting to fill a
chunk, the attached source and the counters. Many sessions can share one model.

Answer semantics:

* an answer covers exactly the frames with timestamp <= its question time: complete chunks are in
  memory; a trailing partial chunk is encoded into a temporary view for this answer only, so the
  stream's chunking never depends on when questions arrive;
* answering never changes memory: the cache is checkpointed before the question's tokens are
  appended and rolled back when the answer ends, is closed, or fails.

A session is not thread-safe; the real-time engine serialises access to it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memory.bank import MemoryBank
from memory.blocks import Block, BlockKind
from memory.policies import build_policy
from memory.probe import AttentionProbe
from models.protocol import SamplingParams, TextPiece, VideoLM
from pipeline.answer import Answer
from pipeline.archive_setup import build_recall
from pipeline.config import StreamConfig
from pipeline.errors import QuestionError, SourceError, UserInputError
from pipeline.frames import Frame
from pipeline.sources import FrameSource, open_source

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 100_000


@dataclass
class IngestCounters:
    """Running totals of one session's ingest work."""

    frames_ingested: int = 0
    chunks_ingested: int = 0
    forward_calls: int = 0
    reindexes: int = 0
    tokens_dropped: int = 0
    encode_s: float = 0.0
    memory_s: float = 0.0  # making room: scoring and eviction
    prefill_s: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


class StreamSession:
    """All per-stream state, and the synchronous API over it.

    Args:
        model: a loaded :class:`~models.protocol.VideoLM` (shared, read-only).
        config: the configuration tree (source, memory, ingest, question and sampling sections are used).
    """

    def __init__(self, model: VideoLM, config: StreamConfig) -> None:
        self.model = model
        self.config = config
        memory = config.memory
        self.bank = MemoryBank(
            model.num_layers, build_policy(memory.policy), memory.window_frames, memory.budget_tokens,
            memory.budget_bytes,
        )
        self.cursor = model.new_stream_state()
        header_tokens = model.start(self.bank.cache, self.cursor, config.question.system_prompt)
        self.bank.record(Block(BlockKind.SINK, header_tokens))
        self.recall = build_recall(config.archive, model) if config.archive.enabled else None
        if self.recall is not None:
            self.bank.on_evict = self.recall.on_evict
        self.counters = IngestCounters()
        self._buffer: list[Frame] = []
        self._last_timestamp: float | None = None
        self._source: FrameSource | None = None
        self._source_iter: Iterator[Frame] | None = None
        self._lookahead: Frame | None = None
        self._source_offset: float | None = 0.0  # added to source timestamps; None: set at its first frame
        self._frame_hw: tuple[int, int] | None = None  # pinned by the first frame: one grid per stream
        self._previous_features = None  # the last ingested chunk's visual tokens (for token dropping)
        self._skip_through: float | None = None  # resume_watch: source frames at or before this are skipped
        self.source_end_reason: str | None = None
        self._open_answer: AnswerStream | None = None
        self._batch_frames = model.frames_per_chunk * config.ingest.chunks_per_forward

    # ------------------------------------------------------------------------------------ ingest
    def feed(self, frames: Iterable[Frame]) -> int:
        """Add frames (timestamps non-decreasing) to the stream; returns how many were taken."""
        self._close_open_answer()
        taken = 0
        for frame in frames:
            self._check_frame(frame)
            self._buffer.append(frame)
            self._last_timestamp = frame.timestamp
            taken += 1
            if len(self._buffer) >= self._batch_frames:
                self.ingest_complete_chunks()
        return taken

    def watch(self, source: FrameSource | str | int) -> FrameSource:
        """Attach a source (an opened ``FrameSource``, a path, URL or webcam index).

        Frames are pulled by :meth:`ingest` and by ``ask(..., at=t)``.
        """
        if isinstance(source, (str, int)):
            cfg = self.config.source
            # local files decode straight to the model's frame size; other sources are resized in encode()
            size = self._decode_size if isinstance(source, str) and os.path.isfile(source) else None
            source = open_source(
                source, fps=cfg.fps, start=cfg.start, end=cfg.end, realtime=cfg.realtime, size=size
            )
        self.detach()
        self._skip_through = None
        self._source = source
        self._source_iter = iter(source)
        self.source_end_reason = None
        # a second source (a reconnect, the next file) continues the session clock instead of restarting it
        self._source_offset = 0.0 if self._last_timestamp is None else None
        return source

    def resume_watch(self, source: FrameSource | str | int) -> FrameSource:
        """Watch the video a resumed session was watching again, continuing where its clock stopped.

        The source is opened as :meth:`watch` opens it (same fps, clip start and frame size, so the same
        frames are sampled); frames at or before the last ingested timestamp are skipped (a file source
        skips them without decoding) instead of being moved onto the clock as a next video would be.
        """
        last = self._last_timestamp
        source = self.watch(source)
        if last is not None:
            self._source_offset = 0.0
            self._skip_through = last
            skip = getattr(source, "skip_through", None)
            if callable(skip):
                skip(last)
        return source

    def _on_session_clock(self, frame: Frame) -> Frame:
        if self._source_offset is None:
            assert self._last_timestamp is not None
            gap = 1.0 / self.config.source.fps if self.config.source.fps else 1e-3
            self._source_offset = max(0.0, self._last_timestamp + gap - frame.timestamp)
        if self._source_offset:
            return Frame(frame.index, frame.timestamp + self._source_offset, frame.rgb)
        return frame

    def _decode_size(self, width: int, height: int) -> tuple[int, int]:
        """``(width, height)`` the model wants for frames of a ``width`` x ``height`` video."""
        out_height, out_width = self._frame_hw or self.model.frame_size(height, width)
        return out_width, out_height

    def detach(self) -> None:
        """Close and forget the attached source (memory is kept)."""
        if self._source is not None:
            self._source.close()
        self._source = self._source_iter = self._lookahead = None

    def ingest(self, until: float | None = None, max_frames: int | None = None) -> int:
        """Pull frames from the attached source with timestamp <= ``until`` (None: to the end).

        ``max_frames`` bounds how many are taken in this call (the source is resumed next call).

        Returns the number of frames taken. When the source ends or fails, ``source_end_reason`` says
        why; a failure is raised as :class:`SourceError` after the frames read so far were kept.
        """
        if self._source_iter is None:
            return 0
        taken = 0
        try:
            while max_frames is None or taken < max_frames:
                if self._lookahead is not None:
                    frame, self._lookahead = self._lookahead, None
                else:
                    frame = self._on_session_clock(next(self._source_iter))
                    if self._skip_through is not None:
                        if frame.timestamp <= self._skip_through:
                            continue  # resume_watch: already in memory
                        self._skip_through = None
                if until is not None and frame.timestamp > until:
                    self._lookahead = frame
                    break
                taken += self.feed([frame])
        except StopIteration:
            self.source_end_reason = getattr(self._source, "end_reason", None) or "end of stream"
            self._source_iter = None
            self.ingest_complete_chunks()
        except SourceError as error:
            self.source_end_reason = f"error: {error}"
            self._source_iter = None
            raise
        return taken

    def ingest_step(self) -> int:
        """Pull up to one forward call's worth of frames from the source; returns how many."""
        return self.ingest(max_frames=self._batch_frames)

    @property
    def source_exhausted(self) -> bool:
        return self._source is not None and self._source_iter is None

    def _check_frame(self, frame: Frame) -> None:
        rgb = frame.rgb
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise UserInputError(
                f"frame {frame.index} must be an (H, W, 3) uint8 RGB array, got "
                f"{getattr(rgb, 'shape', type(rgb))} {getattr(rgb, 'dtype', '')}"
            )
        if self._last_timestamp is not None and frame.timestamp < self._last_timestamp:
            raise UserInputError(
                f"frame {frame.index} at {frame.timestamp:.3f}s comes before the previous frame "
                f"({self._last_timestamp:.3f}s): feed frames in time order"
            )

    def ingest_complete_chunks(self) -> None:
        """Encode and prefill every complete chunk waiting in the buffer, a batch per forward call.

        Called when no more frames will come soon (end of source, a question): frames wait in the
        buffer only to fill a batch, never longer than a chunk needs.
        """
        per_chunk = self.model.frames_per_chunk
        complete = len(self._buffer) // per_chunk * per_chunk
        for start in range(0, complete, self._batch_frames):
            batch = self._buffer[start : min(start + self._batch_frames, complete)]
            self._ingest_frames(batch)
        self._buffer = self._buffer[complete:]

    def _encode(self, frames: list[Frame]) -> list:
        if self._frame_hw is None:
            self._frame_hw = self.model.frame_size(frames[0].height, frames[0].width)
        return self.model.encode([f.rgb for f in frames], [f.timestamp for f in frames], self._frame_hw)

    def _ingest_frames(self, frames: list[Frame]) -> None:
        t0 = time.perf_counter()
        chunks = self._encode(frames)
        t1 = time.perf_counter()
        for chunk in chunks:  # pre-LLM filtering (token dropping) sees each chunk's full features
            chunk.keep = self.bank.policy.filter_chunk(chunk.embeds, self._previous_features)
            self._previous_features = chunk.embeds
            kept = int(chunk.embeds.shape[0]) if chunk.keep is None else int(chunk.keep.numel())
            self.counters.tokens_dropped += int(chunk.embeds.shape[0]) - kept  # n_tokens may count framing text
        self.bank.make_room(sum(c.n_tokens for c in chunks), len(frames), self._probe())
        t2 = time.perf_counter()
        self.model.prefill(chunks, self.bank.cache, self.cursor)
        t3 = time.perf_counter()
        for chunk in chunks:
            if self.recall is not None:
                self.recall.note_chunk(self.counters.chunks_ingested, chunk.embeds)
            self.bank.record(
                Block(BlockKind.FRAMES, chunk.n_tokens, chunk.timestamps, self.counters.chunks_ingested, chunk.position)
            )
            self.counters.chunks_ingested += 1
        if self.bank.window_frames is not None and len(frames) > self.bank.window_frames:
            self.bank.make_room(0, 0, self._probe())  # the batch outgrew the window: its oldest part is long-term
        if self.model.next_position(self.cursor) > self._position_limit:
            self._reindex()
        self.counters.frames_ingested += len(frames)
        self.counters.forward_calls += 1
        self.counters.encode_s += t1 - t0
        self.counters.prefill_s += t3 - t2
        self.counters.memory_s += (t2 - t1) + (time.perf_counter() - t3)

    def _probe(self) -> AttentionProbe:
        """Proxy-row attention over the current memory, computed only if a policy asks for it."""
        return AttentionProbe(self.bank.cache, lambda: self.model.proxy_queries(self.bank.cache, self.cursor))

    @property
    def _position_limit(self) -> int:
        """Largest stream position that still leaves room for a question and its answer."""
        reserve = self.config.question.max_question_tokens + self.config.sampling.max_new_tokens + 16
        return self.model.max_positions - reserve

    def _reindex(self) -> None:
        """Move resident frames back to compact positions (streams longer than the position range)."""
        video_start = self.bank.sink_tokens  # the video opens right after the stream header
        moved = self.bank.reindex(self.model.rotate_keys, start=video_start, min_gap=self.model.min_position_gap)
        self.model.shift_stream(self.cursor, moved)
        self.counters.reindexes += 1
        if self.model.next_position(self.cursor) > self._position_limit:
            logger.warning(
                "memory still spans %d positions after re-indexing (limit %d): lower window_frames or "
                "budget_tokens for this model", self.model.next_position(self.cursor), self._position_limit
            )

    # ---------------------------------------------------------------------------------- answers
    def ask(
        self,
        question: str,
        at: float | None = None,
        sampling: SamplingParams | None = None,
        image: np.ndarray | None = None,
    ) -> Answer:
        """Answer ``question`` from the frames up to ``at`` (None: every frame fed so far).

        ``image`` ``(H, W, 3)`` uint8 RGB, attached to the question, selects archived frames that look
        like it ("when did this appear?"); it needs the archive (``archive.enabled``).
        """
        return self.ask_stream(question, at=at, sampling=sampling, image=image).result()

    def ask_stream(
        self,
        question: str,
        at: float | None = None,
        sampling: SamplingParams | None = None,
        image: np.ndarray | None = None,
    ) -> AnswerStream:
        """Like :meth:`ask` but returns an iterator of :class:`TextPiece` as they are generated.

        With ``at`` and an attached source, frames up to ``at`` are ingested first. Raises
        :class:`QuestionError` for an empty or too long question, a time before frames already in
        memory, or an image without an archive; memory is untouched in every error case.
        """
        self._close_open_answer()
        started = time.perf_counter()
        sampling = sampling or self.config.sampling
        question = self._validated(question, sampling)
        if image is not None:
            self._check_image(image)
        if at is not None:
            if self._last_timestamp is not None and self._last_timestamp > at:
                raise QuestionError(
                    f"question time {at:.3f}s is before frames already in memory (latest "
                    f"{self._last_timestamp:.3f}s); memory cannot be rewound: ask at >= that time or without a time"
                )
            try:
                self.ingest(until=at)
            except SourceError as error:  # answer from what was seen; the reason stays on the session
                logger.warning("source failed before %.3fs; answering from frames seen so far: %s", at, error)
        self.ingest_complete_chunks()
        catch_up_s = time.perf_counter() - started
        question_time = at if at is not None else self._last_timestamp
        stream = AnswerStream(self, question, question_time, list(self._buffer), sampling, started, catch_up_s, image)
        self._open_answer = stream
        return stream

    def _validated(self, question: str, sampling: SamplingParams) -> str:
        if not isinstance(question, str) or not question.strip():
            raise QuestionError("the question is empty: type a question about the video")
        question = question.strip()
        if len(question) > MAX_QUESTION_CHARS:
            raise QuestionError(
                f"the question has {len(question)} characters; the limit is {MAX_QUESTION_CHARS}: shorten it"
            )
        n_tokens = self.model.count_question_tokens(question)
        limit = self.config.question.max_question_tokens
        if n_tokens > limit:
            raise QuestionError(
                f"the question is {n_tokens} tokens long; this model accepts at most {limit} "
                "(question.max_question_tokens): shorten it"
            )
        used = self.model.next_position(self.cursor) + len(self._buffer)  # pending frames: a chunk at most
        room = self.model.max_positions - used - sampling.max_new_tokens
        if n_tokens > room:
            raise QuestionError(
                f"the question ({n_tokens} tokens) plus {sampling.max_new_tokens} answer tokens does not fit in "
                f"the {max(room + n_tokens, 0)} positions the model has left (of {self.model.max_positions}): "
                "shorten it or lower max_new_tokens"
            )
        return question

    def _check_image(self, image: np.ndarray) -> None:
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise QuestionError(
                f"the question image must be an (H, W, 3) uint8 RGB array, got {getattr(image, 'shape', type(image))}"
            )
        if self.recall is None:
            raise QuestionError("an image question searches the archive: enable it (archive.enabled, --archive)")

    def _close_open_answer(self) -> None:
        if self._open_answer is not None:
            self._open_answer.close()
            self._open_answer = None

    # ------------------------------------------------------------------------------------- state
    def stats(self) -> dict[str, object]:
        """Memory, ingest counters and source state, JSON-friendly."""
        return {
            "memory": self.bank.stats().as_dict(),
            "ingest": self.counters.as_dict(),
            "buffered_frames": len(self._buffer),
            "last_timestamp": self._last_timestamp,
            "source_end_reason": self.source_end_reason,
            "archive": self.recall.stats() if self.recall is not None else None,
        }

    # ------------------------------------------------------------------------------- persistence
    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write this stream's whole state to ``folder``, atomically (format ``streamvqa-session/1``).

        ``VideoQA.resume(folder)`` continues the stream, in this process or another; saving over an
        earlier save replaces it atomically. An open answer is closed first. An archive is saved with its
        blocks (read back from RAM and disk); the resumed session re-archives them into its own archive
        folder, which must be empty. The attached source is not saved: after resuming,
        :meth:`resume_watch` continues the same video where the clock stopped.

        Raises:
            SessionSaveError: full disk or unwritable folder (the previous save there is left intact).
        """
        from pipeline.persist import save_session

        self._close_open_answer()
        return save_session(self, folder)

    def state_dict(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(tensors, meta)`` of everything but the source (see ``pipeline.persist.session_state``)."""
        from pipeline.persist.session_state import session_state

        self._close_open_answer()
        return session_state(self)

    def load_state_dict(self, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
        """Restore a state made by :meth:`state_dict` (same model and memory configuration)."""
        from pipeline.persist.session_state import load_session_state

        self._close_open_answer()
        load_session_state(self, tensors, meta)

    def close(self) -> None:
        """Release the source and the memory."""
        self._close_open_answer()
        self.detach()
        self.bank.cache.reset()
        self.bank.blocks.clear()

    def __enter__(self) -> StreamSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AnswerStream:
    """Iterator of text pieces of one answer; :meth:`result` gives the finished :class:`Answer`.

    The memory is restored when the stream ends, fails or is closed (closing early is fine).
    """

    def __init__(
        self,
        session: StreamSession,
        question: str,
        question_time: float | None,
        pending: list[Frame],
        sampling: SamplingParams,
        started: float,
        catch_up_s: float,
        image: np.ndarray | None = None,
    ) -> None:
        self._session = session
        self.question = question
        self.question_time = question_time
        self._pending = pending
        self._sampling = sampling
        self._started = started
        self._catch_up_s = catch_up_s
        self._image = image
        self.retrieved: list[float] = []
        self._frames_ingested = session.counters.frames_ingested + len(pending)
        self._memory = session.bank.stats().as_dict()
        resident = session.bank.resident_frame_timestamps + [f.timestamp for f in pending]
        self._covered = (resident[0], resident[-1]) if resident else None
        self._text: list[str] = []
        self._num_tokens = 0
        self._finish_reason: str | None = None
        self._first_text_at: float | None = None
        self._finished_at: float | None = None
        self._pieces = self._generate()

    def _generate(self) -> Iterator[TextPiece]:
        session = self._session
        cache = session.bank.cache
        checkpoint = cache.checkpoint()
        cursor = session.cursor.copy()
        try:
            if self._pending:
                session.model.prefill(session._encode(self._pending), cache, cursor)
            if session.recall is not None:  # archived blocks join the answer's view, rolled back with it
                self.retrieved = session.recall.attach(
                    self.question, self._image, cache, cursor, session.bank, session._frame_hw
                )
            for piece in session.model.answer(self.question, cache, cursor, self._sampling):
                if piece.text and self._first_text_at is None:
                    self._first_text_at = time.perf_counter()
                self._text.append(piece.text)
                self._num_tokens += len(piece.token_ids)
                self._finish_reason = piece.finish_reason or self._finish_reason
                yield piece
        finally:
            cache.rollback(checkpoint)
            self._finished_at = time.perf_counter()

    def __iter__(self) -> Iterator[TextPiece]:
        return self

    def __next__(self) -> TextPiece:
        return next(self._pieces)

    def close(self) -> None:
        """Stop generating and restore memory."""
        self._pieces.close()
        if self._session._open_answer is self:
            self._session._open_answer = None

    def result(self) -> Answer:
        """Generate to the end (if not done) and return the answer."""
        for _ in self._pieces:
            pass
        self.close()
        end = self._finished_at or time.perf_counter()
        first = self._first_text_at or end
        return Answer(
            question=self.question,
            answer="".join(self._text),
            question_time=self.question_time,
            frames_ingested=self._frames_ingested,
            frames_covered=self._covered,
            finish_reason=self._finish_reason,
            num_tokens=self._num_tokens,
            memory=self._memory,
            timing={
                "ttft_s": round(first - self._started, 6),
                "total_s": round(end - self._started, 6),
                "catch_up_s": round(self._catch_up_s, 6),
            },
            retrieved=self.retrieved,
            archive=self._session.recall.stats() if self._session.recall is not None else None,
        )
