"""The ``streamvqa`` command line: ask, watch, make-tiny, models, policies.

User errors (bad file, dead URL, empty question, unknown model...) print one line, ``error: ...``,
and exit with status 2; anything else is a bug and keeps its traceback (status 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence

import numpy as np

from eval.cli import add_eval_parser, cmd_eval
from pipeline.config import DEFAULT_MODEL_ID, StreamConfig
from pipeline.engine.watch_args import add_watch_args
from pipeline.errors import SourceError, UserInputError

logger = logging.getLogger("streamvqa")


_BYTE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_bytes(text: str) -> int:
    """``"4096"``, ``"512K"``, ``"64M"``, ``"2G"`` (binary units) -> bytes."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:] in _BYTE_UNITS else ""
    number = value[: len(value) - len(unit)]
    try:
        return int(float(number) * _BYTE_UNITS[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: write bytes like 4096, 512K, 64M or 2G") from None


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help=f"hub id or local checkpoint folder (default {DEFAULT_MODEL_ID})")
    parser.add_argument("--config", help="JSON config file (defaults < file < flags)")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"])
    parser.add_argument("--max-frame-pixels", type=int, help="most pixels per frame after resizing")
    parser.add_argument("--fps", type=float, help="frames sampled per second of video (default 1)")
    parser.add_argument("--policy", help="memory policy (see `streamvqa policies`)")
    parser.add_argument("--window-frames", type=int, help="frames in the short-term window (full precision)")
    parser.add_argument("--budget-tokens", type=int, help="long-term tokens kept per layer and head")
    parser.add_argument(
        "--budget-bytes", type=parse_bytes, help="bytes of full-precision long-term memory, all layers (e.g. 512M, 2G)"
    )
    parser.add_argument("--chunks-per-forward", type=int, help="temporal chunks per forward call")
    parser.add_argument("--max-new-tokens", type=int, help="longest answer in tokens")
    parser.add_argument("--temperature", type=float, help="0 = greedy (default)")
    parser.add_argument("--top-p", type=float, help="nucleus sampling mass")
    parser.add_argument("--seed", type=int, help="sampling seed")
    parser.add_argument("--system-prompt", help="system turn at the head of the stream")


def _add_archive_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--archive", nargs="?", const="", metavar="DIR",
                        help="archive frames that leave the window and retrieve them per question; "
                             "DIR adds a disk tier there (default: RAM only)")
    parser.add_argument("--archive-ram-mb", type=float, help="archive CPU RAM budget in MiB (default 2048)")
    parser.add_argument("--archive-disk-mb", type=float, help="archive disk budget in MiB (default 20480)")
    parser.add_argument("--retriever", choices=["auto", "internal", "visual"],
                        help="auto (default): image questions visual, text questions internal")
    parser.add_argument("--top-k", type=int, help="archived frame blocks retrieved per answer (default 8)")
    parser.add_argument("--chunk-blocks", type=int, help="consecutive frame blocks retrieved together (default 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamvqa", description="Streaming video question answering.")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer one question about a video file or stream")
    ask.add_argument(
        "video", nargs="?", help="video file, URL (rtsp/http/udp/...), or webcam index (optional with --resume)"
    )
    ask.add_argument("--question", "-q", required=True)
    ask.add_argument("--at", type=float, help="question time in seconds (default: after the whole video)")
    ask.add_argument("--start", type=float, help="first second of the clip")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--image", help="image attached to the question (\"when did this appear?\"); needs --archive")
    _add_archive_args(ask)
    ask.add_argument("--save-session", metavar="DIR", help="after answering, save the stream's state to DIR")
    ask.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the session saved in DIR: VIDEO (the same video) is ingested from where its clock "
        "stopped; without VIDEO, just answer",
    )
    _add_model_args(ask)

    watch = sub.add_parser("watch", help="stream a video into memory; type questions on stdin while it plays")
    watch.add_argument("source", help="video file, URL, or webcam index")
    watch.add_argument("--realtime", action="store_true", help="pace files at their real speed")
    watch.add_argument("--json", action="store_true", help="one JSON line per answer, then the session counters")
    add_watch_args(watch)
    _add_archive_args(watch)
    _add_model_args(watch)

    tiny = sub.add_parser("make-tiny", help="write a tiny random-weight checkpoint (offline tests and demos)")
    tiny.add_argument("out_dir")
    tiny.add_argument("--family", default="qwen2_5_vl", help="model_type of the architecture")
    tiny.add_argument("--size", default="tiny", choices=["tiny", "small"],
                      help="tiny: ~0.2M parameters for tests; small: ~220M for CPU throughput runs")

    sub.add_parser("models", help="list supported model families")
    sub.add_parser("policies", help="list memory policies")
    add_eval_parser(sub, _add_model_args)
    return parser


def config_from_args(args: argparse.Namespace, base: StreamConfig | None = None) -> StreamConfig:
    """Defaults (or ``base``), then ``--config FILE``, then flags."""
    config = StreamConfig.from_file(args.config) if args.config else (base or StreamConfig())
    try:
        config = config.replace(
            "model", model=args.model, device=args.device, dtype=args.dtype, max_frame_pixels=args.max_frame_pixels
        )
        config = config.replace(
            "source",
            fps=args.fps,
            start=getattr(args, "start", None),
            end=getattr(args, "at", None),
            realtime=getattr(args, "realtime", None) or None,
        )
        config = config.replace(
            "memory",
            policy=args.policy,
            window_frames=args.window_frames,
            budget_tokens=args.budget_tokens,
            budget_bytes=args.budget_bytes,
        )
        config = config.replace("ingest", chunks_per_forward=args.chunks_per_forward)
        archive_dir = getattr(args, "archive", None)
        config = config.replace(
            "archive",
            enabled=True if archive_dir is not None else None,
            folder=archive_dir or None,
            ram_mb=getattr(args, "archive_ram_mb", None),
            disk_mb=getattr(args, "archive_disk_mb", None),
            retriever=getattr(args, "retriever", None),
            top_k=getattr(args, "top_k", None),
            chunk_blocks=getattr(args, "chunk_blocks", None),
        )
        config = config.replace("question", system_prompt=args.system_prompt)
        config = config.replace(
            "sampling",
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_p=args.top_p,
            seed=args.seed,
        )
    except ValueError as error:
        raise UserInputError(str(error)) from error
    return config


def _source_spec(text: str) -> str | int:
    """The source argument as ``open_source`` takes it; a local path is checked at once.

    Checking a missing or empty file before the model loads gives the user the error in a second
    rather than after a multi-gigabyte load.
    """
    from pipeline.sources.specs import camera_index, check_video_path, is_stdin, url_scheme

    index = camera_index(text)
    if index is not None:
        return index
    if not is_stdin(text) and url_scheme(text) is None:
        check_video_path(text)
    return text


def _resumed_config(args: argparse.Namespace) -> StreamConfig:
    """The saved session's configuration, then flags; the clip ends at ``--at`` (not the saved end)."""
    from pipeline.persist import saved_config

    if args.config:
        raise UserInputError("--config cannot be combined with --resume (the session keeps its saved config)")
    saved = saved_config(args.resume)
    config = config_from_args(args, base=saved)
    start = saved.source.start if args.start is None else args.start
    return dataclasses.replace(config, source=dataclasses.replace(config.source, start=start, end=args.at))


def cmd_ask(args: argparse.Namespace) -> int:
    from pipeline.videoqa import VideoQA

    if args.video is None and not args.resume:
        raise UserInputError("pass a VIDEO to ask about (or --resume DIR to answer from a saved session)")
    config = _resumed_config(args) if args.resume else config_from_args(args)
    if not args.question.strip():
        raise UserInputError("the question is empty: pass --question 'What happens?'")
    spec = _source_spec(args.video) if args.video is not None else None
    image = _read_image(args.image) if args.image else None
    if image is not None and not config.archive.enabled:
        raise UserInputError("--image searches the archive: add --archive (or --archive DIR)")
    qa = VideoQA.from_pretrained(config=config)
    session = qa.resume(args.resume, config) if args.resume else qa.session()
    with session:
        if spec is not None:
            _ingest_video(session, spec, resume=bool(args.resume))
        answer = session.ask(args.question, at=args.at, image=image)
        result = answer.to_dict()
        result["model"] = config.model.model
        result["ingest"] = session.counters.as_dict()
        if args.save_session:
            result["session_saved"] = str(session.save(args.save_session))
    if args.json:
        print(json.dumps(result))
    else:
        print(answer.answer)
    return 0


def _read_image(path: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB from an image file (png, jpg, ...); a clear error when it cannot be read."""
    import cv2

    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise UserInputError(f"cannot read the image {path}: pass an existing PNG or JPEG file")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _ingest_video(session, spec: str | int, resume: bool) -> None:  # noqa: ANN001 - a StreamSession
    """Watch ``spec`` (a resumed session continues where its clock stopped) and ingest all of it."""
    from tqdm import tqdm

    source = session.resume_watch(spec) if resume else session.watch(spec)
    total = source.describe().get("frames")
    with tqdm(total=total, unit="frame", desc="ingest", disable=None, file=sys.stderr) as bar:
        try:
            while taken := session.ingest_step():
                bar.update(taken)
        except SourceError as error:
            if not session.counters.frames_ingested and not session.stats()["buffered_frames"]:
                raise
            print(f"warning: {error}; answering from the frames read before it", file=sys.stderr)


def cmd_watch(args: argparse.Namespace) -> int:
    from pipeline.engine.watch_cli import run_watch

    return run_watch(args, config_from_args(args), _source_spec(args.source))


def cmd_make_tiny(args: argparse.Namespace) -> int:
    from models.registry import make_tiny

    out = make_tiny(args.out_dir, args.family, args.size)
    print(f"wrote a {args.size} random-weight {args.family} checkpoint to {out} (answers from it are noise)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from models.random_configs import RANDOM_CONFIGS, RANDOM_PREFIX
    from models.registry import FAMILIES

    print(f"{'family':16s} {'model':16s} {'frame (h x w)':14s} tokens/frame")
    for name, fam in FAMILIES.items():
        height, width = fam.default_frame_hw
        print(f"{name:16s} {fam.description:16s} {f'{height} x {width}':14s} {fam.tokens_per_frame:g}")
    print("frame size for a 16:9 640x360 source at the default 448x448 pixel budget")
    print(f"\nrandom-weight real-size configs (--model {RANDOM_PREFIX}NAME; speed and memory only, answers are noise):")
    for name, entry in RANDOM_CONFIGS.items():
        print(f"  {RANDOM_PREFIX}{name:22s} {entry.family:16s} {entry.published_params_b:g}B parameters")
    return 0


def cmd_policies(args: argparse.Namespace) -> int:
    from memory.policies import describe_policies

    for name, line in describe_policies().items():
        print(f"{name:22s} {line}")
    return 0


COMMANDS = {
    "ask": cmd_ask,
    "watch": cmd_watch,
    "make-tiny": cmd_make_tiny,
    "models": cmd_models,
    "policies": cmd_policies,
    "eval": cmd_eval,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.getLevelName(args.log_level.upper())
    if not isinstance(level, int):
        print(f"error: unknown --log-level {args.log_level!r}: use DEBUG, INFO, WARNING or ERROR", file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if level > logging.INFO:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    try:
        return COMMANDS[args.command](args)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
