"""One browser tab's stream as the demo sees it: a thin layer over the real-time engine.

:class:`DemoEngine` holds one :class:`~pipeline.engine.RealtimeVideoQA` (the model, loaded once, and
the worker that interleaves every tab's ingest and answers); :class:`DemoStream` is one tab's stream
handle plus what only the page needs: thumbnails of the captured frames, the history of the
statistics, and pause. The page calls a handful of verbs (``ask``, ``refresh``, ``set_paused``,
``push``, ``close``) and renders what they return; nothing here imports Gradio.

Adapters for what the engine API does not offer (see ``pipeline/demo/tap.py`` and
:func:`resident_chunks`): pausing capture, and which frames are resident in a stream's memory.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from pipeline.config import StreamConfig
from pipeline.demo.history import StatsHistory, StatsSample
from pipeline.demo.push_source import PushSource
from pipeline.demo.tap import TappedSource
from pipeline.demo.thumbnails import Evidence, ThumbnailStore, resident_evidence
from pipeline.engine.client import RealtimeVideoQA, StreamHandle
from pipeline.engine.core import EngineCore
from pipeline.errors import SourceError, UserInputError
from pipeline.sources import open_source

logger = logging.getLogger(__name__)

RANDOM_WEIGHTS_MAX_PARAMS = 50_000_000
"""Checkpoints smaller than this are the tiny random-weight ones (``streamvqa make-tiny``)."""

EVIDENCE_LABEL = (
    "Frames resident in memory when this answer was generated (the engine does not report which "
    "frames the answer attended to); % = share of the frame's tokens still in memory"
)


def has_random_weights(qa: RealtimeVideoQA) -> bool:
    """Whether ``qa``'s model is a random-weight checkpoint (``random:`` configs and tiny checkpoints)."""
    if qa.model.model_id.startswith("random:"):
        return True
    module = getattr(qa.model, "model", None)
    parameters = getattr(module, "parameters", None)
    if parameters is None:
        return False
    return sum(p.numel() for p in parameters()) < RANDOM_WEIGHTS_MAX_PARAMS


def model_banner(engine: DemoEngine) -> str:
    """One line of Markdown naming the model, and warning plainly when its answers are noise."""
    line = f"Model: `{engine.qa.model.model_id}` ({engine.qa.model.family})."
    if engine.random_weights:
        line += (
            "\n\n> **This model has random weights (offline test checkpoint): its answers are random words.** "
            "Everything else (streaming, memory, evidence) is real. Start with `--model` and a real "
            "checkpoint for real answers."
        )
    return line


@dataclass
class AnswerUpdate:
    """The answer so far, as the chat shows it.

    Attributes:
        text: generated text so far.
        question_time: video time (s) the answer covers up to (None before any frame).
        done: whether generation finished.
        frames_covered: ``(first, last)`` timestamps resident in memory for this answer.
    """

    text: str
    question_time: float | None
    done: bool = False
    frames_covered: tuple[float, float] | None = None

    def markdown(self) -> str:
        stamp = "before any frame" if self.question_time is None else f"at {self.question_time:.1f} s of video"
        body = self.text if self.text else ("(empty answer)" if self.done else "…")
        return f"*⏱ {stamp}*\n\n{body}{'' if self.done else ' ▌'}"


@dataclass
class Snapshot:
    """What the live panels show at one refresh."""

    frame: np.ndarray | None
    markdown: str
    figure: Figure | None
    error: str | None


class DemoEngine:
    """The real-time engine (model + worker) and the defaults every tab starts from."""

    def __init__(self, qa: RealtimeVideoQA) -> None:
        self.qa = qa
        self.config = qa.config
        self.random_weights = has_random_weights(qa)

    @classmethod
    def start(cls, config: StreamConfig) -> DemoEngine:
        """Load the model named in ``config`` (raises :class:`UserInputError` with the fix when it cannot)."""
        return cls(RealtimeVideoQA.from_pretrained(config=config))

    def open_stream(
        self, spec: str, kind: str, policy: str | None = None, budget_tokens: int | None = None
    ) -> DemoStream:
        """Open ``spec`` (an uploaded file path, a URL, or ``"webcam"``) as a new stream with its own memory."""
        config = self.config
        if policy:
            config = config.replace("memory", policy=policy.strip())
        if budget_tokens is not None:
            if budget_tokens < 0:
                raise UserInputError(f"the budget must be >= 0 tokens, got {budget_tokens}")
            config = config.replace("memory", budget_tokens=budget_tokens)
        return DemoStream(self.qa, config, spec, kind)

    def close(self) -> None:
        """Stop the engine (cancels answers, stops every capture, frees every memory)."""
        self.qa.close()
        logger.info("demo engine closed")


class DemoStream:
    """One tab's stream: an engine stream handle plus thumbnails, statistics history and pause.

    Args:
        qa: the shared engine.
        config: this stream's configuration (policy and budget chosen on the page).
        spec: file path, URL, or ``"webcam"`` (frames then come through :meth:`push`).
        kind: ``upload``, ``url`` or ``webcam`` (for messages).
    """

    def __init__(self, qa: RealtimeVideoQA, config: StreamConfig, spec: str, kind: str) -> None:
        self.kind = kind
        self.config = config
        self.thumbnails = ThumbnailStore()
        self.history = StatsHistory()
        self.evidence_label = EVIDENCE_LABEL
        self._core = qa.core
        self._push: PushSource | None = None
        self._source = TappedSource(self._open(spec, kind, config), self.thumbnails.add)
        try:
            # an upload is paced on the wall clock so memory follows the player; live inputs drop when behind
            self.handle: StreamHandle = qa.watch(
                self._source, realtime=kind == "upload", drop_policy="drop_oldest", config=config
            )
        except BaseException:
            self._source.close()
            raise
        self._started = time.monotonic()
        self._last_sample: tuple[float, int] = (self._started, 0)
        self._last_evidence: list[Evidence] = []

    def _open(self, spec: str, kind: str, config: StreamConfig):
        fps = config.source.fps
        if kind == "webcam":
            self._push = PushSource("webcam", fps=fps)
            return self._push
        if kind == "upload" and not os.path.isfile(spec):
            raise SourceError(f"the uploaded file is gone ({spec}): upload it again")
        return open_source(spec, fps=fps)

    @property
    def paused(self) -> bool:
        return self._source.paused

    def set_paused(self, paused: bool) -> None:
        """Pause or resume capture (a live source drops what arrives meanwhile and counts it)."""
        self._source.set_paused(paused)

    def push(self, rgb: np.ndarray) -> None:
        """A webcam frame from the browser."""
        if self._push is not None and not self.paused:
            self._push.push(rgb)

    # ---------------------------------------------------------------------------------- answers
    def ask(self, question: str) -> Iterator[AnswerUpdate]:
        """Answer from every frame captured up to now, piece by piece (ingest goes on meanwhile)."""
        request = self.handle.ask(question)
        info = request.info
        text: list[str] = []
        try:
            for piece in request:
                text.append(piece.text)
                yield AnswerUpdate("".join(text), info.question_time, frames_covered=info.frames_covered)
        except GeneratorExit:
            request.cancel()
            raise
        self._last_evidence = self._evidence(info.frames_covered)
        yield AnswerUpdate("".join(text), info.question_time, done=True, frames_covered=info.frames_covered)

    def _evidence(self, covered: tuple[float, float] | None) -> list[Evidence]:
        chunks = resident_chunks(self._core, self.handle.stream_id)
        if covered is not None:  # the frames this answer's view held, not the ones ingested since
            chunks = [(t, kept) for t, kept in chunks if covered[0] <= t <= covered[1]]
        return resident_evidence(self.thumbnails, chunks)

    def evidence(self) -> list[Evidence]:
        """Thumbnails behind the last answer (frames resident in memory for it)."""
        return self._last_evidence

    # ----------------------------------------------------------------------------------- reports
    def sample(self) -> StatsSample:
        """Read the engine's counters for this stream into the history."""
        stats = self.handle.stats()
        memory = stats["memory"] or {}
        now = time.monotonic()
        frames = int(stats["frames_encoded"])
        then, frames_then = self._last_sample
        fps = (frames - frames_then) / (now - then) if now > then else 0.0
        self._last_sample = (now, frames)
        backlog = stats["frames_queued"] + stats["frames_buffered"]
        rate = self.config.source.fps or 1.0
        sample = StatsSample(
            elapsed_s=round(now - self._started, 3),
            video_time=stats["newest_captured"],
            frames_ingested=frames,
            sink_tokens=memory.get("sink_tokens", 0),
            short_term_tokens=memory.get("short_term_tokens", 0),
            long_term_tokens=memory.get("long_term_tokens", 0),
            device_bytes=memory.get("device_bytes", 0),
            logical_tokens=memory.get("logical_tokens", 0),
            compression_ratio=memory.get("compression_ratio", 1.0),
            ingest_fps=round(fps, 3),
            lag_s=round(backlog / rate, 3),  # captured but not yet in memory, in video seconds
            dropped_frames=int(stats["frames_dropped"]) + self._source.frames_dropped,
        )
        self.history.add(sample)
        self._end_reason = stats["end_reason"]
        return sample

    @property
    def error(self) -> str | None:
        """The stream's failure, in words, once capture ended with an error."""
        reason = getattr(self, "_end_reason", None)
        return f"the stream stopped: {reason[len('error: '):]}" if reason and reason.startswith("error") else None

    def refresh(self) -> Snapshot:
        """Sample the counters and build what the live panels show."""
        sample = self.sample()
        latest = self.thumbnails.latest()
        return Snapshot(
            frame=None if latest is None else latest[1],
            markdown=self._markdown(sample),
            figure=self.history.figure(),
            error=self.error,
        )

    def _markdown(self, s: StatsSample) -> str:
        device = s.sink_tokens + s.short_term_tokens + s.long_term_tokens
        per_token = s.device_bytes / device if device else 0.0

        def row(name: str, tokens: int) -> str:
            return f"| {name} | {tokens:,} | {_human_bytes(tokens * per_token)} |"

        state = "paused" if self.paused else (getattr(self, "_end_reason", None) or "ingesting")
        video = "-" if s.video_time is None else f"{s.video_time:.1f} s"
        return "\n".join([
            f"**Stream:** {state} · video time {video} · {s.frames_ingested} frames ingested",
            "",
            "| tier | tokens / head | bytes |",
            "|---|---:|---:|",
            row("sinks", s.sink_tokens),
            row("short-term", s.short_term_tokens),
            row("long-term", s.long_term_tokens),
            f"| **total** | {device:,} | {_human_bytes(s.device_bytes)} |",
            "",
            f"Compression {s.compression_ratio:.2f}x ({s.logical_tokens:,} tokens seen) · ingest "
            f"{s.ingest_fps:.1f} frames/s · lag {s.lag_s:.1f} s · dropped {s.dropped_frames} frames",
        ])  # fmt: skip

    # --------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop capture, cancel this stream's answers and release its memory."""
        try:
            self.handle.close()
        finally:
            self._source.close()
            self.thumbnails.clear()
            self.history.clear()


def resident_chunks(core: EngineCore, stream_id: int) -> list[tuple[float, float]]:
    """``(first timestamp, fraction kept)`` of each chunk resident in a stream's memory.

    Adapter: the engine's public stats give memory totals, not which frames are resident; this reads
    the stream's memory bank in the engine's worker thread, between steps (``EngineCore.call``).
    """
    try:
        return core.call(lambda: core._stream(stream_id).session.bank.kept_per_frame(), timeout=10)
    except Exception:  # noqa: BLE001 - evidence is best effort: a closed stream has none
        logger.debug("no resident chunks for stream %d", stream_id, exc_info=True)
        return []


def _human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"
