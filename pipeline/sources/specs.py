"""Classify what a user typed as a source: camera index, stdin, network URL, or local path."""

from __future__ import annotations

import os
import re

from pipeline.sources.messages import source_error

NETWORK_SCHEMES: tuple[str, ...] = (
    "rtsp",
    "rtsps",
    "rtmp",
    "rtmps",
    "http",
    "https",
    "udp",
    "tcp",
    "srt",
    "rtp",
)
"""URL schemes read as network streams (by ffmpeg, or OpenCV with ``backend="opencv"``)."""

STDIN_SPECS: tuple[str, ...] = ("-", "pipe:", "pipe:0")
"""Specs that mean "read an encoded stream from standard input" (ffmpeg only)."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def url_scheme(spec: str) -> str | None:
    """The lower-case scheme of ``scheme://...``, or None when ``spec`` is not URL-shaped."""
    match = _SCHEME.match(spec)
    return match.group(1).lower() if match else None


def is_network_url(spec: str) -> bool:
    """Whether ``spec`` is a URL with one of :data:`NETWORK_SCHEMES`."""
    return url_scheme(spec) in NETWORK_SCHEMES


def is_stdin(spec: str) -> bool:
    """Whether ``spec`` asks for standard input."""
    return spec in STDIN_SPECS


def camera_index(spec: object) -> int | None:
    """The webcam index for an ``int`` or an all-digit string, else None."""
    if isinstance(spec, bool):
        return None
    if isinstance(spec, int):
        return spec if spec >= 0 else None
    if isinstance(spec, str) and spec.strip().isdigit():
        return int(spec.strip())
    return None


def check_video_path(path: str) -> None:
    """Check that ``path`` names a non-empty regular file.

    Raises:
        SourceError: the path does not exist, is a directory, or is an empty file.
    """
    if not os.path.exists(path):
        raise source_error(
            f"video file not found: {path}",
            f"check the path (relative paths start from {os.getcwd()}), or pass a URL or camera index",
        )
    if os.path.isdir(path):
        raise source_error(
            f"{path} is a directory, not a video file",
            "pass the path of a video file inside it (e.g. .mp4, .mkv, .webm)",
        )
    if os.path.getsize(path) == 0:
        raise source_error(
            f"video file {path} is empty (0 bytes)",
            "re-download or re-export the video; the copy on disk has no data",
        )
