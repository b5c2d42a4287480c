"""Resume saved sessions in a fresh process and answer (run by tests/test_persistence.py).

Usage: ``python -m tests.resume_worker JOBS.json``. ``JOBS.json`` is a list of objects with
``checkpoint``, ``session`` (a saved folder), ``fps``, ``total_frames``, ``first_new_frame`` and
``question``; for each job the worker loads the model, resumes the session with its saved
configuration, feeds frames ``first_new_frame .. total_frames - 1`` of :func:`stream_frames` (the
same frames the test fed its uninterrupted session) and answers greedily. It prints one JSON
list: per job ``{"token_ids", "answer", "evicted_tokens", "tokens_dropped", "frames_ingested"}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from models.registry import load_model
from pipeline.frames import Frame
from pipeline.videoqa import VideoQA
from tests.test_incremental_prefill import make_frames


def stream_frames(fps: float, n: int, hold: int = 4) -> list[Frame]:
    """``n`` frames at ``fps`` where each random ``(56, 84)`` image is held ``hold`` frames (static
    stretches, so token dropping has repeats to drop)."""
    images = make_frames(n // hold + 1, size=(56, 84), seed=7)
    return [Frame(i, i / fps, images[i // hold]) for i in range(n)]


def run_job(job: dict) -> dict:
    model = load_model(job["checkpoint"], device="cpu", dtype="float32", local_files_only=True)
    session = VideoQA(model).resume(job["session"])
    session.feed(stream_frames(job["fps"], job["total_frames"])[job["first_new_frame"] :])
    stream = session.ask_stream(job["question"])
    token_ids = [token for piece in stream for token in piece.token_ids]
    answer = stream.result()
    return {
        "token_ids": token_ids,
        "answer": answer.answer,
        "evicted_tokens": session.bank.stats().evicted_tokens,
        "tokens_dropped": session.counters.tokens_dropped,
        "frames_ingested": answer.frames_ingested,
    }


def main(jobs_path: str) -> int:
    jobs = json.loads(Path(jobs_path).read_text())
    print(json.dumps([run_job(job) for job in jobs]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
