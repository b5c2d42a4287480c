"""Frames from a webcam or a network stream through OpenCV's ``cv2.VideoCapture``.

A camera index opens the default capture backend (V4L2 on Linux); a URL or path opens OpenCV's
FFmpeg backend with open/read timeouts, so a dead URL fails within ``open_timeout`` and a stalled one
stops a read within ``read_timeout``.

Timestamps: seconds since the first frame. The capture's ``CAP_PROP_POS_MSEC`` (the stream's own
presentation time) is used while it is meaningful, i.e. strictly increasing from frame to frame;
otherwise (most webcams, or a stream whose clock jumps) the monotonic wall clock since the first
frame is used from then on. Timestamps never decrease.

This is a live source: when the consumer is slow, the oldest queued frame is dropped and counted.
``cap.read()`` failing after frames were read ends the iteration: for a file that is the end of the
stream; for a camera or URL it is recorded as ``end_reason = "error: ..."`` (OpenCV cannot tell a
finished stream from a lost connection).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from pipeline.sources.base import FrameSource, TimedImage
from pipeline.sources.messages import one_line, source_error
from pipeline.sources.sampling import FpsSampler
from pipeline.sources.sizing import check_size_args, fit_size
from pipeline.sources.specs import camera_index, check_video_path, url_scheme

logger = logging.getLogger(__name__)


class LiveSource(FrameSource):
    """Frames from an OpenCV capture (webcam index, RTSP/HTTP URL, or any path OpenCV's FFmpeg reads).

    Args:
        spec: camera index (``0``, ``"0"``) or URL/path.
        fps: target rate in frames per second, or None for every frame.
        size: exact output ``(width, height)``, or None.
        max_side: shrink so the longer side is at most this (aspect kept, even sizes), or None.
        start: skip frames before this many seconds since the first frame, or None.
        end: stop after this many seconds since the first frame (inclusive), or None.
        open_timeout: seconds OpenCV may take to open a URL.
        read_timeout: seconds one read of a URL may block.
        queue_size: frame queue capacity; the oldest frame is dropped when it is full.

    Raises:
        SourceError: the camera or stream cannot be opened.
    """

    kind = "live"

    def __init__(
        self,
        spec: int | str | os.PathLike[str],
        fps: float | None = None,
        size: tuple[int, int] | None = None,
        max_side: int | None = None,
        *,
        start: float | None = None,
        end: float | None = None,
        open_timeout: float = 10.0,
        read_timeout: float = 10.0,
        queue_size: int = 4,
    ) -> None:
        index = camera_index(spec)
        text = str(index) if index is not None else os.fspath(spec)  # type: ignore[arg-type]
        super().__init__(text, fps=fps, start=start, end=end, queue_size=queue_size, drop_oldest=True)
        check_size_args(text, size, max_side)
        self.camera = index
        self.size_arg = size
        self.max_side = max_side
        self.open_timeout = float(open_timeout)
        self.read_timeout = float(read_timeout)
        self.is_file = index is None and url_scheme(text) is None
        if self.is_file:
            check_video_path(text)
        self._capture: Any = self._open_capture()
        self.native_fps, self.native_size = self._probe()
        self.size: tuple[int, int] | None = (
            fit_size(*self.native_size, size=size, max_side=max_side) if self.native_size else size
        )

    # ----------------------------------------------------------------------------------------------
    # opening
    @property
    def _what(self) -> str:
        if self.camera is not None:
            return f"camera {self.camera}"
        return f"video file {self.spec}" if self.is_file else f"stream {self.spec}"

    def _open_capture(self) -> Any:
        try:
            import cv2
        except ImportError as exc:
            raise source_error(
                "OpenCV is not installed, so cameras cannot be read",
                "`pip install opencv-python-headless`",
            ) from exc
        try:
            if self.camera is not None:
                capture = cv2.VideoCapture(self.camera)
            else:
                params = [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    int(self.open_timeout * 1000),
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    int(self.read_timeout * 1000),
                ]
                capture = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, params)
        except cv2.error as exc:
            raise self._open_error(one_line(exc, 160)) from exc
        if not capture.isOpened():
            capture.release()
            raise self._open_error(None)
        return capture

    def _open_error(self, detail: str | None) -> Exception:
        said = f" ({detail})" if detail else ""
        if self.camera is not None:
            return source_error(
                f"cannot open camera {self.camera}{said}",
                "check the device is connected and not in use (ls /dev/video*), and that this "
                "process may access it; try another index",
            )
        if self.is_file:
            return source_error(
                f"OpenCV cannot open the video file {self.spec}{said} (no video stream, or not a video)",
                "check the file plays, or use backend='auto' (decord) or 'ffmpeg' for a precise diagnosis",
            )
        return source_error(
            f"cannot open stream URL {self.spec}{said}",
            "check the device/URL is reachable from this machine and the stream is live "
            "(or use backend='ffmpeg' for ffmpeg's diagnostics)",
        )

    def _probe(self) -> tuple[float | None, tuple[int, int] | None]:
        import cv2

        fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        native_fps = fps if 0 < fps < 1000 else None
        return native_fps, ((width, height) if width > 0 and height > 0 else None)

    # ----------------------------------------------------------------------------------------------
    # reading (reader thread)
    def _read(self) -> Iterator[TimedImage]:
        import cv2

        capture = self._capture
        sampler = FpsSampler(fps=self.fps, start=self.start, end=self.end)
        clock = _StreamClock()
        try:
            while not self.stopping:
                try:
                    ok, bgr = capture.read()
                except cv2.error as exc:
                    ok, bgr = False, None
                    logger.warning("%s: read failed: %s", self._what, one_line(exc))
                if not ok or bgr is None:
                    self._on_read_failure()
                    return
                self.frames_read += 1
                timestamp = clock.timestamp(float(capture.get(cv2.CAP_PROP_POS_MSEC) or 0.0))
                if sampler.past_end(timestamp):
                    self._set_end("end of stream")
                    return
                if not sampler.keep(timestamp):
                    continue
                yield timestamp, self._to_rgb(bgr)
        finally:
            capture.release()

    def _on_read_failure(self) -> None:
        if self.stopping:
            return
        if self.frames_read == 0:
            raise source_error(
                f"{self._what} opened but delivered no frame",
                "check the device/stream actually sends video (and is not used by another program)",
            )
        if self.is_file:
            self._set_end("end of stream")
            return
        reason = (
            f"{self._what} stopped delivering frames after {self.frames_read} frames (stream ended or connection lost)"
        )
        logger.warning(reason)
        self._set_end(f"error: {reason}")

    def _to_rgb(self, bgr: np.ndarray) -> np.ndarray:
        import cv2

        height, width = bgr.shape[:2]
        if self.size is None:
            self.size = fit_size(width, height, size=self.size_arg, max_side=self.max_side)
        if (width, height) != self.size:
            shrink = self.size[0] * self.size[1] < width * height
            bgr = cv2.resize(bgr, self.size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    # ----------------------------------------------------------------------------------------------
    # lifecycle
    def _release(self, reader_stopped: bool) -> None:
        # While the reader thread runs it owns the capture (and releases it itself); releasing it
        # here concurrently with a read() would be unsafe.
        if reader_stopped and self._capture is not None:
            self._capture.release()

    def _describe(self) -> dict[str, Any]:
        return {
            "native_fps": self.native_fps,
            "duration": None,
            "native_size": self.native_size,
            "size": self.size,
            "camera": self.camera,
        }


class _StreamClock:
    """Seconds since the first frame, from the stream's position while it increases, else from the
    monotonic clock (for good once the position stops being meaningful)."""

    def __init__(self) -> None:
        self._first_pos: float | None = None
        self._last_pos: float | None = None
        self._wall0: float | None = None
        self._use_wall = False
        self._last = 0.0

    def timestamp(self, pos_msec: float) -> float:
        now = time.monotonic()
        if self._wall0 is None:
            self._wall0 = now
            self._first_pos = self._last_pos = pos_msec
            return 0.0
        if not self._use_wall and self._last_pos is not None and pos_msec > self._last_pos:
            self._last_pos = pos_msec
            value = (pos_msec - (self._first_pos or 0.0)) / 1000.0
        else:
            if not self._use_wall:
                logger.debug("stream position is not increasing; using the wall clock")
            self._use_wall = True
            value = now - self._wall0
        self._last = max(self._last, value)
        return self._last
