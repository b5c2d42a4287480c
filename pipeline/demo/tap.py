"""A frame source wrapper that shows every frame to a callback on its way to the engine, and can
hold frames back while ingest is paused.

The demo keeps thumbnails of what the model saw; the engine only keeps KV tensors. Wrapping the
source (rather than reading it twice) means the thumbnails are exactly the frames that were captured.
The engine has no pause verb: holding the next frame back pauses capture (a live source then drops
frames in its own queue and counts them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from pipeline.frames import Frame
from pipeline.sources.base import FrameSource

logger = logging.getLogger(__name__)


class TappedSource:
    """Iterates ``source`` and calls ``on_frame(frame)`` for each frame; everything else is ``source``'s.

    ``close``, ``end_reason``, ``frames_dropped``, ``describe`` ... are delegated, so the wrapper is
    used wherever a :class:`FrameSource` is. A failing callback is logged and never stops the stream.
    """

    def __init__(self, source: FrameSource, on_frame: Callable[[Frame], None]) -> None:
        self.source = source
        self.on_frame = on_frame
        self._running = threading.Event()
        self._running.set()
        self._closed = False

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def set_paused(self, paused: bool) -> None:
        """Hold the next frame back until resumed (``close`` also releases it)."""
        if paused:
            self._running.clear()
        else:
            self._running.set()

    def close(self) -> None:
        self._closed = True
        self._running.set()
        self.source.close()

    def __iter__(self) -> TappedSource:
        return self

    def __next__(self) -> Frame:
        while not self._running.wait(0.1):
            pass
        if self._closed:
            raise StopIteration
        frame = next(self.source)
        try:
            self.on_frame(frame)
        except Exception:  # noqa: BLE001 - a display helper must not end the stream
            logger.warning("frame callback failed", exc_info=True)
        return frame

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)

    def __enter__(self) -> TappedSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
