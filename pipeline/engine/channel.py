"""The thread-safe output of one request: events pushed by the worker, read by sync or async consumers."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.engine.records import AnswerPiece


@dataclass(frozen=True)
class Event:
    """A piece of text, or the end (``error`` set when the request failed or was cancelled)."""

    piece: AnswerPiece | None = None
    end: bool = False
    error: BaseException | None = None


class OutputChannel:
    """Events of one request, in order; ``listeners`` are called (from the worker) after each push.

    The end event is sticky: once read, every later read returns it again, so a consumer that already
    iterated the answer can still wait for its result.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[Event] = queue.Queue()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self.closed = threading.Event()

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every future push (and once now if events are waiting)."""
        with self._lock:
            self._listeners.append(callback)
        if not self._queue.empty() or self.closed.is_set():
            callback()

    def push(self, event: Event) -> None:
        if self.closed.is_set():
            return
        self._queue.put(event)
        if event.end:
            self.closed.set()
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            try:
                callback()
            except RuntimeError:  # the consumer's event loop is gone: nobody is listening any more
                pass

    def get(self, timeout: float | None = None) -> Event:
        """Next event (raises :class:`queue.Empty` after ``timeout``)."""
        return self._kept_if_end(self._queue.get(timeout=timeout))

    def get_nowait(self) -> Event | None:
        try:
            return self._kept_if_end(self._queue.get_nowait())
        except queue.Empty:
            return None

    def _kept_if_end(self, event: Event) -> Event:
        if event.end:  # the last event: leave it for the next reader
            self._queue.put(event)
        return event
