"""Wall-clock pacing, so a recorded video can stand in for a live camera (``realtime=True``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RealtimePacer:
    """Delays frames so the frame at media time ``t`` is released no earlier than ``t - t0`` seconds
    after the first frame (``t0`` = the first frame's timestamp).

    The pacer never speeds up: if the consumer is late, frames are released at once.

    Args:
        clock: monotonic clock in seconds (injectable for tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._media_t0: float | None = None
        self._wall_t0 = 0.0

    def wait(self, timestamp: float, stop: threading.Event | None = None) -> None:
        """Block until the frame at ``timestamp`` is due; returns early if ``stop`` is set.

        Args:
            timestamp: the frame's media time in seconds.
            stop: an event that cuts the wait short (e.g. the source was closed).
        """
        if self._media_t0 is None:
            self._media_t0 = timestamp
            self._wall_t0 = self._clock()
            return
        delay = self._wall_t0 + (timestamp - self._media_t0) - self._clock()
        if delay <= 0:
            return
        if stop is not None:
            stop.wait(delay)
        else:
            time.sleep(delay)
