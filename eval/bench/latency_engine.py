"""Ingest throughput of the real-time engine while it answers vs while it is idle, and the longest stall.

The engine (:class:`~pipeline.engine.RealtimeVideoQA`) watches an endless stream of frames held in RAM,
read as fast as the engine takes them (``block`` policy: nothing dropped, ingest always has a full
batch waiting). The bench lets it ingest alone for ``--engine-idle-s`` seconds, then asks a question
with a long answer (``--engine-max-new-tokens``, mode ``now``) and waits for the answer to end, then
idles again; ``--engine-answers`` times.

A step hook, run by the worker before every step, records ``(time, step kind, frames ingested so
far)``. A step ends when the next one begins, so each ingest step gives the time its frames entered
memory (per-frame ingest timestamps, one per forward call). From these:

* ingest fps idle / while answering: frames that entered memory inside the idle / answer windows
  divided by the windows' length;
* the longest ingest stall during an answer: the longest gap between two consecutive ingest
  completions that overlaps an answer window, beside the median gap while idle (a gap is at least one
  ingest step; the extra is the answer's start or decode step run in between).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import threading
import time
from collections.abc import Iterator

from models.protocol import SamplingParams
from pipeline.config import StreamConfig
from pipeline.engine import EngineSettings, RealtimeVideoQA
from pipeline.engine.records import Step
from pipeline.frames import Frame

logger = logging.getLogger(__name__)

LONG_QUESTION = "Describe everything that has happened in the video so far, in as much detail as you can."


class StepRecorder:
    """Step hook: ``(perf_counter, kind, frames ingested by every stream)`` before each step.

    Runs in the engine's worker thread, between steps, so reading the sessions' counters is safe.
    """

    def __init__(self) -> None:
        self.engine: RealtimeVideoQA | None = None
        self.records: list[tuple[float, str, int]] = []
        self.lock = threading.Lock()

    def __call__(self, step: Step) -> None:
        frames = 0
        if self.engine is not None:
            streams = self.engine.core._streams  # worker thread: read-only look at the counters
            frames = sum(s.session.counters.frames_ingested for s in streams.values())
        with self.lock:
            self.records.append((time.perf_counter(), step.kind.value, frames))


def ingest_completions(records: list[tuple[float, str, int]]) -> list[tuple[float, int]]:
    """``(time, frames)`` when each ingest step's frames entered memory (the next step's start)."""
    out = []
    for (_, kind, before), (t_next, _, after) in zip(records, records[1:]):
        if kind == "ingest" and after > before:
            out.append((t_next, after - before))
    return out


def overlaps(a: float, b: float, windows: list[tuple[float, float]]) -> bool:
    return any(a < end and b > start for start, end in windows)


def inside(t: float, windows: list[tuple[float, float]]) -> bool:
    return any(start <= t <= end for start, end in windows)


def analyse(
    completions: list[tuple[float, int]], answers: list[tuple[float, float]], span: tuple[float, float]
) -> dict:
    """Throughput idle vs answering and the ingest gaps, from completion times and answer windows."""
    begin, end = span
    answer_s = sum(min(b, end) - max(a, begin) for a, b in answers)
    idle_s = (end - begin) - answer_s
    in_span = [(t, n) for t, n in completions if begin <= t <= end]
    answering_frames = sum(n for t, n in in_span if inside(t, answers))
    idle_frames = sum(n for t, n in in_span if not inside(t, answers))
    gaps_answer, gaps_idle = [], []
    for (t0, _), (t1, _) in zip(in_span, in_span[1:]):
        (gaps_answer if overlaps(t0, t1, answers) else gaps_idle).append(t1 - t0)
    idle_fps = idle_frames / idle_s if idle_s > 0 else None
    answering_fps = answering_frames / answer_s if answer_s > 0 else None
    return {
        "idle_s": round(idle_s, 2),
        "answering_s": round(answer_s, 2),
        "ingest_fps_idle": round(idle_fps, 2) if idle_fps else None,
        "ingest_fps_while_answering": round(answering_fps, 2) if answering_fps else None,
        "answering_over_idle": round(answering_fps / idle_fps, 3) if idle_fps and answering_fps else None,
        "median_ingest_gap_idle_s": round(statistics.median(gaps_idle), 3) if gaps_idle else None,
        "median_ingest_gap_answering_s": round(statistics.median(gaps_answer), 3) if gaps_answer else None,
        "longest_ingest_gap_answering_s": round(max(gaps_answer), 3) if gaps_answer else None,
        "longest_ingest_gap_idle_s": round(max(gaps_idle), 3) if gaps_idle else None,
    }


def step_durations(records: list[tuple[float, str, int]], kind: str) -> list[float]:
    """Wall seconds of each step of ``kind`` (until the next step began)."""
    return [t1 - t0 for (t0, k, _), (t1, _, _) in zip(records, records[1:]) if k == kind]


def endless(tape: object) -> Iterator[Frame]:
    """Frames of ``tape`` (see ``FrameTape``) at 1 fps, without end (the engine is closed to stop it)."""
    index = 0
    while True:
        yield from tape.frames(index, index + 64)
        index += 64


def ingest_while_answering(model: object, tape: object, config: StreamConfig, args: argparse.Namespace) -> dict:
    """Run the engine on an endless RAM stream; alternate idle ingest and long answers; analyse."""
    recorder = StepRecorder()
    settings = EngineSettings(drop_policy="block", max_active_answers=1)
    sampling = SamplingParams(max_new_tokens=args.engine_max_new_tokens)
    answers: list[tuple[float, float]] = []
    infos = []
    engine = RealtimeVideoQA(model, config, settings, step_hook=recorder)
    recorder.engine = engine
    try:
        stream = engine.watch(endless(tape), realtime=False)
        begin = time.perf_counter()
        for k in range(args.engine_answers):
            time.sleep(args.engine_idle_s)
            asked = time.perf_counter()
            request = stream.ask(LONG_QUESTION, mode="now", sampling=sampling)
            first = None
            for piece in request:  # streamed like a client would read it
                if piece.token_ids and first is None:
                    first = time.perf_counter()
            info = request.info
            answers.append((asked, time.perf_counter()))
            infos.append((info, (first or answers[-1][1]) - asked))
            logger.info("engine answer %d: %d tokens in %.2f s", k + 1, info.num_tokens, info.total_s or 0.0)
        time.sleep(args.engine_idle_s)
        end = time.perf_counter()
        stats = stream.stats()
    finally:
        engine.close()
    with recorder.lock:
        records = list(recorder.records)
    result = analyse(ingest_completions(records), answers, (begin, end))
    ingest_steps = step_durations(records, "ingest")
    decode_steps = step_durations(records, "decode")
    start_steps = step_durations(records, "start")
    result.update({
        "settings": {"drop_policy": "block", "decode_steps_per_ingest": settings.decode_steps_per_ingest,
                     "max_new_tokens": args.engine_max_new_tokens, "idle_s": args.engine_idle_s,
                     "mode": "now", "question": LONG_QUESTION},
        # ttft_s / total_s: the engine's own figures (ttft_s is its first *text*: with random weights the
        # tokens decode to nothing, so it equals total_s); first_token_s: the first token, seen by the client
        "answers": [{"num_tokens": i.num_tokens, "ttft_s": i.ttft_s, "total_s": i.total_s,
                     "first_token_s": round(first_s, 4),
                     "decode_tokens_per_s": round(i.num_tokens / i.total_s, 2) if i.total_s else None}
                    for i, first_s in infos],
        "median_ingest_step_s": round(statistics.median(ingest_steps), 3) if ingest_steps else None,
        "median_decode_step_s": round(statistics.median(decode_steps), 4) if decode_steps else None,
        "longest_start_step_s": round(max(start_steps), 3) if start_steps else None,
        "engine_longest_ingest_gap_s": round(stats["longest_ingest_gap_s"], 3),
        "frames_encoded": stats["frames_encoded"],
        "frames_dropped": stats["frames_dropped"],
    })
    return result
