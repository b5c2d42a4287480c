"""The demo's UI-independent parts: thumbnails and evidence, statistics history, registry, push source."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pipeline.errors import UserInputError
from pipeline.frames import Frame

pytest.importorskip("matplotlib")

from pipeline.demo.history import StatsHistory, StatsSample  # noqa: E402
from pipeline.demo.push_source import PushSource  # noqa: E402
from pipeline.demo.registry import SessionRegistry  # noqa: E402
from pipeline.demo.thumbnails import ThumbnailStore, resident_evidence  # noqa: E402


def frame(t: float, level: int = 0, size: tuple[int, int] = (240, 320)) -> Frame:
    return Frame(int(t * 10), t, np.full((*size, 3), level, np.uint8))


def test_thumbnails_shrink_keep_order_and_prune() -> None:
    store = ThumbnailStore(max_side=64, capacity=3)
    for t in (0.0, 1.0, 2.0, 3.0):
        store.add(frame(t, level=int(t)))
    assert len(store) == 3 and store.first_timestamp() == 1.0  # the oldest went first
    timestamp, image = store.latest()
    assert timestamp == 3.0 and image.shape == (48, 64, 3) and image[0, 0, 0] == 3
    assert store.nearest(1.9)[0] == 2.0
    store.prune_before(2.5)
    assert store.first_timestamp() == 3.0


def test_evidence_spreads_over_resident_chunks_with_honest_captions() -> None:
    store = ThumbnailStore()
    for t in range(20):
        store.add(frame(float(t), level=t))
    chunks = [(float(t), 1.0 if t > 10 else 0.25) for t in range(0, 20, 2)]
    evidence = resident_evidence(store, chunks, limit=4)
    assert [e.timestamp for e in evidence] == [0.0, 6.0, 12.0, 18.0]
    assert evidence[0].caption == "0.0 s · 25% in memory" and evidence[-1].caption == "18.0 s · 100% in memory"
    assert evidence[2].image[0, 0, 0] == 12  # the thumbnail of that very frame
    assert resident_evidence(store, []) == []


def sample(t: float, long_term: int) -> StatsSample:
    return StatsSample(t, t, int(t), 10, 100, long_term, 1000, 110 + long_term, 1.0, 2.0, 0.5, 0)


def test_history_thins_old_samples_and_plots() -> None:
    history = StatsHistory(capacity=10)
    for t in range(25):
        history.add(sample(float(t), t))
    samples = history.samples
    assert len(samples) <= 10 and samples[0].elapsed_s == 0.0 and samples[-1].elapsed_s == 24.0
    assert [s.elapsed_s for s in samples] == sorted(s.elapsed_s for s in samples)
    figure = history.figure()
    tokens_axes = figure.axes[0]
    assert [t.get_text() for t in tokens_axes.get_legend().get_texts()] == ["sinks", "short-term", "long-term", "seen"]


class Resource:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_registry_replaces_releases_and_bounds_streams() -> None:
    registry: SessionRegistry[Resource] = SessionRegistry(max_streams=2)
    first = registry.open("a", Resource)
    second = registry.open("a", Resource)  # a new source in the same tab closes the old stream
    assert first.closed and not second.closed and len(registry) == 1
    registry.open("b", Resource)
    with pytest.raises(UserInputError, match="--max-streams"):
        registry.open("c", Resource)
    registry.release("b")
    with pytest.raises(RuntimeError):  # a failing open frees its slot
        registry.open("c", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert registry.get("c") is None and len(registry) == 1
    registry.release("a")
    assert second.closed and registry.get("a") is None
    registry.close_all()
    assert len(registry) == 0


def test_push_source_samples_resizes_and_ends() -> None:
    source = PushSource(fps=None)

    def produce() -> None:
        for k in range(4):
            shape = (120, 160, 3) if k != 2 else (60, 80, 3)  # a camera may change resolution mid-stream
            source.push(np.full(shape, k, np.uint8))
            time.sleep(0.01)
        source.finish()

    threading.Thread(target=produce).start()
    frames = list(source)
    assert [int(f.rgb[0, 0, 0]) for f in frames] == [0, 1, 2, 3]
    assert {f.rgb.shape for f in frames} == {(120, 160, 3)}
    assert [f.timestamp for f in frames] == sorted(f.timestamp for f in frames)
    assert source.end_reason == "end of stream"
