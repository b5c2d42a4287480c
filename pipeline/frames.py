"""The unit of video that flows through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded video frame.

    Attributes:
        index: position of the frame in the sequence a source yields (0-based, after sampling).
        timestamp: media time of the frame in seconds (presentation time for files, seconds since the
            first frame for live sources).
        rgb: the pixels, ``(H, W, 3)`` ``uint8`` in RGB order.
    """

    index: int
    timestamp: float
    rgb: np.ndarray

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])
