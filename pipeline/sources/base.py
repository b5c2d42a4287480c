"""The :class:`FrameSource` abstract base: threaded reading, sampling hooks, counters, lifecycle.

A source decodes in a background thread (:class:`~pipeline.sources.threaded.ReaderThread`) that feeds
a bounded queue; iterating the source yields :class:`~pipeline.frames.Frame` objects in timestamp
order from that queue. Subclasses implement one generator, :meth:`FrameSource._read`, which runs in
the thread, decodes, samples (see :mod:`pipeline.sources.sampling`) and yields ``(timestamp, rgb)``
pairs; the base class does the rest:

* **Back-pressure.** File sources block the reader when the queue is full (nothing is lost); live
  sources (``drop_oldest=True``) discard the oldest queued frame and count it in
  :attr:`FrameSource.frames_dropped`, so a slow consumer always sees recent frames.
* **Errors.** An exception in the reader thread is re-raised in the consumer. Decode/IO failures are
  wrapped as :class:`~pipeline.errors.SourceError` (``raise ... from e``); a ``SourceError`` raised by
  the subclass passes through as is; anything else (a bug) is re-raised unchanged.
* **Lifecycle.** :meth:`FrameSource.close` is idempotent, stops the thread and releases the decoder or
  process; the source is a context manager, and reaching the end (or an error) also closes it.
* **One pass.** A source is its own iterator, like a file object: ``iter(source) is source``. Several
  ``for`` loops (or ``next()`` calls) over it continue the same stream where the last one stopped;
  after the end, iteration yields nothing.
* **End reason.** :attr:`FrameSource.end_reason` tells why iteration ended: ``"end of stream"``,
  ``"closed"``, or ``"error: <message>"``.
* **Real time.** With ``realtime=True`` frames are released on the wall clock
  (:class:`~pipeline.sources.pacing.RealtimePacer`), so a file can simulate a live camera.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from pipeline.errors import SourceError
from pipeline.frames import Frame
from pipeline.sources.messages import one_line, source_error
from pipeline.sources.pacing import RealtimePacer
from pipeline.sources.sampling import check_sampling_args
from pipeline.sources.threaded import END_OF_STREAM, ReaderThread

logger = logging.getLogger(__name__)

TimedImage = tuple[float, np.ndarray]
"""What :meth:`FrameSource._read` yields: ``(timestamp_seconds, rgb (H, W, 3) uint8)``."""


class FrameSource(ABC):
    """Abstract iterator of :class:`~pipeline.frames.Frame` objects, read in a background thread.

    Args:
        spec: the file path, URL or camera index as the user gave it (for messages and ``describe``).
        fps: target sampling rate in frames per second, or None to keep every frame.
        start: clip start in seconds (inclusive), or None.
        end: clip end in seconds (inclusive), or None.
        realtime: release frames on the wall clock (simulates a live camera with a file).
        queue_size: capacity of the frame queue between the reader thread and the consumer.
        drop_oldest: live-source policy: when the queue is full, drop the oldest frame (counted in
            :attr:`frames_dropped`) instead of blocking the reader.

    Attributes:
        spec: the source as given.
        frames_read: frames decoded by the reader thread (before sampling, where the source samples
            in Python).
        frames_yielded: frames handed to the consumer.
        end_reason: why iteration ended (``"end of stream"``, ``"closed"``, ``"error: ..."``), or None
            while it has not.
    """

    kind: ClassVar[str] = "source"
    """Short name of the source type, reported by :meth:`describe`."""

    join_timeout_s: ClassVar[float] = 5.0
    """How long :meth:`close` waits for the reader thread."""

    def __init__(
        self,
        spec: str,
        *,
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
        realtime: bool = False,
        queue_size: int = 16,
        drop_oldest: bool = False,
    ) -> None:
        check_sampling_args(spec, fps, start, end)
        if not isinstance(queue_size, int) or queue_size < 1:
            raise source_error(f"invalid queue_size={queue_size!r} for {spec}", "pass a positive integer (e.g. 16)")
        self.spec = spec
        self.fps = None if fps is None else float(fps)
        self.start = None if start is None else float(start)
        self.end = None if end is None else float(end)
        self.realtime = bool(realtime)
        self.queue_size = queue_size
        self.drop_oldest = bool(drop_oldest)
        self.frames_read = 0
        self.frames_yielded = 0
        self.end_reason: str | None = None
        self._reader: ReaderThread[TimedImage] | None = None
        self._stop_event = threading.Event()
        self._close_lock = threading.Lock()
        self._close_done = threading.Event()
        self._closed = False
        self._frame_iter: Iterator[Frame] | None = None

    # ----------------------------------------------------------------------------------------------
    # subclass hooks
    @abstractmethod
    def _read(self) -> Iterator[TimedImage]:
        """Decode, sample and yield ``(timestamp, rgb)`` pairs in timestamp order (reader thread).

        Implementations increment :attr:`frames_read` per decoded frame, return early when
        :attr:`stopping` becomes true, may set :attr:`end_reason` before returning (e.g. a mid-stream
        failure on a live stream), and raise :class:`SourceError` for failures the user must see.
        Their ``finally`` blocks run in the reader thread when iteration stops.
        """

    def _describe(self) -> dict[str, Any]:
        """Source-specific entries for :meth:`describe`."""
        return {}

    def _interrupt(self) -> None:
        """Unblock a read in progress in the reader thread (e.g. terminate a subprocess)."""
        return None

    def _release(self, reader_stopped: bool) -> None:
        """Free the decoder, capture or process after the reader thread has been asked to stop.

        Args:
            reader_stopped: whether the reader thread has ended; if not, it may still use the decoder.
        """
        return None

    def _as_source_error(self, exc: BaseException) -> SourceError | None:
        """Wrap a decode/IO failure from the reader thread as a one-line SourceError, or None if
        ``exc`` is not such a failure (it is then re-raised unchanged)."""
        if isinstance(exc, OSError | EOFError):
            return source_error(
                f"reading {self.spec} failed: {one_line(exc)}",
                "check that the file or stream is readable, then retry",
            )
        return None

    # ----------------------------------------------------------------------------------------------
    # public API
    @property
    def frames_dropped(self) -> int:
        """Frames discarded by the bounded queue because the consumer was slow (live sources only)."""
        return self._reader.dropped if self._reader is not None else 0

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._closed

    @property
    def stopping(self) -> bool:
        """Whether the source is closing; :meth:`_read` checks it to stop early."""
        return self._stop_event.is_set()

    @property
    def reader_alive(self) -> bool:
        """Whether the background reader thread is running."""
        return self._reader is not None and self._reader.alive

    def describe(self) -> dict[str, Any]:
        """What this source is: ``kind``, ``spec``, ``native_fps`` and ``duration`` (None if unknown),
        output ``size`` as ``(width, height)`` (None until known), ``frames`` (how many frames it will
        yield, when known in advance: files read by decord), and the sampling settings."""
        info: dict[str, Any] = {
            "kind": self.kind,
            "spec": self.spec,
            "native_fps": None,
            "duration": None,
            "size": None,
            "frames": None,
            "fps": self.fps,
            "start": self.start,
            "end": self.end,
            "realtime": self.realtime,
            "drops_when_slow": self.drop_oldest,
        }
        info.update(self._describe())
        return info

    def __iter__(self) -> FrameSource:
        return self

    def __next__(self) -> Frame:
        """The next frame; the reader thread starts on the first call."""
        if self._frame_iter is None:
            self._frame_iter = self._frames()
        return next(self._frame_iter)

    def close(self) -> None:
        """Stop the reader thread and release the decoder/process. Safe to call more than once and
        from another thread; an iteration in progress ends with ``end_reason == "closed"``."""
        with self._close_lock:
            already = self._closed
            self._closed = True
        if already:
            # Another thread may be closing right now: return once it has finished.
            self._close_done.wait(self.join_timeout_s + 5.0)
            return
        try:
            self._close_now()
        finally:
            self._close_done.set()

    def _close_now(self) -> None:
        """The body of :meth:`close`, run once: stop, interrupt, join, release."""
        self._stop_event.set()
        self._set_end("closed")
        reader_stopped = True
        try:
            self._interrupt()
        except Exception:  # noqa: BLE001 - cleanup must go on
            logger.warning("interrupting %s failed", self.spec, exc_info=True)
        if self._reader is not None:
            reader_stopped = self._reader.stop(self.join_timeout_s)
        try:
            self._release(reader_stopped)
        except Exception:  # noqa: BLE001 - cleanup must go on
            logger.warning("releasing %s failed", self.spec, exc_info=True)
        logger.debug(
            "closed %s (%s): read=%d yielded=%d dropped=%d",
            self.spec,
            self.end_reason,
            self.frames_read,
            self.frames_yielded,
            self.frames_dropped,
        )

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    # ----------------------------------------------------------------------------------------------
    # internals
    def _set_end(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason

    def _frames(self) -> Iterator[Frame]:
        if self._closed:
            return
        reader: ReaderThread[TimedImage] = ReaderThread(
            self._read,
            maxsize=self.queue_size,
            drop_oldest=self.drop_oldest,
            name=f"{self.kind}-reader",
        )
        self._reader = reader
        reader.start()
        pacer = RealtimePacer() if self.realtime else None
        try:
            while True:
                item = self._next_item(reader)
                if item is END_OF_STREAM:
                    break
                timestamp, rgb = item  # type: ignore[misc]
                if pacer is not None:
                    pacer.wait(timestamp, self._stop_event)
                if self._stop_event.is_set():
                    break
                frame = Frame(index=self.frames_yielded, timestamp=float(timestamp), rgb=rgb)
                self.frames_yielded += 1
                yield frame
            self._set_end("closed" if self._stop_event.is_set() else "end of stream")
        finally:
            self.close()

    def _next_item(self, reader: ReaderThread[TimedImage]) -> object:
        try:
            return reader.get()
        except SourceError as exc:
            self._set_end(f"error: {exc}")
            raise
        except Exception as exc:
            wrapped = self._as_source_error(exc)
            if wrapped is None:
                self._set_end(f"error: {exc!r}")
                raise
            self._set_end(f"error: {wrapped}")
            raise wrapped from exc
