"""``open_source``: pick and open the right :class:`FrameSource` for what the user typed.

=============================  ==========================  ====================================
spec                           backend="auto"              other backends
=============================  ==========================  ====================================
``0``, ``"1"`` (camera index)  LiveSource (OpenCV)         "opencv" only
existing local file            FileSource (decord)         "ffmpeg" -> FFmpegSource,
                                                           "opencv" -> LiveSource
network URL (rtsp, http, ...)  FFmpegSource                "opencv" -> LiveSource
``-`` (stdin)                  FFmpegSource                "ffmpeg" only
other ``scheme://...``         error (unknown scheme)      "ffmpeg" -> FFmpegSource
missing path                   SourceError "video file not found: ..."
=============================  ==========================  ====================================
"""

from __future__ import annotations

import logging
import os

from pipeline.sources.base import FrameSource
from pipeline.sources.messages import source_error
from pipeline.sources.sizing import SizeRule
from pipeline.sources.specs import (
    NETWORK_SCHEMES,
    camera_index,
    check_video_path,
    is_network_url,
    is_stdin,
    url_scheme,
)

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("auto", "decord", "opencv", "ffmpeg")
"""Valid values of ``open_source(..., backend=...)``."""


def open_source(
    spec: str | int | os.PathLike[str],
    *,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    size: SizeRule | None = None,
    max_side: int | None = None,
    realtime: bool = False,
    backend: str = "auto",
) -> FrameSource:
    """Open a frame source for a camera index, local file, URL or ``-`` (stdin).

    Args:
        spec: camera index (int or digit string), file path, URL, or ``-``.
        fps: target sampling rate, or None for every frame.
        start: clip start in seconds (inclusive), or None.
        end: clip end in seconds (inclusive), or None.
        size: exact output ``(width, height)``, or None; file sources also take a function of the
            native ``(width, height)``.
        max_side: shrink so the longer side is at most this, keeping aspect ratio, or None.
        realtime: pace a file on the wall clock (simulated live camera); ignored for cameras and
            OpenCV streams, which are real time already.
        backend: ``"auto"`` (see the module table), ``"decord"``, ``"opencv"`` or ``"ffmpeg"``.

    Returns:
        An opened (not yet iterated) :class:`FrameSource`; use it as a context manager.

    Raises:
        SourceError: unknown backend, a backend that cannot read this kind of input, or any failure
            to open the input.
    """
    if backend not in BACKENDS:
        raise source_error(
            f"unknown source backend {backend!r}",
            f"use one of {', '.join(repr(b) for b in BACKENDS)}",
        )
    index = camera_index(spec)
    text = None if index is not None else os.fspath(spec)  # type: ignore[arg-type]
    goes_to_decord = text is not None and backend in ("auto", "decord") and url_scheme(text) is None
    if callable(size) and not (goes_to_decord and not is_stdin(text)):
        raise source_error(
            f"a size function was given for {spec!r}, which is not a local file read with decord",
            "pass size=(width, height) or max_side=N for cameras, URLs, stdin and the ffmpeg/opencv backends",
        )
    if index is not None:
        return _open_camera(index, backend, fps=fps, start=start, end=end, size=size, max_side=max_side)
    common = {"fps": fps, "start": start, "end": end, "size": size, "max_side": max_side}
    if is_stdin(text):
        if backend not in ("auto", "ffmpeg"):
            raise source_error(
                f"backend={backend!r} cannot read a video from stdin ('-')",
                "use backend='auto' or 'ffmpeg' for stdin",
            )
        return _ffmpeg(text, realtime=realtime, **common)
    scheme = url_scheme(text)
    if scheme is not None:
        return _open_url(text, scheme, backend, realtime=realtime, **common)
    check_video_path(text)
    if backend == "ffmpeg":
        return _ffmpeg(text, realtime=realtime, **common)
    if backend == "opencv":
        if realtime:
            logger.info("realtime=True is ignored with backend='opencv'")
        return _live(text, **common)
    from pipeline.sources.file_source import FileSource

    return FileSource(text, realtime=realtime, **common)  # type: ignore[arg-type]


def _open_camera(index: int, backend: str, **common: object) -> FrameSource:
    if backend not in ("auto", "opencv"):
        raise source_error(
            f"backend={backend!r} cannot read camera {index}",
            "cameras are read with OpenCV: use backend='auto' or 'opencv'",
        )
    return _live(index, **common)


def _open_url(text: str, scheme: str, backend: str, *, realtime: bool, **common: object) -> FrameSource:
    if backend == "decord":
        raise source_error(
            f"backend='decord' cannot read the URL {text} (decord reads local files only)",
            "use backend='auto' or 'ffmpeg' (or 'opencv') for network streams",
        )
    if backend == "opencv":
        return _live(text, **common)
    if not is_network_url(text) and backend != "ffmpeg":
        raise source_error(
            f"unsupported URL scheme {scheme!r} in {text}",
            f"use one of {', '.join(NETWORK_SCHEMES)}, or pass backend='ffmpeg' to let ffmpeg try it",
        )
    return _ffmpeg(text, realtime=realtime, **common)


def _ffmpeg(text: str, **kwargs: object) -> FrameSource:
    from pipeline.sources.ffmpeg_source import FFmpegSource

    return FFmpegSource(text, **kwargs)  # type: ignore[arg-type]


def _live(spec: int | str, **kwargs: object) -> FrameSource:
    from pipeline.sources.live_source import LiveSource

    return LiveSource(spec, **kwargs)  # type: ignore[arg-type]
