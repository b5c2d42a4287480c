"""Frames from a local video file with decord (random access, resize at decode time).

Opening reads the container index: frame count, average fps and every frame's presentation time
(``VideoReader.get_frame_timestamp``). The kept frame indices are computed up front with
:func:`~pipeline.sources.sampling.select_indices`, and the reader thread decodes them in batches with
``VideoReader.get_batch`` (decord seeks to the nearest keyframe, so sparse sampling of a long video
only decodes what it needs). Resizing is done by decord's decoder (``width``/``height``), not
afterwards in Python.

Timestamps are seconds since the first frame (the container's start offset, if any, is removed).
If the container's timestamps are unusable (not finite or decreasing), ``index / avg_fps`` is used.
File sources never drop frames: a slow consumer blocks the reader.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from pipeline.errors import SourceError
from pipeline.sources.base import FrameSource, TimedImage
from pipeline.sources.messages import one_line, source_error
from pipeline.sources.native_stderr import captured_native_stderr
from pipeline.sources.sampling import select_indices
from pipeline.sources.sizing import SizeRule, check_size_args, fit_size
from pipeline.sources.specs import check_video_path

logger = logging.getLogger(__name__)

_BATCH_BYTES = 64 * 1024 * 1024
_MAX_BATCH = 32


class FileSource(FrameSource):
    """Frames of a local video file, decoded by decord in a background thread.

    Args:
        path: the video file.
        fps: target rate in frames per second, or None for every frame.
        start: clip start in seconds (inclusive), or None for the beginning.
        end: clip end in seconds (inclusive), or None for the end of the file.
        size: exact output ``(width, height)``, a function of the native ``(width, height)`` that
            returns one, or None.
        max_side: shrink so the longer side is at most this (aspect kept, even sizes), or None.
        realtime: release frames on the wall clock, simulating a live camera.
        queue_size: frame queue capacity (the reader blocks when it is full).
        batch_size: frames per ``get_batch`` call; default: up to 32, capped at ~64 MB per batch.
        num_threads: decord decoding threads (0 = automatic).

    Raises:
        SourceError: missing file, directory, empty/truncated/corrupt file, no video stream, or bad
            ``fps``/``start``/``end``/``size``/``max_side``.
    """

    kind = "file"

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
        size: SizeRule | None = None,
        max_side: int | None = None,
        realtime: bool = False,
        *,
        queue_size: int = 16,
        batch_size: int | None = None,
        num_threads: int = 0,
    ) -> None:
        spec = os.fspath(path)
        super().__init__(spec, fps=fps, start=start, end=end, realtime=realtime, queue_size=queue_size)
        check_size_args(spec, size, max_side)
        check_video_path(spec)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise source_error(f"invalid batch_size={batch_size!r} for {spec}", "pass a positive integer")
        self.path = spec
        self._num_threads = num_threads
        reader = self._open_reader(-1, -1)
        self.num_frames = len(reader)
        self.native_fps = _finite_or_none(reader.get_avg_fps())
        first = self._decode(reader, [0])
        self.native_size = (int(first.shape[2]), int(first.shape[1]))
        if callable(size):
            size = tuple(size(*self.native_size))
            check_size_args(spec, size, None)
        self.size = fit_size(*self.native_size, size=size, max_side=max_side)
        self.timestamps, self.duration = self._timeline(reader)
        if self.start is not None and self.start >= self.duration:
            raise source_error(
                f"start={self.start:g} s is at or past the end of {spec} (duration {self.duration:.3f} s)",
                f"pass a start below {self.duration:.3f} s, or start=None",
            )
        if self.size != self.native_size:
            reader = self._open_reader(self.size[0], self.size[1])
        self._reader_handle: Any = reader
        self.indices = select_indices(self.timestamps, self.fps, self.start, self.end)
        frame_bytes = self.size[0] * self.size[1] * 3
        self.batch_size = batch_size or max(1, min(_MAX_BATCH, _BATCH_BYTES // max(1, frame_bytes)))
        logger.info(
            "opened %s: %d frames, %.3f s, %s fps, %dx%d -> %dx%d, %d frames selected",
            spec,
            self.num_frames,
            self.duration,
            self.native_fps,
            *self.native_size,
            *self.size,
            len(self.indices),
        )

    # ----------------------------------------------------------------------------------------------
    # opening
    def _open_reader(self, width: int, height: int) -> Any:
        try:
            import decord
        except ImportError as exc:
            raise source_error(
                "decord is not installed, so local files cannot be decoded with backend='decord'",
                "`pip install decord`, or open the file with backend='ffmpeg'",
            ) from exc
        try:
            with captured_native_stderr() as native_log:  # keep libav's and decord's own lines off the terminal
                return decord.VideoReader(
                    self.path, ctx=decord.cpu(0), width=width, height=height, num_threads=self._num_threads
                )
        except Exception as exc:  # decord raises DECORDError, RuntimeError or AssertionError
            logger.debug("decord/libav said while opening %s: %s", self.path, native_log.text)
            raise self._open_error(exc) from exc

    def _open_error(self, exc: BaseException) -> SourceError:
        text = str(exc).lower()
        if "cannot find video stream" in text or "invalid frame count" in text:
            return source_error(
                f"{self.path} has no video stream (audio-only or not a video file)",
                "pass a file that contains a video track",
            )
        return source_error(
            f"cannot open {self.path}: not a valid video, or the file is truncated or corrupt "
            f"(decord: {one_line(exc, 160)})",
            "check the file plays, re-download it, or re-encode it with `ffmpeg -i IN -c:v libx264 OUT.mp4`",
        )

    def _decode(self, reader: Any, indices: list[int]) -> np.ndarray:
        """Decode ``indices`` into a ``(N, H, W, 3)`` uint8 array; SourceError on failure."""
        try:
            batch = reader.get_batch(indices)
        except Exception as exc:  # DECORDError / RuntimeError from the decoder
            raise source_error(
                f"cannot decode frames {indices[0]}..{indices[-1]} of {self.path}: the file is "
                f"truncated or corrupt (decord: {one_line(exc, 160)})",
                "re-download the file or re-encode it with `ffmpeg -i IN -c:v libx264 OUT.mp4`",
            ) from exc
        array = batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)
        return np.asarray(array, dtype=np.uint8)

    def _timeline(self, reader: Any) -> tuple[list[float], float]:
        """Per-frame timestamps (seconds since the first frame) and the duration in seconds."""
        count = self.num_frames
        fallback_step = 1.0 / self.native_fps if self.native_fps else None
        try:
            table = np.asarray(reader.get_frame_timestamp(list(range(count))), dtype=np.float64)
            starts, ends = table[:, 0], table[:, 1]
            usable = bool(np.all(np.isfinite(table)) and np.all(np.diff(starts) >= 0))
        except Exception as exc:  # noqa: BLE001 - fall back to the average rate below
            logger.debug("no frame timestamps for %s: %r", self.path, exc)
            usable = False
        if usable:
            origin = float(starts[0])
            timestamps = [float(t) - origin for t in starts]
            duration = float(max(ends[-1], starts[-1])) - origin
        elif fallback_step is not None:
            logger.warning("%s has unusable timestamps; using index / %g fps", self.path, self.native_fps)
            timestamps = [i * fallback_step for i in range(count)]
            duration = count * fallback_step
        else:
            raise source_error(
                f"{self.path} has neither frame timestamps nor a frame rate",
                "re-encode it with `ffmpeg -i IN -c:v libx264 -r 30 OUT.mp4`",
            )
        if duration <= timestamps[-1]:
            duration = timestamps[-1] + (fallback_step or 0.0)
        return timestamps, duration

    # ----------------------------------------------------------------------------------------------
    # reading (reader thread)
    def _read(self) -> Iterator[TimedImage]:
        reader = self._reader_handle
        for begin in range(0, len(self.indices), self.batch_size):
            if self.stopping:
                return
            chunk = self.indices[begin : begin + self.batch_size]
            frames = self._decode(reader, chunk)
            self.frames_read += len(chunk)
            for offset, index in enumerate(chunk):
                yield self.timestamps[index], frames[offset]

    def _release(self, reader_stopped: bool) -> None:
        if reader_stopped:
            self._reader_handle = None  # decord frees the decoder when the reader is collected

    def skip_through(self, timestamp: float) -> int:
        """Drop the selected frames at or before ``timestamp`` seconds, before iterating (no decoding).

        Used to continue a resumed session on the same video; returns how many were dropped.
        """
        if self._frame_iter is not None:
            raise RuntimeError("skip_through must be called before the source is iterated")
        kept = [index for index in self.indices if self.timestamps[index] > timestamp]
        dropped, self.indices = len(self.indices) - len(kept), kept
        return dropped

    def _describe(self) -> dict[str, Any]:
        return {
            "native_fps": self.native_fps,
            "duration": self.duration,
            "num_frames": self.num_frames,
            "native_size": self.native_size,
            "size": self.size,
            "frames": len(self.indices),
        }


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None
