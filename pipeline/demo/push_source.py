"""A frame source fed by pushes: the browser's webcam stream arrives frame by frame over HTTP."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import numpy as np

from pipeline.sources.base import FrameSource, TimedImage
from pipeline.sources.sampling import FpsSampler

_END = object()


class PushSource(FrameSource):
    """Live source whose frames are handed in with :meth:`push` (timestamps: seconds since the first push).

    Behaves like any live source: sampled to ``fps``, read through the bounded drop-oldest queue (a
    slow consumer sees the newest frames and the rest are counted in ``frames_dropped``), ends on
    :meth:`finish` or :meth:`close`.

    Args:
        spec: a name for messages (e.g. ``"webcam"``).
        fps: target sampling rate, or None to keep every pushed frame.
        queue_size: frames held between the pushing thread and the consumer.
    """

    kind = "push"

    def __init__(self, spec: str = "webcam", fps: float | None = 1.0, queue_size: int = 4) -> None:
        super().__init__(spec, fps=fps, queue_size=queue_size, drop_oldest=True)
        self._inbox: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._sampler = FpsSampler(fps=fps)
        self._t0: float | None = None
        self._size: tuple[int, int] | None = None

    def push(self, rgb: np.ndarray) -> bool:
        """Offer one ``(H, W, 3)`` uint8 RGB frame; returns whether it was kept by the sampler.

        Frames of another size than the first are resized to it (a stream has one frame grid).
        """
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        timestamp = now - self._t0
        if self.closed or not self._sampler.keep(timestamp):
            return False
        rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
        if self._size is None:
            self._size = (rgb.shape[1], rgb.shape[0])
        elif (rgb.shape[1], rgb.shape[0]) != self._size:
            import cv2

            rgb = cv2.resize(rgb, self._size, interpolation=cv2.INTER_AREA)
        try:
            self._inbox.put_nowait((timestamp, rgb))
        except queue.Full:  # the reader thread is behind: the newest frame wins
            self._inbox.get_nowait()
            self._inbox.put_nowait((timestamp, rgb))
        return True

    def finish(self) -> None:
        """End the stream after the frames already pushed (the camera stopped)."""
        self._inbox.put(_END)

    def _read(self) -> Iterator[TimedImage]:
        while not self.stopping:
            try:
                item = self._inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                return
            self.frames_read += 1
            yield item  # type: ignore[misc]

    def _describe(self) -> dict[str, object]:
        return {"size": self._size}
