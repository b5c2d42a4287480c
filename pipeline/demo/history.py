"""Memory and ingest statistics of one stream over time, and the plot the demo shows of them."""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields

from matplotlib.figure import Figure


@dataclass(frozen=True)
class StatsSample:
    """One reading of a stream's memory and ingest state.

    Token counts are per layer and KV head (the same in every one); bytes cover the whole KV cache.

    Attributes:
        elapsed_s: wall-clock seconds since the stream started.
        video_time: timestamp (s) of the newest frame ingested, or None before the first.
        frames_ingested: frames prefilled into memory so far.
        sink_tokens, short_term_tokens, long_term_tokens: resident tokens per memory tier.
        device_bytes: bytes of the resident KV cache.
        logical_tokens: tokens the stream has produced so far (resident or not).
        compression_ratio: logical tokens / resident tokens.
        ingest_fps: frames ingested per wall-clock second since the previous sample.
        lag_s: how far ingest is behind the source (s).
        dropped_frames: frames the source discarded because ingest was slower than real time.
    """

    elapsed_s: float
    video_time: float | None
    frames_ingested: int
    sink_tokens: int
    short_term_tokens: int
    long_term_tokens: int
    device_bytes: int
    logical_tokens: int
    compression_ratio: float
    ingest_fps: float
    lag_s: float
    dropped_frames: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class StatsHistory:
    """Bounded, thread-safe list of :class:`StatsSample` (oldest thinned out beyond ``capacity``)."""

    def __init__(self, capacity: int = 600) -> None:
        self.capacity = capacity
        self._samples: list[StatsSample] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def samples(self) -> list[StatsSample]:
        with self._lock:
            return list(self._samples)

    @property
    def last(self) -> StatsSample | None:
        with self._lock:
            return self._samples[-1] if self._samples else None

    def add(self, sample: StatsSample) -> None:
        """Append ``sample``; past ``capacity``, every other old sample is dropped (keeps the whole span)."""
        with self._lock:
            self._samples.append(sample)
            if len(self._samples) > self.capacity:
                half = len(self._samples) // 2
                self._samples = self._samples[:half:2] + self._samples[half:]

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()

    def figure(self) -> Figure:
        """Resident tokens per tier (stacked) and ingest rate / lag / drops against wall time."""
        samples = self.samples
        figure = Figure(figsize=(6.4, 3.6), dpi=80, layout="constrained")
        tokens, ingest = figure.subplots(2, 1, sharex=True)
        x = [s.elapsed_s for s in samples]
        tokens.stackplot(
            x,
            [s.sink_tokens for s in samples],
            [s.short_term_tokens for s in samples],
            [s.long_term_tokens for s in samples],
            labels=["sinks", "short-term", "long-term"],
            colors=["#9e9e9e", "#1f77b4", "#ff7f0e"],
        )
        tokens.plot(x, [s.logical_tokens for s in samples], "k--", linewidth=1, label="seen")
        tokens.set_ylabel("tokens / head")
        tokens.legend(loc="upper left", fontsize=7, ncols=4)
        ingest.plot(x, [s.ingest_fps for s in samples], label="ingest frames/s")
        ingest.plot(x, [s.lag_s for s in samples], label="lag (s)")
        ingest.plot(x, [s.dropped_frames for s in samples], label="dropped frames")
        ingest.set_xlabel("seconds since start")
        ingest.legend(loc="upper left", fontsize=7, ncols=3)
        for axes in (tokens, ingest):
            axes.tick_params(labelsize=7)
            axes.grid(alpha=0.3)
        return figure
