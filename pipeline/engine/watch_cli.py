"""``streamvqa watch``: play a source into memory while questions typed on stdin are answered.

Questions are read one per line, at any moment, by a thread; each is queued at once with the stream
time of its arrival, and the engine keeps ingesting while it answers. Answers are printed in question
order as they stream out (text mode) or as one JSON line each (``--json``: ``question``,
``question_time``, ``answer``, ``frames_covered``, ``lag_s``, ``ttft_s`` and a few more), then one final
line with the stream's counters (frames read, encoded, dropped, ...).
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import sys
import threading
from typing import Any

from pipeline.config import StreamConfig
from pipeline.engine.client import AnswerRequest, RealtimeVideoQA, StreamHandle
from pipeline.engine.watch_args import settings_from_args
from pipeline.errors import StreamVQAError, UserInputError

logger = logging.getLogger(__name__)

ANSWER_KEYS = ("question", "question_time", "answer", "frames_covered", "lag_s", "ttft_s", "wait_s", "total_s",
               "num_tokens", "status", "error")


def run_watch(args: argparse.Namespace, config: StreamConfig, spec: str | int) -> int:
    """Run the ``watch`` command; returns the exit status."""
    settings = settings_from_args(args)
    engine = RealtimeVideoQA.from_pretrained(config=config, settings=settings)
    try:
        stream = engine.watch(spec, realtime=args.realtime or None)
        print(f"watching {spec}: type a question and press Enter, at any moment (Ctrl-D ends)", file=sys.stderr,
              flush=True)
        asked: queue.Queue[AnswerRequest | None] = queue.Queue()
        printer = threading.Thread(target=_print_answers, args=(asked, args.json), name="answer-printer", daemon=True)
        printer.start()
        for line in sys.stdin:
            question = line.strip()
            if not question:
                continue
            try:
                asked.put(stream.ask(question, mode=args.mode))
            except UserInputError as error:
                print(f"error: {error}", file=sys.stderr, flush=True)
        asked.put(None)
        printer.join()
        if args.until_end:
            stream.wait_ended()
        _print_counters(stream, args.json)
    finally:
        engine.close()
    return 0


def _print_answers(asked: queue.Queue[AnswerRequest | None], as_json: bool) -> None:
    while (request := asked.get()) is not None:
        try:
            for piece in request:
                if not as_json:
                    print(piece.text, end="", flush=True)
        except StreamVQAError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
        info = request.info.to_dict()
        if as_json:
            print(json.dumps({key: info[key] for key in ANSWER_KEYS}), flush=True)
        else:
            covered = info["frames_covered"]
            span = f"{covered[0]:.1f}-{covered[1]:.1f} s" if covered else "no frames"
            print(f"\n  [t={info['question_time']} s, frames {span}, lag {info['lag_s']} s, ttft {info['ttft_s']} s]",
                  flush=True)


def _print_counters(stream: StreamHandle, as_json: bool) -> None:
    stats: dict[str, Any] = stream.stats()
    stats.pop("memory", None)
    stats["frames_ingested"] = stats["frames_encoded"]  # the name the synchronous session uses
    if stats["end_reason"] and not as_json:
        print(f"stream ended: {stats['end_reason']}", file=sys.stderr)
    print(json.dumps({"session": stats}) if as_json else f"session: {stats}", flush=True)
