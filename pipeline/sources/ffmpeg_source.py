"""Frames from anything ffmpeg reads (network URLs, stdin, files) through an ffmpeg subprocess pipe.

The command is built with ``ffmpeg-python`` and run with the executable from
:func:`~pipeline.sources.ffmpeg_binary.ffmpeg_exe`::

    ffmpeg [-ss START] [-t DURATION] [network timeouts] -i INPUT
           -filter_complex "[0:v:0]fps=fps=FPS:round=up,scale=W:H" -map ... -f rawvideo -pix_fmt rgb24 pipe:

and raw RGB frames of exactly ``W * H * 3`` bytes are read from its stdout in the reader thread.

**Output size without a probe.** Rather than probing the input first (``ffprobe`` is often missing,
the imageio-ffmpeg wheel ships none, and a second connection fails for stdin and for single-client
servers such as ``ffmpeg -listen 1``), the size and rate of the raw frames are read from the
``Output #0 ... Stream #0:0: Video: rawvideo ..., WxH, ... N fps`` header that the *same* ffmpeg
process prints on stderr before its first frame (:class:`~pipeline.sources.ffmpeg_log.FFmpegLog`).
``size`` becomes a ``scale`` filter; ``max_side`` becomes a ``scale`` filter with expressions that
shrink only, keep aspect ratio and make the other side even (ffmpeg's ``-2``).

**Timestamps (approximation).** ffmpeg's rawvideo output carries no timestamps. With ``fps`` set, an
``fps`` filter (``round=up``: for each sample time the latest frame at or before it) makes the output
constant-rate and frame ``k`` gets ``start + k / fps``. Without ``fps``, ffmpeg still writes rawvideo
at a constant rate (the stream's frame rate, duplicating or dropping frames of variable-rate input),
and frame ``k`` gets ``start + k / rate`` with ``rate`` from the output header. Timestamps are thus
media time on a constant-rate grid, not the packets' own presentation times.

**Failures.** Opening waits at most ``open_timeout`` seconds for the header (a watchdog kills ffmpeg
after that); network inputs also get ffmpeg's ``rw_timeout``/``timeout`` options so a dead or stalled
server makes ffmpeg itself give up. Errors are one-line :class:`~pipeline.errors.SourceError` s naming
the URL and quoting ffmpeg's last stderr lines. A network stream that dies after frames were read
ends the iteration with ``end_reason = "error: ..."``; a local file or stdin that fails raises.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from pipeline.sources.base import FrameSource, TimedImage
from pipeline.sources.ffmpeg_binary import ffmpeg_exe
from pipeline.sources.ffmpeg_log import FFmpegLog, diagnose
from pipeline.sources.messages import source_error
from pipeline.sources.sizing import check_size_args
from pipeline.sources.specs import check_video_path, is_network_url, is_stdin, url_scheme

logger = logging.getLogger(__name__)

_END_EPS = 1e-6
_FALLBACK_FPS = 25.0
# Protocols whose ``timeout`` option is a socket I/O timeout in microseconds (ffmpeg >= 5). RTMP is
# left out on purpose: there ``timeout`` means "listen for incoming connections".
_TIMEOUT_SCHEMES = ("rtsp", "rtsps", "http", "https", "tcp", "udp", "srt")


class FFmpegSource(FrameSource):
    """Frames decoded by an ffmpeg subprocess from a URL, ``-`` (stdin) or a file.

    Args:
        url_or_path: network URL (``rtsp://``, ``rtmp://``, ``http(s)://``, ``udp://``, ``tcp://``,
            ``srt://``, ...), ``-`` for stdin, or a local path.
        fps: target rate (ffmpeg ``fps`` filter), or None for the stream's own rate.
        start: seconds to skip at the start (input ``-ss``), or None.
        end: clip end in seconds (inclusive), or None.
        size: exact output ``(width, height)``, or None.
        max_side: shrink so the longer side is at most this (aspect kept, even sizes), or None.
        realtime: release frames on the wall clock (useful for files; streams are real time anyway).
        open_timeout: seconds to wait for the first video header before giving up.
        live: drop the oldest queued frame when the consumer is slow; default: True for network URLs,
            False for files and stdin (which then block instead, losing nothing).
        input_options: extra ffmpeg input options (e.g. ``{"rtsp_transport": "tcp"}``), overriding
            the defaults.
        queue_size: frame queue capacity; default 4 for live inputs, 16 otherwise.

    ``frames_read`` counts the raw frames ffmpeg wrote (after its ``fps`` filter).

    Raises:
        SourceError: the input cannot be opened or has no video, within ``open_timeout`` seconds.
    """

    kind = "ffmpeg"

    def __init__(
        self,
        url_or_path: str | os.PathLike[str],
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
        size: tuple[int, int] | None = None,
        max_side: int | None = None,
        realtime: bool = False,
        open_timeout: float = 10.0,
        *,
        live: bool | None = None,
        input_options: dict[str, Any] | None = None,
        queue_size: int | None = None,
    ) -> None:
        spec = os.fspath(url_or_path)
        self.is_network = is_network_url(spec)
        self.is_stdin = is_stdin(spec)
        live = self.is_network if live is None else bool(live)
        super().__init__(
            spec,
            fps=fps,
            start=start,
            end=end,
            realtime=realtime,
            queue_size=queue_size if queue_size is not None else (4 if live else 16),
            drop_oldest=live,
        )
        check_size_args(spec, size, max_side)
        if not isinstance(open_timeout, int | float) or open_timeout <= 0:
            raise source_error(f"invalid open_timeout={open_timeout!r} for {spec}", "pass a positive number of seconds")
        if not self.is_network and not self.is_stdin and url_scheme(spec) is None:
            check_video_path(spec)
        self.size_arg = size
        self.max_side = max_side
        self.open_timeout = float(open_timeout)
        self.input_options = dict(input_options or {})
        self.command: list[str] = []
        self.width = 0
        self.height = 0
        self.rate = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: FFmpegLog | None = None
        self._open()

    # ----------------------------------------------------------------------------------------------
    # opening
    def _build(self) -> Any:
        try:
            import ffmpeg  # ffmpeg-python
        except ImportError as exc:
            raise source_error(
                "ffmpeg-python is not installed, so URLs and stdin cannot be read",
                "`pip install ffmpeg-python` (the package, not `ffmpeg`)",
            ) from exc

        options: dict[str, Any] = {}
        if self.start is not None and self.start > 0:
            options["ss"] = self.start
        if self.end is not None:
            # Let ffmpeg stop by itself a little after the clip; the exact cut happens in _read.
            options["t"] = self.end - (self.start or 0.0) + 1.0
        if self.is_network:
            micros = int(self.open_timeout * 1_000_000)
            options["rw_timeout"] = micros
            if url_scheme(self.spec) in _TIMEOUT_SCHEMES:
                options["timeout"] = micros
            options["analyzeduration"] = 1_000_000  # start live streams within ~1 s of media
        options.update(self.input_options)
        name = "pipe:0" if self.is_stdin else self.spec
        video = ffmpeg.input(name, **options)["v:0"]
        if self.fps is not None:
            video = video.filter("fps", fps=self.fps, round="up")
        if self.size_arg is not None:
            video = video.filter("scale", self.size_arg[0], self.size_arg[1])
        elif self.max_side is not None:
            longer = max(2, self.max_side - self.max_side % 2)
            video = video.filter(
                "scale",
                w=f"if(gte(iw,ih),min(iw,{longer}),-2)",
                h=f"if(gte(iw,ih),-2,min(ih,{longer}))",
            )
        extra = ["-hide_banner", "-nostats", "-loglevel", "info"]
        if not self.is_stdin:
            extra.append("-nostdin")
        return video.output("pipe:", format="rawvideo", pix_fmt="rgb24").global_args(*extra)

    def _open(self) -> None:
        exe = ffmpeg_exe()
        stream = self._build()
        self.command = list(stream.compile(cmd=exe))
        logger.debug("starting %s", " ".join(self.command))
        try:
            process: subprocess.Popen[bytes] = stream.run_async(cmd=exe, pipe_stdout=True, pipe_stderr=True)
        except OSError as exc:
            raise source_error(
                f"cannot start ffmpeg ({exe}) for {self.spec}: {exc}",
                "install a working ffmpeg (apt install ffmpeg) or `pip install imageio-ffmpeg`",
            ) from exc
        self._process = process
        assert process.stderr is not None
        self._log = log = FFmpegLog(process.stderr, name=f"ffmpeg-stderr-{process.pid}")
        log.start()
        deadline = time.monotonic() + self.open_timeout
        while not log.header_ready.wait(0.05):
            if process.poll() is not None:
                log.join(1.0)
                break
            if time.monotonic() > deadline:
                self._release(reader_stopped=True)
                raise source_error(
                    f"no video from {self.spec} within open_timeout={self.open_timeout:g} s"
                    + (f" (ffmpeg: {log.tail()})" if log.tail() else ""),
                    "check that the stream is live and reachable from this machine, or raise open_timeout",
                )
        header = log.output_video
        if header is None or not header.width or not header.height:
            self._release(reader_stopped=True)
            raise self._open_error()
        self.width, self.height = header.width, header.height
        if self.fps is not None:
            self.rate = self.fps
        else:
            native = log.input_video.fps if log.input_video else None
            self.rate = header.fps or native or _FALLBACK_FPS
            if not (header.fps or native):
                logger.warning("%s reports no frame rate; timestamps assume %g fps", self.spec, _FALLBACK_FPS)
        logger.info("opened %s with ffmpeg: %dx%d at %g fps", self.spec, self.width, self.height, self.rate)

    def _open_error(self) -> Exception:
        assert self._log is not None
        lines = self._log.lines()
        reason = diagnose(lines)
        tail = self._log.tail()
        said = f" (ffmpeg: {tail})" if tail else ""
        if reason == "no video stream":
            return source_error(
                f"{self.spec} has no video stream{said}",
                "pass a file or stream that contains video (audio-only inputs cannot be watched)",
            )
        if self.is_network:
            return source_error(
                f"cannot open stream {self.spec}: {reason or 'ffmpeg failed'}{said}",
                "check the URL is correct and the server is running and reachable from this machine",
            )
        if self.is_stdin:
            return source_error(
                f"cannot read a video from stdin: {reason or 'ffmpeg failed'}{said}",
                "pipe an encoded stream ffmpeg can read without seeking (e.g. mpegts, or mp4 with "
                "-movflags +faststart)",
            )
        return source_error(
            f"cannot decode {self.spec}: {reason or 'ffmpeg failed'}{said}",
            "check the file is a complete video (re-download it, or re-encode it with "
            "`ffmpeg -i IN -c:v libx264 OUT.mp4`)",
        )

    # ----------------------------------------------------------------------------------------------
    # reading (reader thread)
    def _read(self) -> Iterator[TimedImage]:
        process, log = self._process, self._log
        assert process is not None and process.stdout is not None and log is not None
        frame_bytes = self.width * self.height * 3
        base = self.start or 0.0
        index = 0
        while not self.stopping:
            buffer = bytearray(frame_bytes)
            got = _read_exact(process.stdout, buffer)
            if got < frame_bytes:
                if got and not self.stopping:
                    logger.debug("%s: dropped a partial frame of %d bytes at EOF", self.spec, got)
                break
            self.frames_read += 1
            timestamp = base + index / self.rate
            index += 1
            if self.end is not None and timestamp > self.end + _END_EPS:
                self._set_end("end of stream")
                return
            rgb = np.frombuffer(buffer, dtype=np.uint8).reshape(self.height, self.width, 3)
            yield timestamp, rgb
        if not self.stopping:
            self._after_eof()

    def _after_eof(self) -> None:
        process, log = self._process, self._log
        assert process is not None and log is not None
        try:
            code = process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self._stop_process()
            code = process.returncode
        log.join(1.0)
        if self.stopping or code == 0:
            self._warn_if_short()
            self._set_end("end of stream")
            return
        reason = diagnose(log.lines()) or f"ffmpeg exited with code {code}"
        tail = log.tail()
        problem = f"{self.spec}: {reason} after {self.frames_read} frames" + (f" (ffmpeg: {tail})" if tail else "")
        if self.drop_oldest and self.frames_read > 0:
            logger.warning("stream ended with an error: %s", problem)
            self._set_end(f"error: {problem}")
            return
        raise source_error(
            f"reading {problem}",
            "check the input is complete and readable (for a stream: that the server is still up)",
        )

    def _warn_if_short(self) -> None:
        """ffmpeg exits 0 on a file cut short after its index; say so when far less than its duration
        came out (a truncated download), since the iteration itself ends normally."""
        duration = self._log.duration if self._log else None
        if self.drop_oldest or self.stopping or not duration or self.end is not None:
            return
        covered = (self.start or 0.0) + self.frames_read / self.rate
        if covered < duration - 1.0:
            logger.warning(
                "%s ended at %.2f s of its %.2f s duration; the file may be truncated", self.spec, covered, duration
            )

    # ----------------------------------------------------------------------------------------------
    # lifecycle
    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The ffmpeg subprocess (for inspection; :meth:`close` ends it)."""
        return self._process

    def _stop_process(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            process.kill()
            try:
                process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                logger.warning("ffmpeg (pid %d) did not exit after SIGKILL", process.pid)

    def __del__(self) -> None:
        # Last resort for a source that was never closed: do not leave an ffmpeg process behind.
        process = getattr(self, "_process", None)
        if process is not None and process.poll() is None:
            process.kill()

    def _interrupt(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()

    def _release(self, reader_stopped: bool) -> None:
        process = self._process
        if process is None:
            return
        # Close our end of stdout first: an ffmpeg blocked writing a full pipe does not act on
        # SIGTERM, but gets EPIPE at once. (Only once the reader thread no longer reads from it.)
        if reader_stopped:
            _close_quietly(process.stdout)
        self._stop_process()
        if self._log is not None:
            self._log.join(1.0)
        _close_quietly(process.stderr)

    def _describe(self) -> dict[str, Any]:
        log = self._log
        native = log.input_video if log else None
        return {
            "native_fps": native.fps if native else None,
            "duration": log.duration if log else None,
            "native_size": (native.width, native.height) if native and native.width else None,
            "size": (self.width, self.height) if self.width else None,
            "output_fps": self.rate or None,
            "live": self.drop_oldest,
            "command": list(self.command),
        }


def _read_exact(stream: IO[bytes], buffer: bytearray) -> int:
    """Fill ``buffer`` from ``stream``; returns the bytes read (short only at EOF or on close)."""
    view = memoryview(buffer)
    got = 0
    while got < len(buffer):
        try:
            count = stream.readinto(view[got:])  # type: ignore[attr-defined]
        except (OSError, ValueError):  # closed under us by close()
            break
        if not count:
            break
        got += count
    return got


def _close_quietly(pipe: IO[bytes] | None) -> None:
    if pipe is None:
        return
    try:
        pipe.close()
    except OSError:
        pass
