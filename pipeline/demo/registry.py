"""Which stream belongs to which browser session, so that each tab has its own stream and memory.

Gradio identifies a browser tab by its ``session_hash``; the app asks the registry for that tab's
stream, replaces it on reset or a new source, and releases it when the tab closes
(``Blocks.unload``). The registry bounds how many streams live at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from pipeline.errors import UserInputError

logger = logging.getLogger(__name__)


class Closable(Protocol):
    def close(self) -> None: ...


StreamT = TypeVar("StreamT", bound=Closable)


class SessionRegistry(Generic[StreamT]):
    """Thread-safe ``browser session -> stream`` map.

    Args:
        max_streams: most streams open at once; opening one more raises :class:`UserInputError`
            (shown to that user) instead of starving everyone's memory.
    """

    def __init__(self, max_streams: int = 4) -> None:
        self.max_streams = max_streams
        self._streams: dict[str, StreamT] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._streams)

    def get(self, key: str) -> StreamT | None:
        """The stream of browser session ``key``, or None."""
        with self._lock:
            return self._streams.get(key)

    def open(self, key: str, factory: Callable[[], StreamT]) -> StreamT:
        """Close ``key``'s current stream (if any) and store a new one made by ``factory``."""
        self.release(key)
        with self._lock:
            if len(self._streams) >= self.max_streams:
                raise UserInputError(
                    f"the demo already serves {self.max_streams} streams (its limit): try again when one "
                    "closes, or start the app with a larger --max-streams"
                )
            self._streams[key] = placeholder = _Opening()  # type: ignore[assignment]
        try:
            stream = factory()
        except BaseException:
            with self._lock:
                if self._streams.get(key) is placeholder:
                    del self._streams[key]
            raise
        with self._lock:
            self._streams[key] = stream
        logger.info("session %s opened a stream (%d open)", key[:8], len(self._streams))
        return stream

    def release(self, key: str) -> None:
        """Close and forget ``key``'s stream (no-op if it has none)."""
        with self._lock:
            stream = self._streams.pop(key, None)
        if stream is not None and not isinstance(stream, _Opening):
            stream.close()
            logger.info("session %s released its stream (%d open)", key[:8], len(self._streams))

    def close_all(self) -> None:
        """Release every stream (app shutdown)."""
        with self._lock:
            keys = list(self._streams)
        for key in keys:
            self.release(key)


class _Opening:
    """Holds a slot while a stream is being opened (opening a URL may take seconds)."""

    def close(self) -> None:
        return None
