"""Small copies of the frames one stream has seen, kept by timestamp for the evidence gallery.

The engine keeps KV tensors, not pixels; the demo keeps a thumbnail of each ingested frame so that
an answer can show the frames behind it. Thumbnails of frames that left memory are pruned.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.frames import Frame


@dataclass(frozen=True)
class Evidence:
    """One thumbnail shown under an answer.

    Attributes:
        timestamp: video time of the frame (s).
        image: ``(h, w, 3)`` uint8 RGB thumbnail.
        caption: what the user reads under it (time and how much of the frame memory still holds).
    """

    timestamp: float
    image: np.ndarray
    caption: str


def shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """``rgb`` resized so that its longer side is at most ``max_side`` (aspect kept, never enlarged)."""
    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return np.ascontiguousarray(rgb)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


class ThumbnailStore:
    """Thread-safe ``timestamp -> thumbnail`` store, oldest dropped first beyond ``capacity``.

    Args:
        max_side: longer side of a thumbnail in pixels.
        capacity: most thumbnails kept (memory bound: ``capacity * max_side**2 * 3`` bytes at most).
    """

    def __init__(self, max_side: int = 160, capacity: int = 1024) -> None:
        self.max_side = max_side
        self.capacity = capacity
        self._times: list[float] = []
        self._images: list[np.ndarray] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._times)

    def add(self, frame: Frame) -> None:
        """Keep a thumbnail of ``frame`` (frames arrive in timestamp order)."""
        image = shrink(frame.rgb, self.max_side)
        with self._lock:
            position = bisect.bisect_right(self._times, frame.timestamp)
            self._times.insert(position, frame.timestamp)
            self._images.insert(position, image)
            if len(self._times) > self.capacity:
                del self._times[0], self._images[0]

    def latest(self) -> tuple[float, np.ndarray] | None:
        """The newest ``(timestamp, thumbnail)``, or None before the first frame."""
        with self._lock:
            return (self._times[-1], self._images[-1]) if self._times else None

    def first_timestamp(self) -> float | None:
        """Timestamp of the oldest stored thumbnail."""
        with self._lock:
            return self._times[0] if self._times else None

    def nearest(self, timestamp: float) -> tuple[float, np.ndarray] | None:
        """The stored ``(timestamp, thumbnail)`` closest in time to ``timestamp``."""
        with self._lock:
            if not self._times:
                return None
            i = bisect.bisect_left(self._times, timestamp)
            best = min((j for j in (i - 1, i) if 0 <= j < len(self._times)),
                       key=lambda j: abs(self._times[j] - timestamp))  # fmt: skip
            return self._times[best], self._images[best]

    def prune_before(self, timestamp: float) -> None:
        """Forget thumbnails older than ``timestamp`` (the oldest frame memory still holds)."""
        with self._lock:
            cut = bisect.bisect_left(self._times, timestamp)
            del self._times[:cut], self._images[:cut]

    def clear(self) -> None:
        with self._lock:
            self._times.clear()
            self._images.clear()


def resident_evidence(
    store: ThumbnailStore, kept_per_chunk: list[tuple[float, float]], limit: int = 8
) -> list[Evidence]:
    """Thumbnails of frames resident in memory, evenly spread over them, oldest first.

    Args:
        store: the stream's thumbnails.
        kept_per_chunk: ``(first timestamp, fraction of tokens still resident)`` per resident chunk
            (``MemoryBank.kept_per_frame()``).
        limit: most thumbnails returned.
    """
    if not kept_per_chunk:
        return []
    count = min(limit, len(kept_per_chunk))
    picks = np.linspace(0, len(kept_per_chunk) - 1, count).round().astype(int)
    evidence = []
    for i in dict.fromkeys(picks.tolist()):
        timestamp, kept = kept_per_chunk[i]
        found = store.nearest(timestamp)
        if found is None:
            continue
        evidence.append(Evidence(timestamp, found[1], f"{timestamp:.1f} s · {kept:.0%} in memory"))
    return evidence
