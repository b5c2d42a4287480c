"""One browser tab's stream as the demo sees it: open a source, ingest, answer, report.

:class:`DemoEngine` holds the model (loaded once, shared by every tab); :class:`DemoStream` is one
tab's stream: its source, its session (memory), the thumbnails of what it ingested and the history
of its statistics. The page calls a handful of verbs (``ask``, ``refresh``, ``set_paused``, ``push``,
``close``) and renders what they return; nothing here imports Gradio.
"""

from __future__ import annotations

import logging
import os
import threading
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
from pipeline.errors import SourceError, UserInputError
from pipeline.sources import open_source
from pipeline.videoqa import VideoQA

logger = logging.getLogger(__name__)

RANDOM_WEIGHTS_MAX_PARAMS = 50_000_000
"""Checkpoints smaller than this are the tiny random-weight ones (``streamvqa make-tiny``)."""

EVIDENCE_LABEL = (
    "Frames resident in memory when this answer was generated (the engine does not report which "
    "frames the answer attended to); % = share of the frame's tokens still in memory"
)


def has_random_weights(qa: VideoQA) -> bool:
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
    """The loaded model and the defaults every tab starts from."""

    def __init__(self, qa: VideoQA) -> None:
        self.qa = qa
        self.config = qa.config
        self.random_weights = has_random_weights(qa)

    @classmethod
    def start(cls, config: StreamConfig) -> DemoEngine:
        """Load the model named in ``config`` (raises :class:`UserInputError` with the fix when it cannot)."""
        return cls(VideoQA.from_pretrained(config=config))

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
        """Nothing to release beyond the streams (the registry closes them); kept for symmetry."""
        logger.info("demo engine closed")


class DemoStream:
    """One tab's stream: source → session memory, with thumbnails, counters and answers.

    Args:
        qa: the shared model front end.
        config: this stream's configuration (policy and budget chosen on the page).
        spec: file path, URL, or ``"webcam"`` (frames then come through :meth:`push`).
        kind: ``upload``, ``url`` or ``webcam`` (for messages).
    """

    def __init__(self, qa: VideoQA, config: StreamConfig, spec: str, kind: str) -> None:
        self.kind = kind
        self.thumbnails = ThumbnailStore()
        self.history = StatsHistory()
        self.evidence_label = EVIDENCE_LABEL
        self.paused = False
        self._push: PushSource | None = None
        self._source = TappedSource(self._open(spec, kind, config), self.thumbnails.add)
        try:
            self.session = qa.session(config)  # raises UserInputError for a bad policy or budget
        except BaseException:
            self._source.close()
            raise
        self._lock = threading.Lock()  # one user of the session at a time
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._first_frame_wall: float | None = None
        self._last_sample: tuple[float, int] = (self._started, 0)
        self._last_evidence: list[Evidence] = []
        self.error: str | None = None
        self._worker = threading.Thread(target=self._ingest_loop, name=f"demo-ingest-{kind}", daemon=True)
        self._worker.start()

    def _open(self, spec: str, kind: str, config: StreamConfig):
        fps = config.source.fps
        if kind == "webcam":
            self._push = PushSource("webcam", fps=fps)
            return self._push
        if kind == "upload" and not os.path.isfile(spec):
            raise SourceError(f"the uploaded file is gone ({spec}): upload it again")
        # an upload is paced on the wall clock so memory follows the player; live sources are real time already
        return open_source(spec, fps=fps, realtime=kind == "upload")

    # ------------------------------------------------------------------------------------ ingest
    def _ingest_loop(self) -> None:
        """Read frames (waiting on the source outside the lock) and feed them into memory."""
        try:
            for frame in self._source:
                while self.paused and not self._stop.is_set():
                    time.sleep(0.05)
                if self._stop.is_set():
                    return
                with self._lock:
                    self.session.feed([frame])
                if self._first_frame_wall is None:
                    self._first_frame_wall = time.monotonic()
            logger.info("source ended: %s", self._source.end_reason)
        except SourceError as error:
            self.error = f"the stream stopped: {error}"
            logger.info("stream ended with an error: %s", error)
        except Exception as error:  # a bug must not kill the app: report it on the page
            logger.exception("ingest failed")
            self.error = f"ingest failed: {error}"

    def set_paused(self, paused: bool) -> None:
        """Pause or resume ingest (the source keeps its place; live sources drop what arrives meanwhile)."""
        self.paused = paused

    def push(self, rgb: np.ndarray) -> None:
        """A webcam frame from the browser."""
        if self._push is not None and not self.paused:
            self._push.push(rgb)

    # ---------------------------------------------------------------------------------- answers
    def ask(self, question: str) -> Iterator[AnswerUpdate]:
        """Answer from everything ingested so far, piece by piece; memory is left as it was."""
        with self._lock:
            stream = self.session.ask_stream(question)
            covered = stream._covered
            update = AnswerUpdate("", stream.question_time, frames_covered=covered)
            self._last_evidence = resident_evidence(self.thumbnails, self.session.bank.kept_per_frame())
            text = []
            for piece in stream:
                text.append(piece.text)
                update = AnswerUpdate("".join(text), stream.question_time, frames_covered=covered)
                yield update
            stream.close()
        yield AnswerUpdate(update.text, update.question_time, done=True, frames_covered=covered)

    def evidence(self) -> list[Evidence]:
        """Thumbnails behind the last answer (frames resident in memory when it was asked)."""
        return self._last_evidence

    # ----------------------------------------------------------------------------------- reports
    def sample(self) -> StatsSample:
        """Read the session's counters into the history."""
        with self._lock:
            stats = self.session.stats()
        memory, ingest = stats["memory"], stats["ingest"]
        now = time.monotonic()
        frames = int(ingest["frames_ingested"])
        then, frames_then = self._last_sample
        fps = (frames - frames_then) / (now - then) if now > then else 0.0
        self._last_sample = (now, frames)
        video_time = stats["last_timestamp"]
        lag = 0.0
        if self._first_frame_wall is not None and video_time is not None and self.kind != "webcam":
            first = self.thumbnails.first_timestamp() or 0.0
            lag = max(0.0, (now - self._first_frame_wall) - (video_time - first)) if not self.paused else 0.0
        sample = StatsSample(
            elapsed_s=round(now - self._started, 3),
            video_time=video_time,
            frames_ingested=frames,
            sink_tokens=memory["sink_tokens"],
            short_term_tokens=memory["short_term_tokens"],
            long_term_tokens=memory["long_term_tokens"],
            device_bytes=memory["device_bytes"],
            logical_tokens=memory["logical_tokens"],
            compression_ratio=memory["compression_ratio"],
            ingest_fps=round(fps, 3),
            lag_s=round(lag, 3),
            dropped_frames=self._source.frames_dropped,
        )
        self.history.add(sample)
        return sample

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

        state = "paused" if self.paused else (self._source.end_reason or "ingesting")
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
        """Stop ingest and release the source and the memory."""
        self._stop.set()
        self._source.close()
        self._worker.join(timeout=10)
        with self._lock:
            self.session.close()
        self.thumbnails.clear()
        self.history.clear()


def _human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"
