"""Frame sources: turn a file, camera, URL or stdin into an iterator of :class:`~pipeline.frames.Frame`.

Use :func:`open_source` unless you need a specific backend::

    from pipeline.sources import open_source

    with open_source("talk.mp4", fps=2, max_side=448) as source:
        for frame in source:  # Frame(index, timestamp, rgb (H, W, 3) uint8)
            ...

* :class:`FileSource` - local files with decord (random access, resize at decode, never drops).
* :class:`LiveSource` - webcams and RTSP/HTTP with OpenCV (drops the oldest frame when slow).
* :class:`FFmpegSource` - anything ffmpeg reads (network URLs, ``-`` for stdin, files) via a pipe.

Every source reads in a background thread, re-raises its errors in the consumer as one-line
:class:`~pipeline.errors.SourceError` s, and counts ``frames_read``/``frames_yielded``/
``frames_dropped``.
"""

from pipeline.sources.base import FrameSource
from pipeline.sources.ffmpeg_binary import ffmpeg_exe, ffprobe_exe
from pipeline.sources.ffmpeg_source import FFmpegSource
from pipeline.sources.file_source import FileSource
from pipeline.sources.live_source import LiveSource
from pipeline.sources.opener import BACKENDS, open_source
from pipeline.sources.sampling import FpsSampler, select_indices
from pipeline.sources.sizing import fit_size

__all__ = [
    "BACKENDS",
    "FFmpegSource",
    "FileSource",
    "FpsSampler",
    "FrameSource",
    "LiveSource",
    "ffmpeg_exe",
    "ffprobe_exe",
    "fit_size",
    "open_source",
    "select_indices",
]
