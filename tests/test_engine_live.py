"""A live stream served by ffmpeg on 127.0.0.1, consumed too slowly on purpose: the drop policy keeps
latency bounded and counts every dropped frame; killing the server ends ingest cleanly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.config import StreamConfig
from pipeline.engine import EngineSettings, RealtimeVideoQA
from pipeline.engine.records import Step, StepKind
from tests.video_factory import HttpStreamServer, make_test_video

FAMILY = "qwen2_5_vl"
FPS = 10.0
QUEUE_FRAMES = 6
INGEST_DELAY_S = 0.5  # each ingest step takes 4 frames and at least this long: ~8 fps < 10 fps of input


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("live") / "clip.mp4", seconds=2, fps=FPS, size=(64, 48), gop=5)


def slow_ingest(step: Step) -> None:
    if step.kind is StepKind.INGEST:
        time.sleep(INGEST_DELAY_S)


@pytest.mark.timeout(120)
def test_slow_consumption_drops_frames_counts_them_and_keeps_latency_bounded(tiny_models, clip) -> None:
    cfg = StreamConfig().replace("ingest", chunks_per_forward=2).replace("sampling", max_new_tokens=8)
    cfg = cfg.replace("source", fps=FPS)
    settings = EngineSettings(queue_frames=QUEUE_FRAMES, max_wait_s=5.0)
    with HttpStreamServer(clip, duration=30.0, loop=True, realtime=True) as server:
        with RealtimeVideoQA(tiny_models[FAMILY], cfg, settings, step_hook=slow_ingest) as engine:
            stream = engine.watch(server.url)
            assert stream.description["drop_policy"] == "drop_oldest"
            time.sleep(3.0)
            during = stream.ask("What is on screen now?").result(timeout=30)
            stats = stream.stats()
            assert stats["frames_dropped"] > 0  # the policy dropped frames ...
            accounted = stats["frames_encoded"] + stats["frames_buffered"] + stats["frames_queued"]
            assert stats["frames_read"] == accounted + stats["frames_dropped"]  # ... and counted every one
            # latency bounded: no frame waited longer than the queue's span plus one (slowed) ingest step
            assert stats["max_queue_delay_s"] <= QUEUE_FRAMES / FPS + 2 * INGEST_DELAY_S + 0.5
            assert during.status == "done" and during.wait_s <= QUEUE_FRAMES / FPS + 2 * INGEST_DELAY_S + 1.0
            # frames up to the question time that the policy dropped while it waited are reported as lag
            assert during.lag_s == pytest.approx(max(0.0, during.question_time - during.frames_covered[1]), abs=1e-6)
            assert during.lag_s <= QUEUE_FRAMES / FPS + 2 * INGEST_DELAY_S

            killed_at = time.monotonic()
            server.stop()
            assert stream.wait_ended(timeout=20)
            assert time.monotonic() - killed_at < 20
            ended = stream.stats()
            assert ended["capture_ended"] and ended["end_reason"] not in (None, "closed")
            after = stream.ask("What was the last thing seen?").result(timeout=30)
            assert after.status == "done" and after.frames_covered is not None
            final = stream.stats()
            assert final["frames_read"] == final["frames_encoded"] + final["frames_buffered"] + final["frames_dropped"]
