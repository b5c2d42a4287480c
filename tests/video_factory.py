"""Real encoded test videos and a local live-stream server, made with the ffmpeg binary.

Importable by any test (``from tests.video_factory import ...`` or ``from video_factory import ...``
when ``tests/`` is on ``sys.path``). Everything is small and fast: a 4 s 160x120 H.264 clip encodes
in well under a second.

* :func:`make_test_video` - lavfi patterns (``testsrc2``, ``color=...``, ...).
* :func:`make_indexed_video` - numpy frames piped into ffmpeg; frame ``k`` is a flat grey whose level
  encodes ``k`` (left half ``k % 40``, right half ``k // 40``), so tests can tell from the pixels which
  source frame came out: :func:`frame_index`.
* :func:`make_audio_only`, :func:`make_text_as_video`, :func:`truncate_copy` - bad inputs.
* :class:`HttpStreamServer` - ``ffmpeg -re ... -f mpegts -listen 1 http://127.0.0.1:PORT/live.ts``,
  a one-client live HTTP stream that stops by itself (``-t`` bound, ``-listen_timeout``) and is killed
  by :meth:`HttpStreamServer.stop` / the context manager.
* :class:`SilentServer` - accepts TCP connections on 127.0.0.1 and never answers (a hung server).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import numpy as np

from pipeline.sources.ffmpeg_binary import ffmpeg_exe

INDEX_BASE = 4
"""Grey level of index 0."""
INDEX_STEP = 6
"""Grey levels between consecutive indices (codec error is ~2 levels)."""
INDEX_RANGE = 40
"""Distinct levels per half: indices up to ``INDEX_RANGE**2 - 1`` are encodable."""


def _run_ffmpeg(args: list[str], stdin: bytes | None = None) -> None:
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    if stdin is not None:
        command.remove("-nostdin")
    result = subprocess.run(command, input=stdin, capture_output=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {result.stderr.decode(errors='replace')}")


def _codec_args(codec: str, gop: int | None, faststart: bool) -> list[str]:
    args = ["-c:v", codec, "-pix_fmt", "yuv420p"]
    if codec == "libx264":
        args += ["-preset", "ultrafast"]
    if gop is not None:
        args += ["-g", str(gop)]
    if faststart:
        args += ["-movflags", "+faststart"]
    return args


def make_test_video(
    path: str | os.PathLike[str],
    seconds: float = 4.0,
    fps: float = 10,
    size: tuple[int, int] = (160, 120),
    codec: str = "libx264",
    pattern: str = "testsrc2",
    gop: int | None = None,
    faststart: bool = False,
) -> Path:
    """Encode ``seconds`` of the lavfi source ``pattern`` (e.g. ``testsrc2``, ``color=c=red``).

    Args:
        path: output file; the container follows the extension (.mp4, .mkv, .ts, ...).
        seconds: duration.
        fps: frame rate.
        size: ``(width, height)``, even numbers for yuv420p.
        codec: ffmpeg encoder name.
        pattern: lavfi source, optionally with its own options (``color=c=blue``).
        gop: keyframe interval in frames, or None for the encoder default.
        faststart: put the mp4 index first (needed to read an mp4 from a pipe).
    """
    out = Path(path)
    source = f"{pattern}{':' if '=' in pattern else '='}size={size[0]}x{size[1]}:rate={fps}"
    _run_ffmpeg(["-f", "lavfi", "-i", source, "-t", str(seconds), *_codec_args(codec, gop, faststart), str(out)])
    return out


def index_level(index: int) -> tuple[int, int]:
    """Grey levels ``(left, right)`` that encode frame ``index``."""
    if not 0 <= index < INDEX_RANGE**2:
        raise ValueError(f"index {index} is outside 0..{INDEX_RANGE**2 - 1}")
    return INDEX_BASE + INDEX_STEP * (index % INDEX_RANGE), INDEX_BASE + INDEX_STEP * (index // INDEX_RANGE)


def indexed_frame(index: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 RGB frame that encodes ``index``."""
    width, height = size
    left, right = index_level(index)
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:, : width // 2] = left
    frame[:, width // 2 :] = right
    return frame


def frame_index(rgb: np.ndarray) -> int:
    """Decode the index from a (possibly resized, lossy) frame made by :func:`make_indexed_video`."""
    height, width = rgb.shape[:2]
    rows = slice(height // 4, 3 * height // 4)
    left = float(rgb[rows, width // 8 : 3 * width // 8].mean())
    right = float(rgb[rows, 5 * width // 8 : 7 * width // 8].mean())
    low = round((left - INDEX_BASE) / INDEX_STEP)
    high = round((right - INDEX_BASE) / INDEX_STEP)
    return int(min(max(high, 0), INDEX_RANGE - 1) * INDEX_RANGE + min(max(low, 0), INDEX_RANGE - 1))


def make_indexed_video(
    path: str | os.PathLike[str],
    num_frames: int = 40,
    fps: float = 10,
    size: tuple[int, int] = (160, 120),
    codec: str = "libx264",
    gop: int | None = 10,
    faststart: bool = False,
) -> Path:
    """Encode ``num_frames`` frames where frame ``k`` shows :func:`indexed_frame` ``(k)``.

    Frames are generated with numpy and piped to ffmpeg as rawvideo, so frame ``k`` is at exactly
    ``k / fps`` seconds.
    """
    out = Path(path)
    width, height = size
    frames = np.stack([indexed_frame(k, size) for k in range(num_frames)])
    _run_ffmpeg(
        [
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:0",
            *_codec_args(codec, gop, faststart), str(out),
        ],
        stdin=frames.tobytes(),
    )  # fmt: skip
    return out


def make_audio_only(path: str | os.PathLike[str], seconds: float = 1.0) -> Path:
    """Encode a sine tone with no video stream (AAC; .m4a or .mp4)."""
    out = Path(path)
    _run_ffmpeg(["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", str(out)])
    return out


def make_text_as_video(path: str | os.PathLike[str]) -> Path:
    """A text file with a video extension."""
    out = Path(path)
    out.write_text("this is not a video\n" * 20)
    return out


def truncate_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str], fraction: float = 0.5) -> Path:
    """Copy the first ``fraction`` of ``src``'s bytes to ``dst`` (a truncated download)."""
    data = Path(src).read_bytes()
    out = Path(dst)
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_listening(port: int) -> bool | None:
    """Whether something listens on 127.0.0.1:``port``, read from ``/proc/net/tcp`` without connecting
    (a probe connection would use up a one-client server); None where ``/proc`` is unavailable."""
    try:
        table = Path("/proc/net/tcp").read_text()
    except OSError:
        return None
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1] in wanted and fields[3] == "0A":  # 0A = LISTEN
            return True
    return False


class HttpStreamServer:
    """A live MPEG-TS stream over HTTP from an ffmpeg process on 127.0.0.1 (one client).

    Args:
        video: file to stream (copied, not re-encoded; use a short GOP so joins are quick).
        duration: seconds of stream before ffmpeg stops by itself (``-t``).
        loop: loop the file (``-stream_loop -1``) until ``duration``.
        realtime: send at the native rate (``-re``), like a camera.
        listen_timeout: seconds ffmpeg waits for the client before exiting by itself.
    """

    def __init__(
        self,
        video: str | os.PathLike[str],
        duration: float = 10.0,
        loop: bool = True,
        realtime: bool = True,
        listen_timeout: float = 20.0,
    ) -> None:
        self.video = Path(video)
        self.duration = duration
        self.loop = loop
        self.realtime = realtime
        self.listen_timeout = listen_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/live.ts"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait_s: float = 5.0) -> HttpStreamServer:
        """Start ffmpeg and wait until it listens."""
        command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin"]
        if self.realtime:
            command.append("-re")
        if self.loop:
            command += ["-stream_loop", "-1"]
        command += [
            "-i", str(self.video), "-t", str(self.duration), "-c", "copy", "-f", "mpegts",
            "-listen", "1", "-listen_timeout", str(int(self.listen_timeout * 1000)), self.url,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            state = port_is_listening(self.port)
            if state is None:
                time.sleep(0.5)
                break
            if state:
                break
            if self.process.poll() is not None:
                raise RuntimeError(f"stream server exited with code {self.process.returncode}")
            time.sleep(0.02)
        else:
            self.stop()
            raise RuntimeError(f"stream server did not listen on {self.url} within {wait_s} s")
        return self

    def stop(self) -> None:
        """Kill the server (idempotent)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def __enter__(self) -> HttpStreamServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class SilentServer:
    """Listens on 127.0.0.1 and never answers: connections complete (kernel backlog), reads hang."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])

    def url(self, scheme: str = "http", path: str = "/live.ts") -> str:
        """A URL pointing at this server."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        """Stop listening."""
        self.sock.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
