"""The capture thread: pulls frames from a source into a bounded queue, never waiting on the model.

Drop policy (``drop_oldest``): when the queue is full the oldest queued frame is discarded and counted,
so a frame never waits longer than ``capacity / fps`` seconds for the encoder and the newest frames
are always kept. ``block`` makes the thread wait for room instead (nothing is lost; for files read as
fast as possible). Real-time pacing of files happens here too (``speed`` x real time), so the stream
clock is the frames' media time in every case.

Errors of the source end the capture with ``end_reason = "error: ..."``; they are never raised into the
engine, which keeps answering from what was seen.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from pipeline.frames import Frame
from pipeline.sources import FrameSource

logger = logging.getLogger(__name__)


class CaptureQueue:
    """Bounded, thread-safe queue of ``(frame, captured_at)`` with a drop policy and counters.

    Args:
        capacity: frames held at most.
        drop_oldest: discard the oldest frame when full (else :meth:`put` waits for room).
        on_put: called after every put (wakes the engine).
    """

    def __init__(self, capacity: int, drop_oldest: bool, on_put: Callable[[], None] | None = None) -> None:
        self.capacity = capacity
        self.drop_oldest = drop_oldest
        self._items: collections.deque[tuple[Frame, float]] = collections.deque()
        self._cond = threading.Condition()
        self._on_put = on_put
        self.frames_read = 0
        self.frames_dropped = 0
        self.newest_timestamp: float | None = None
        self.max_delay_s = 0.0

    def put(self, frame: Frame, stop: threading.Event) -> bool:
        """Queue ``frame``; False if ``stop`` was set while waiting for room."""
        with self._cond:
            while len(self._items) >= self.capacity:
                if self.drop_oldest:
                    self._items.popleft()
                    self.frames_dropped += 1
                    break
                if stop.is_set():
                    return False
                self._cond.wait(0.05)
            self._items.append((frame, time.monotonic()))
            self.frames_read += 1
            self.newest_timestamp = frame.timestamp
        if self._on_put is not None:
            self._on_put()
        return True

    def take(self, max_frames: int, until: float | None = None) -> list[Frame]:
        """Remove up to ``max_frames`` oldest frames (only those with timestamp <= ``until`` if given)."""
        taken: list[Frame] = []
        now = time.monotonic()
        with self._cond:
            while self._items and len(taken) < max_frames:
                frame, captured_at = self._items[0]
                if until is not None and frame.timestamp > until:
                    break
                self._items.popleft()
                self.max_delay_s = max(self.max_delay_s, now - captured_at)
                taken.append(frame)
            self._cond.notify_all()
        return taken

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def count(self, until: float | None = None) -> int:
        """Queued frames (only those with timestamp <= ``until`` if given)."""
        with self._cond:
            if until is None:
                return len(self._items)
            return sum(1 for frame, _ in self._items if frame.timestamp <= until)

    def oldest_timestamp(self) -> float | None:
        with self._cond:
            return self._items[0][0].timestamp if self._items else None

    def clear(self) -> None:
        with self._cond:
            self._items.clear()
            self._cond.notify_all()


class CaptureThread:
    """Reads ``frames`` (a :class:`FrameSource` or any iterable of :class:`Frame`) into a :class:`CaptureQueue`.

    Args:
        frames: the source; closed by :meth:`stop` if it has a ``close`` method.
        queue: where frames go.
        pace_speed: if set, release the frame at media time ``t`` no earlier than
            ``(t - t0) / pace_speed`` seconds after the first (real-time file playback).
        on_end: called once when capture ends (wakes the engine).
        name: thread name.
    """

    def __init__(
        self,
        frames: Iterable[Frame],
        queue: CaptureQueue,
        *,
        pace_speed: float | None = None,
        on_end: Callable[[], None] | None = None,
        name: str = "capture",
    ) -> None:
        self.frames = frames
        self.queue = queue
        self.pace_speed = pace_speed
        self._on_end = on_end
        self._stop = threading.Event()
        self.ended = threading.Event()
        self.end_reason: str | None = None
        self.started_at: float | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.started_at = time.monotonic()
        self._thread.start()

    def _paced(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        t0: float | None = None
        wall0 = 0.0
        for frame in frames:
            if self.pace_speed is not None:
                if t0 is None:
                    t0, wall0 = frame.timestamp, time.monotonic()
                delay = wall0 + (frame.timestamp - t0) / self.pace_speed - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
            yield frame

    def _run(self) -> None:
        reason = "end of stream"
        try:
            for frame in self._paced(iter(self.frames)):
                if self._stop.is_set() or not self.queue.put(frame, self._stop):
                    reason = "closed"
                    break
            else:
                if self._stop.is_set():
                    reason = "closed"
                else:
                    reason = getattr(self.frames, "end_reason", None) or "end of stream"
        except Exception as error:  # noqa: BLE001 - reported as the end reason, the engine keeps answering
            reason = f"error: {error}"
            logger.warning("capture of %s ended: %s", getattr(self.frames, "spec", "frames"), error)
        finally:
            self.end_reason = reason
            self.ended.set()
            if self._on_end is not None:
                self._on_end()

    def stop(self, join_timeout: float = 5.0) -> None:
        """Stop capturing, close the source and wait for the thread."""
        self._stop.set()
        close = getattr(self.frames, "close", None) if isinstance(self.frames, FrameSource) else None
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - cleanup goes on
                logger.warning("closing the source failed", exc_info=True)
        if self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join(join_timeout)
        if self._thread.is_alive():
            logger.warning("capture thread %s did not stop within %.1f s", self._thread.name, join_timeout)
