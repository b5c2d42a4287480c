"""Drain an ffmpeg process's stderr and read the stream header from it.

ffmpeg writes its log to stderr; if nobody reads it, the pipe fills and ffmpeg blocks. An
:class:`FFmpegLog` reads it in a daemon thread into a bounded deque (the last lines go into error
messages) and parses the header ffmpeg prints before it writes any frame::

    Input #0, mpegts, from 'http://...':
      Duration: N/A, start: 1.400000, bitrate: N/A
      Stream #0:0[0x100]: Video: h264 (...), yuv420p(progressive), 160x120, 10 fps, 10 tbr, 90k tbn
    Output #0, rawvideo, to 'pipe:':
      Stream #0:0: Video: rawvideo (RGB[24] / 0x18424752), rgb24(pc, ...), 80x60, ..., 2 fps, 2 tbn

The *output* stream line gives the exact size and rate of the raw frames on stdout (after scaling and
the fps filter), so no separate probe of the input is needed; :attr:`FFmpegLog.header_ready` is set
when it has been seen (or when stderr closes).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import IO

logger = logging.getLogger(__name__)

_SIZE = re.compile(r"(?:^|[\s,])(\d{1,5})x(\d{1,5})(?=[\s,\[]|$)")
_FPS = re.compile(r"(\d+(?:\.\d+)?)(k?) fps")
_TBR = re.compile(r"(\d+(?:\.\d+)?)(k?) tbr")
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")

_DIAGNOSES: tuple[tuple[str, str], ...] = (
    ("connection refused", "connection refused"),
    ("timed out", "connection timed out"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network unreachable"),
    ("name or service not known", "host name not found"),
    ("failed to resolve", "host name not found"),
    ("server returned 404", "server returned 404 Not Found"),
    ("server returned 401", "server returned 401 Unauthorized (credentials needed)"),
    ("server returned 403", "server returned 403 Forbidden"),
    ("no such file or directory", "no such file"),
    ("permission denied", "permission denied"),
    ("matches no streams", "no video stream"),
    ("does not contain any stream", "no video stream"),
    ("moov atom not found", "truncated or corrupt file (moov atom not found)"),
    ("invalid data found when processing input", "not a valid video or truncated/corrupt data"),
    ("end of file", "end of file"),
)


@dataclass(frozen=True)
class VideoStreamInfo:
    """Size and rate from one ``Stream #...: Video:`` header line (None where absent)."""

    width: int | None
    height: int | None
    fps: float | None


def parse_video_stream_line(line: str) -> VideoStreamInfo | None:
    """Parse a ``Stream #i:j...: Video: ...`` line; None for other lines.

    The frame rate is the ``fps`` value, else the ``tbr`` value. Hex codec tags such as
    ``0x18424752`` are not mistaken for sizes.
    """
    if "Stream #" not in line or "Video:" not in line:
        return None
    body = line.split("Video:", 1)[1]
    size = _SIZE.search(body)
    rate = _FPS.search(body) or _TBR.search(body)
    fps: float | None = None
    if rate is not None:
        fps = float(rate.group(1)) * (1000.0 if rate.group(2) else 1.0)
    return VideoStreamInfo(
        width=int(size.group(1)) if size else None,
        height=int(size.group(2)) if size else None,
        fps=fps if fps and fps > 0 else None,
    )


def diagnose(lines: list[str]) -> str | None:
    """A short plain-words reason for a failure from ffmpeg's log lines, or None if unrecognised."""
    text = "\n".join(lines).lower()
    for needle, reason in _DIAGNOSES:
        if needle in text:
            return reason
    return None


class FFmpegLog:
    """Reads ``stream`` (ffmpeg's stderr) in a daemon thread; keeps the last ``maxlen`` lines.

    Attributes:
        input_video: the first input video stream's header, once seen.
        output_video: the output video stream's header (the raw frames' size and rate), once seen.
        duration: the input duration in seconds, when ffmpeg reports one.
        header_ready: set once :attr:`output_video` is known or stderr has closed.
    """

    def __init__(self, stream: IO[bytes], *, maxlen: int = 200, name: str = "ffmpeg-stderr") -> None:
        self._stream = stream
        self._lines: deque[str] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._section = ""
        self.input_video: VideoStreamInfo | None = None
        self.output_video: VideoStreamInfo | None = None
        self.duration: float | None = None
        self.header_ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start draining."""
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for stderr to close (the process to exit)."""
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def lines(self) -> list[str]:
        """A snapshot of the retained lines, oldest first."""
        with self._lock:
            return list(self._lines)

    def tail(self, count: int = 3) -> str:
        """The last ``count`` non-empty lines joined with ``" | "`` (for one-line error messages)."""
        kept = [line.strip() for line in self.lines() if line.strip()]
        return " | ".join(kept[-count:])

    def feed(self, line: str) -> None:
        """Record and parse one log line (called by the drain thread; public for tests)."""
        with self._lock:
            self._lines.append(line)
        stripped = line.strip()
        if stripped.startswith("Input #"):
            self._section = "input"
        elif stripped.startswith("Output #"):
            self._section = "output"
        if self._section == "input" and self.duration is None:
            match = _DURATION.search(stripped)
            if match:
                hours, minutes, seconds = match.groups()
                self.duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        info = parse_video_stream_line(stripped)
        if info is None:
            return
        if self._section == "input" and self.input_video is None:
            self.input_video = info
        elif self._section == "output" and self.output_video is None:
            self.output_video = info
            self.header_ready.set()

    def _run(self) -> None:
        pending = b""
        read = getattr(self._stream, "read1", self._stream.read)
        try:
            while True:
                chunk = read(4096)
                if not chunk:
                    break
                pending += chunk
                parts = re.split(rb"[\r\n]", pending)
                pending = parts.pop()
                for part in parts:
                    if part:
                        self.feed(part.decode("utf-8", "replace"))
                if len(pending) > 65536:  # a runaway line: keep the log bounded
                    self.feed(pending.decode("utf-8", "replace"))
                    pending = b""
        except (OSError, ValueError) as exc:  # the pipe was closed under us
            logger.debug("ffmpeg stderr drain stopped: %r", exc)
        finally:
            if pending:
                self.feed(pending.decode("utf-8", "replace"))
            self.header_ready.set()
