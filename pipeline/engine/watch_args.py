"""The flags ``streamvqa watch`` adds for the engine (light imports: the parser is built before any model)."""

from __future__ import annotations

import argparse

from pipeline.engine.settings import DROP_POLICIES, QUESTION_MODES, EngineSettings


def add_watch_args(parser: argparse.ArgumentParser) -> None:
    """The engine's flags of ``streamvqa watch``."""
    parser.add_argument("--speed", type=float, help="with --realtime: play this many times faster (default 1)")
    parser.add_argument("--mode", choices=QUESTION_MODES, default="covered",
                        help="covered: wait for every frame up to the question time; now: answer at once")
    parser.add_argument("--max-wait", type=float, help="longest wait for a question's frames, seconds (default 10)")
    parser.add_argument("--drop-policy", choices=DROP_POLICIES, help="when encoding falls behind (default auto)")
    parser.add_argument("--queue-frames", type=int, help="capture queue size in frames (default 32)")
    parser.add_argument("--until-end", action="store_true",
                        help="after stdin closes, keep playing until the source ends before exiting")


def settings_from_args(args: argparse.Namespace) -> EngineSettings:
    values = {"speed": args.speed, "max_wait_s": args.max_wait, "drop_policy": args.drop_policy,
              "queue_frames": args.queue_frames}
    return EngineSettings(**{k: v for k, v in values.items() if v is not None})
