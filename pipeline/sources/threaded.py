"""A background reader thread feeding a bounded queue, with exception hand-off to the consumer.

The producer (a callable returning an iterable, e.g. a generator that decodes frames) runs in a daemon
thread; items go into a bounded :class:`queue.Queue`. Two full-queue policies:

* blocking (file sources): the producer waits for room, so nothing is ever lost;
* drop-oldest (live sources): the oldest queued item is discarded to make room and counted in
  :attr:`ReaderThread.dropped`, so the consumer always gets the freshest frames.

An exception raised by the producer is stored and re-raised by :meth:`ReaderThread.get` in the
consumer's thread after the items queued before it (SAM2's ``AsyncVideoFrameLoader`` pattern); it is
never swallowed. Every wait uses a short timeout and re-checks the stop flag, so neither side can hang
once :meth:`ReaderThread.stop` is called or the producer thread dies.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _EndOfStream:
    """Sentinel type marking the end of the produced items."""

    def __repr__(self) -> str:
        return "END_OF_STREAM"


END_OF_STREAM = _EndOfStream()
"""Returned by :meth:`ReaderThread.get` when the producer is finished (or the reader was stopped)."""


class ReaderThread(Generic[T]):
    """Runs ``produce()`` in a daemon thread and hands its items to one consumer through a bounded queue.

    Args:
        produce: called once in the thread; its items are queued in order. Anything it raises is stored
            and re-raised by :meth:`get`.
        maxsize: queue capacity in items (>= 1).
        drop_oldest: when the queue is full, discard the oldest item (and count it) instead of waiting.
        name: thread name, for logs and debuggers.
        poll_s: how often blocked waits re-check the stop flag, in seconds.
    """

    def __init__(
        self,
        produce: Callable[[], Iterable[T]],
        *,
        maxsize: int = 16,
        drop_oldest: bool = False,
        name: str = "frame-reader",
        poll_s: float = 0.05,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize} — pass a positive queue size")
        self._produce = produce
        self._queue: queue.Queue[T | _EndOfStream] = queue.Queue(maxsize=maxsize)
        self._drop_oldest = drop_oldest
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._put_lock = threading.Lock()
        self._error: BaseException | None = None
        self._error_raised = False
        self._finished = False
        self.dropped = 0
        """Items discarded because the queue was full (drop-oldest mode only)."""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # ----------------------------------------------------------------------------------------------
    # lifecycle
    def start(self) -> None:
        """Start the producer thread (once)."""
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the producer thread is running."""
        return self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    @property
    def error(self) -> BaseException | None:
        """The exception the producer raised, if any."""
        return self._error

    def stop(self, join_timeout: float = 5.0) -> bool:
        """Ask the producer to stop, unblock it, and wait for the thread to end.

        Args:
            join_timeout: seconds to wait for the thread; a producer blocked inside a decoder call that
                cannot be interrupted may take longer, in which case it is left to finish on its own
                (it is a daemon thread and exits at its next check).

        Returns:
            True if the thread has ended (or was never started).
        """
        self._stop.set()
        self._drain()
        if self._thread.ident is None:
            return True
        if self._thread is not threading.current_thread():
            self._thread.join(join_timeout)
        ended = not self._thread.is_alive()
        if not ended:
            logger.warning("reader thread %s did not stop within %.1f s", self._thread.name, join_timeout)
        return ended

    # ----------------------------------------------------------------------------------------------
    # consumer side
    def get(self) -> T | _EndOfStream:
        """Next item, or :data:`END_OF_STREAM` when the producer is done or the reader was stopped.

        Raises:
            BaseException: whatever the producer raised, after the items queued before the failure.
        """
        while True:
            if self._stop.is_set():
                return END_OF_STREAM
            try:
                item = self._queue.get(timeout=self._poll_s)
            except queue.Empty:
                if self._finished or not self._thread.is_alive():
                    if self._queue.empty():
                        return self._end()
                continue
            if isinstance(item, _EndOfStream):
                return self._end()
            return item

    def _end(self) -> _EndOfStream:
        if self._error is not None and not self._error_raised:
            self._error_raised = True
            raise self._error
        return END_OF_STREAM

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    # ----------------------------------------------------------------------------------------------
    # producer side
    def _run(self) -> None:
        iterator = None
        try:
            iterator = iter(self._produce())
            for item in iterator:
                if self._stop.is_set() or not self._put(item):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, never swallowed
            logger.debug("reader thread %s failed: %r", self._thread.name, exc)
            self._error = exc
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()  # runs the producer's own cleanup (finally blocks) in this thread
                except BaseException as exc:  # noqa: BLE001
                    if self._error is None:
                        self._error = exc
            self._finished = True
            self._put_blocking(END_OF_STREAM)

    def _put(self, item: T) -> bool:
        """Queue one item under the full-queue policy; False if the reader was stopped meanwhile."""
        if not self._drop_oldest:
            return self._put_blocking(item)
        with self._put_lock:
            while not self._stop.is_set():
                try:
                    self._queue.put_nowait(item)
                    return True
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
        return False

    def _put_blocking(self, item: T | _EndOfStream) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=self._poll_s)
                return True
            except queue.Full:
                continue
        return False
