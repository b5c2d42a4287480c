"""Capture what native libraries (libav inside decord, OpenCV) write straight to file descriptor 2.

Those lines bypass Python's ``sys.stderr`` and ``logging``, so a bad file would otherwise print
libav's own complaints above our one-line error. We redirect fd 2 to a temporary file for the
duration of a native call and hand the text to the caller, who logs it at DEBUG.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_LOCK = threading.Lock()  # fd 2 is process-wide: one redirection at a time


@dataclass
class NativeLog:
    """Text captured from fd 2 (filled when the ``with`` block ends)."""

    text: str = ""


@contextmanager
def captured_native_stderr() -> Iterator[NativeLog]:
    """Redirect fd 2 into a buffer while the block runs; ``log.text`` holds what was written."""
    log = NativeLog()
    with _LOCK, tempfile.TemporaryFile(mode="w+b") as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield log
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            log.text = sink.read().decode("utf-8", "replace").strip()
