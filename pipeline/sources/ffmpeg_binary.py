"""Where the ffmpeg and ffprobe executables are.

``ffmpeg`` on ``PATH`` wins; otherwise the static binary shipped by the ``imageio-ffmpeg`` wheel is
used (it also honours the ``IMAGEIO_FFMPEG_EXE`` environment variable). ``imageio-ffmpeg`` ships no
ffprobe, so :func:`ffprobe_exe` may return None; nothing in :mod:`pipeline.sources` needs it.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil

from pipeline.sources.messages import source_error

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg executable.

    Raises:
        SourceError: neither an ``ffmpeg`` on PATH nor the ``imageio-ffmpeg`` binary is available.
    """
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError, OSError) as exc:
        raise source_error(
            "no ffmpeg executable found (none on PATH and imageio-ffmpeg is missing or broken)",
            "install ffmpeg (e.g. apt install ffmpeg) or `pip install imageio-ffmpeg`",
        ) from exc
    logger.debug("using the imageio-ffmpeg binary %s", exe)
    return str(exe)


@functools.lru_cache(maxsize=1)
def ffprobe_exe() -> str | None:
    """Path of an ffprobe executable (on PATH, or next to :func:`ffmpeg_exe`), or None."""
    found = shutil.which("ffprobe")
    if found:
        return found
    try:
        ffmpeg = ffmpeg_exe()
    except Exception:  # noqa: BLE001 - no ffmpeg means no ffprobe either
        return None
    sibling = os.path.join(os.path.dirname(ffmpeg), "ffprobe" + (".exe" if ffmpeg.endswith(".exe") else ""))
    return sibling if os.path.isfile(sibling) and os.access(sibling, os.X_OK) else None
