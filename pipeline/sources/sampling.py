"""Frame sampling to a target fps and clipping to a ``[start, end]`` window, in media seconds.

The rule (shared by every source that samples in Python):

* frames before ``start`` are skipped; frames with ``timestamp > end`` are skipped and end the clip
  (``end`` is inclusive);
* with ``fps=None`` every remaining frame is kept;
* otherwise the first remaining frame (time ``t0``) is kept, and after it a frame is kept when its
  timestamp reaches the next sample time ``t0 + k / fps`` (k = 1, 2, ...). When frames are sparser
  than the target rate, a kept frame consumes every sample time it has passed, so there are no
  bursts: a 10 fps video sampled at 2 fps keeps frames 0, 5, 10, ... (t = 0, 0.5, 1.0, ...), at 3 fps
  frames 0, 4, 7, 10, ... (the first frame at or after each sample time).

A tolerance of ``1e-6`` sample periods absorbs floating-point noise in timestamps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.sources.messages import source_error

_EPS = 1e-6


def check_sampling_args(spec: str, fps: float | None, start: float | None, end: float | None) -> None:
    """Validate ``fps``/``start``/``end`` for the source ``spec``.

    Raises:
        SourceError: ``fps <= 0`` or not finite, a negative or non-finite ``start``/``end``, or
            ``start > end``.
    """
    if fps is not None and (not _is_number(fps) or not math.isfinite(fps) or fps <= 0):
        raise source_error(
            f"invalid fps={fps!r} for {spec}: the sampling rate must be a positive number",
            "pass e.g. fps=1.0, or fps=None to keep every frame",
        )
    for name, value in (("start", start), ("end", end)):
        if value is not None and (not _is_number(value) or not math.isfinite(value) or value < 0):
            raise source_error(
                f"invalid {name}={value!r} for {spec}: clip times are seconds >= 0",
                f"pass a non-negative number of seconds, or {name}=None",
            )
    if start is not None and end is not None and start > end:
        raise source_error(
            f"invalid clip for {spec}: start={start:g} s is after end={end:g} s",
            "pass start <= end (end is inclusive)",
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class FpsSampler:
    """Streaming sampler: call :meth:`keep` with each decoded frame's timestamp, in order.

    Attributes:
        fps: target rate in frames per second, or None to keep every frame.
        start: clip start in seconds (inclusive), or None.
        end: clip end in seconds (inclusive), or None.
    """

    fps: float | None = None
    start: float | None = None
    end: float | None = None
    _t0: float | None = field(default=None, init=False, repr=False)
    _next_k: int = field(default=1, init=False, repr=False)

    def past_end(self, timestamp: float) -> bool:
        """Whether ``timestamp`` lies after the clip end (so later frames can be skipped too)."""
        return self.end is not None and timestamp > self.end + _EPS

    def keep(self, timestamp: float) -> bool:
        """Whether the frame at ``timestamp`` (seconds) is kept; updates the sampling state."""
        if self.start is not None and timestamp < self.start - _EPS:
            return False
        if self.past_end(timestamp):
            return False
        if self.fps is None:
            return True
        if self._t0 is None:
            self._t0 = timestamp
            self._next_k = 1
            return True
        reached = math.floor((timestamp - self._t0) * self.fps + _EPS)
        if reached >= self._next_k:
            self._next_k = reached + 1
            return True
        return False


def select_indices(
    timestamps: Sequence[float],
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
) -> list[int]:
    """Indices of the frames kept by :class:`FpsSampler` among non-decreasing ``timestamps``.

    Args:
        timestamps: presentation time of every frame, in seconds, non-decreasing.
        fps: target rate, or None for every frame.
        start: clip start (inclusive), or None.
        end: clip end (inclusive), or None.
    """
    sampler = FpsSampler(fps=fps, start=start, end=end)
    kept: list[int] = []
    for index, timestamp in enumerate(timestamps):
        if sampler.past_end(float(timestamp)):
            break
        if sampler.keep(float(timestamp)):
            kept.append(index)
    return kept
