"""The synchronous (threaded) front end of the real-time engine, usable from non-async code.

Example::

    engine = RealtimeVideoQA.from_pretrained("/tmp/tiny")
    stream = engine.watch("clip.mp4", realtime=True)
    request = stream.ask("What happens?")            # returns at once
    for piece in request:                             # text as it is generated
        print(piece.text, end="", flush=True)
    print(request.info.frames_covered, request.info.lag_s)
    engine.close()
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections.abc import Iterable, Iterator
from typing import Any

from models.protocol import SamplingParams, VideoLM
from pipeline.config import StreamConfig
from pipeline.engine.core import EngineCore, StepHook
from pipeline.engine.errors import RequestCancelledError
from pipeline.engine.records import AnswerInfo, AnswerPiece
from pipeline.engine.requests import Request
from pipeline.engine.settings import EngineSettings
from pipeline.frames import Frame
from pipeline.sources import FrameSource, open_source
from pipeline.sources.specs import camera_index

logger = logging.getLogger(__name__)

SourceLike = FrameSource | str | int | Iterable[Frame]
"""What ``watch`` takes: an opened source, a path/URL/camera index, or any iterable of frames."""


class AnswerRequest:
    """One question in flight: iterate it for text pieces; :attr:`info` holds its metadata.

    Text pieces are delivered once (iterate once); :meth:`result` also works after iterating;
    :meth:`cancel` stops it.
    """

    def __init__(self, core: EngineCore, request: Request) -> None:
        self._core = core
        self._request = request

    @property
    def info(self) -> AnswerInfo:
        """The metadata record (question time, frames covered, lag, ttft, status, answer so far)."""
        return self._request.info

    @property
    def done(self) -> bool:
        """Whether the request has ended (done, cancelled or failed)."""
        return self._request.channel.closed.is_set()

    def __iter__(self) -> Iterator[AnswerPiece]:
        channel = self._request.channel
        while True:
            try:
                event = channel.get(timeout=0.1)
            except queue.Empty:
                if self._core.closed and not channel.closed.is_set():
                    raise RequestCancelledError("the engine stopped before this answer ended") from None
                continue
            if event.end:
                if event.error is not None:
                    raise event.error
                return
            assert event.piece is not None
            yield event.piece

    def result(self, timeout: float | None = None) -> AnswerInfo:
        """Wait for the end and return the metadata; raises the request's error if it failed.

        Raises:
            TimeoutError: not finished within ``timeout`` seconds (the request goes on).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        for _ in self:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"request {self.info.request_id} did not finish within {timeout} s")
        return self.info

    def cancel(self) -> None:
        """Stop generating; the request ends with status ``cancelled``."""
        self._core.cancel(self._request.request_id)


class StreamHandle:
    """One watched stream: ask questions about it, read its counters, close it."""

    def __init__(self, core: EngineCore, stream_id: int, description: dict[str, Any]) -> None:
        self._core = core
        self.stream_id = stream_id
        self.description = description

    def ask(
        self,
        question: str,
        *,
        at: float | None = None,
        mode: str = "covered",
        sampling: SamplingParams | None = None,
        max_wait_s: float | None = None,
    ) -> AnswerRequest:
        """Queue ``question`` (returns at once).

        Args:
            question: the question text.
            at: stream time it refers to (default: the newest captured frame at arrival).
            mode: ``covered`` (wait, at most ``max_wait_s``, for every frame up to ``at`` to be in
                memory) or ``now`` (answer from what the engine has taken so far).
            sampling: overrides the session's sampling parameters.
            max_wait_s: overrides the engine's waiting bound for this question.

        Raises:
            QuestionError: empty or too long question, unknown mode.
            EngineClosedError: the engine or the stream is closed or failed.
        """
        request = self._core.submit(
            self.stream_id, question, at=at, mode=mode, sampling=sampling, max_wait_s=max_wait_s
        )
        return AnswerRequest(self._core, request)

    def stats(self) -> dict[str, Any]:
        """Counters: frames read / dropped / encoded, end reason, memory (see ``StreamStats``)."""
        return self._core.stream_stats(self.stream_id)

    def wait_ended(self, timeout: float | None = None, poll_s: float = 0.1) -> bool:
        """Wait until capture has ended and every captured frame is taken; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats["capture_ended"] and stats["frames_queued"] == 0:
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(poll_s)

    def close(self) -> None:
        """Stop capture, cancel this stream's requests, free its memory."""
        self._core.close_stream(self.stream_id)


class RealtimeVideoQA:
    """The real-time engine behind a thread-safe synchronous API.

    Args:
        model: a loaded model; the engine's worker thread is the only one that runs it.
        config: configuration of the streams (source sampling, memory, sampling...).
        settings: engine settings (waiting bound, queues, drop policy, fairness).
        step_hook: called before each worker step (timing, fault injection in tests).
    """

    def __init__(
        self,
        model: VideoLM,
        config: StreamConfig | None = None,
        settings: EngineSettings | None = None,
        step_hook: StepHook | None = None,
    ) -> None:
        self.model = model
        self.config = config or StreamConfig()
        self.settings = settings or EngineSettings()
        self.core = EngineCore(model, self.config, self.settings, step_hook)

    @classmethod
    def from_pretrained(
        cls,
        model_id_or_path: str | None = None,
        config: StreamConfig | None = None,
        settings: EngineSettings | None = None,
    ) -> RealtimeVideoQA:
        """Load a model (as :meth:`pipeline.videoqa.VideoQA.from_pretrained`) and start an engine on it."""
        from pipeline.videoqa import VideoQA

        qa = VideoQA.from_pretrained(model_id_or_path, config)
        return cls(qa.model, qa.config, settings)

    def watch(
        self,
        source: SourceLike,
        *,
        realtime: bool | None = None,
        speed: float | None = None,
        drop_policy: str | None = None,
        config: StreamConfig | None = None,
    ) -> StreamHandle:
        """Start a stream on ``source``; capture begins at once.

        Args:
            source: an opened :class:`FrameSource`, a path/URL/camera index, or an iterable of frames.
            realtime: pace a file (or iterable) at ``speed`` x real time (default: ``config.source.realtime``).
            speed: pacing speed (default: ``settings.speed``).
            drop_policy: ``drop_oldest``, ``block`` or ``auto`` (default: ``settings.drop_policy``).
            config: configuration of this stream (default: the engine's).

        Raises:
            SourceError: the source cannot be opened.
            EngineClosedError: the engine is closed.
        """
        config = config or self.config
        realtime = config.source.realtime if realtime is None else realtime
        speed = self.settings.speed if speed is None else speed
        frames, live = self._open(source, config)
        policy = drop_policy or self.settings.drop_policy
        EngineSettings(drop_policy=policy)  # validates the name
        drop_oldest = policy == "drop_oldest" or (policy == "auto" and (live or realtime))
        pace = speed if realtime and not getattr(frames, "realtime", False) and not live else None
        description = frames.describe() if isinstance(frames, FrameSource) else {"kind": "frames"}
        description.update({"drop_policy": "drop_oldest" if drop_oldest else "block", "pace_speed": pace})
        try:
            stream_id = self.core.add_stream(frames, drop_oldest=drop_oldest, pace_speed=pace, config=config)
        except BaseException:
            if isinstance(frames, FrameSource):
                frames.close()
            raise
        return StreamHandle(self.core, stream_id, description)

    def _open(self, source: SourceLike, config: StreamConfig) -> tuple[Iterable[Frame], bool]:
        """``(frames, live)``: the iterable to capture and whether it is a live input."""
        if isinstance(source, FrameSource):
            return source, bool(source.drop_oldest)
        if isinstance(source, (str, int, os.PathLike)):
            cfg = config.source
            is_file = isinstance(source, (str, os.PathLike)) and os.path.isfile(source)
            size = self._decode_size if is_file else None
            opened = open_source(source, fps=cfg.fps, start=cfg.start, end=cfg.end, realtime=False, size=size)
            live = not is_file or camera_index(source) is not None
            return opened, live
        return source, False

    def _decode_size(self, width: int, height: int) -> tuple[int, int]:
        out_height, out_width = self.model.frame_size(height, width)
        return out_width, out_height

    def close(self, drain: bool = False, timeout: float = 30.0) -> None:
        """Cancel (or with ``drain`` finish) every request, stop every source, free all memory."""
        self.core.close(drain=drain, timeout=timeout)

    def __enter__(self) -> RealtimeVideoQA:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
