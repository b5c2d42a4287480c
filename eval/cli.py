"""``streamvqa eval ...``: convert, run, score, report, needle.

::

    streamvqa eval convert mlvu ../shared/benchmarks/mlvu --out mlvu.jsonl --video-root /data/MLVU
    streamvqa eval needle --minutes 1 5 --depths 0.1 0.5 0.9 --out needle/
    streamvqa eval run needle/manifest.jsonl --model /tmp/tiny --out runs/needle [--shard 1/4] [--limit 10]
    streamvqa eval run mlvu.jsonl --model Qwen/Qwen2.5-VL-7B-Instruct --out runs/mlvu --backend ray
    streamvqa eval score runs/needle
    streamvqa eval report runs/needle
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from pipeline.errors import UserInputError

logger = logging.getLogger(__name__)


def add_eval_parser(sub: Any, add_model_args: Any) -> None:
    """Register ``eval`` and its sub-commands on the top-level sub-parser collection."""
    parser = sub.add_parser("eval", help="batch evaluation: convert benchmarks, run, score, report, needle")
    commands = parser.add_subparsers(dest="eval_command", required=True)

    convert = commands.add_parser("convert", help="benchmark annotations -> manifest JSONL")
    convert.add_argument("benchmark", help="mlvu, videomme, egoschema, longvideobench, nextqa, activitynetqa, "
                                           "ovobench, streamingbench, rtvbench, rvs")
    convert.add_argument("src", help="annotation file, or a folder of them")
    convert.add_argument("--out", required=True, help="manifest to write (.jsonl)")
    convert.add_argument("--video-root", help="folder the benchmark's videos are in (paths are joined to it)")

    run = commands.add_parser("run", help="answer every question of a manifest, streaming each video once")
    run.add_argument("manifest")
    run.add_argument("--out", required=True, help="run folder (created; run again to resume)")
    run.add_argument("--shard", help="i/N: run only the i-th of N shards (by session; 1-based)")
    run.add_argument("--limit", type=int, help="stop after this many new answers")
    run.add_argument("--retry-errors", action="store_true", help="ask again questions that ended in an error")
    run.add_argument("--prompts", help="JSON file of prompt templates by benchmark and answer type (eval/prompts.py)")
    run.add_argument("--backend", choices=["local", "ray"], default="local")
    run.add_argument("--workers", type=int, help="Ray actors (default: one per GPU, else 2)")
    run.add_argument("--ray-address", help="address of a running Ray cluster (default: RAY_ADDRESS or a local one)")
    run.add_argument("--num-cpus", type=int, help="CPUs of the local Ray cluster started for this run")
    add_model_args(run)

    score = commands.add_parser("score", help="score a run folder (writes scores.json)")
    score.add_argument("run_dir")
    score.add_argument("--manifest", help="manifest (default: the one recorded in run.json)")
    score.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (0 = none)")
    score.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of random fallbacks")
    score.add_argument("--json", action="store_true", help="print the scores as JSON")
    score.add_argument("--judge-id", help="which judge's judgments to report (when several judged the run)")

    judge = commands.add_parser("judge", help="LLM-judge the open-ended answers of a run (resumable)")
    judge.add_argument("run_dir")
    judge.add_argument("--judge", required=True,
                       help="hf:PATH_OR_HUB_ID (local chat model) or openai:MODEL (with --base-url)")
    judge.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    judge.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    judge.add_argument("--manifest", help="manifest (default: the one recorded in run.json)")
    judge.add_argument("--device", default="auto", help="device of an hf: judge (auto, cpu, cuda)")
    judge.add_argument("--limit", type=int, help="stop after this many new judgments")
    judge.add_argument("--retry-errors", action="store_true", help="judge again questions whose judgment failed")

    serve = commands.add_parser("judge-serve", help="serve a local chat model as an OpenAI-compatible judge")
    serve.add_argument("path", help="hub id or folder of a chat model")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8008, help="port (0 = any free one)")
    serve.add_argument("--name", help="model name clients pass (default: PATH)")
    serve.add_argument("--device", default="auto")
    serve.add_argument("--max-seconds", type=float, help="stop serving after this long")

    tiny = commands.add_parser("make-tiny-judge", help="write a tiny random-weight chat model (offline mechanics)")
    tiny.add_argument("out_dir")

    report = commands.add_parser("report", help="Markdown report and PNG plots of a run folder")
    report.add_argument("run_dir")
    report.add_argument("--rescore", action="store_true", help="score again even if scores.json exists")
    report.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates when scoring")

    needle = commands.add_parser("needle", help="generate needle-in-a-haystack videos and their manifest")
    needle.add_argument("--minutes", type=float, nargs="+", required=True, help="haystack lengths in minutes")
    needle.add_argument("--depths", type=float, nargs="+", default=[0.1, 0.5, 0.9], help="needle depths in [0, 1]")
    needle.add_argument("--needle-seconds", type=float, nargs="+", default=[2.0], help="needle lengths (s)")
    needle.add_argument("--deltas", type=float, nargs="+", default=[0.0, 5.0],
                        help="ask streaming questions this many seconds after the needle")
    needle.add_argument("--fps", type=float, default=2.0, help="frame rate of the videos")
    needle.add_argument("--size", default="160x120", help="WIDTHxHEIGHT of the videos")
    needle.add_argument("--seed", type=int, default=0)
    needle.add_argument("--out", required=True, help="output folder (videos/ and manifest.jsonl)")


def cmd_eval(args: argparse.Namespace) -> int:
    handlers = {"convert": _convert, "run": _run, "score": _score, "report": _report, "needle": _needle,
                "judge": _judge, "judge-serve": _judge_serve, "make-tiny-judge": _make_tiny_judge}
    return handlers[args.eval_command](args)


def _convert(args: argparse.Namespace) -> int:
    from eval.converters import convert
    from eval.manifest import write_manifest

    result = convert(args.benchmark, args.src, args.video_root)
    written = write_manifest(result.records, args.out)
    for line in result.summary_lines():
        print(line)
    print(f"wrote {written} question(s) to {args.out}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from eval.runner import RunOptions, run_local
    from eval.sessions import parse_shard
    from pipeline.cli import config_from_args

    if args.limit is not None and args.limit < 0:
        raise UserInputError(f"--limit must be >= 0, got {args.limit}")
    config = config_from_args(args)
    options = RunOptions(Path(args.manifest), Path(args.out), parse_shard(args.shard) if args.shard else None,
                         args.limit, args.retry_errors, Path(args.prompts) if args.prompts else None)
    if args.backend == "ray":
        from eval.ray_backend import run_ray

        summary = run_ray(options, config, workers=args.workers, address=args.ray_address, num_cpus=args.num_cpus)
    else:
        summary = run_local(options, config)
    print(f"{summary.written} new answer(s) ({summary.errors} error(s)); {summary.already_done} of "
          f"{summary.total} were already done; {summary.elapsed_s:.1f} s; predictions in {args.out}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from eval.scoring.run_scores import score_run

    scores = score_run(args.run_dir, args.manifest, args.bootstrap, args.seed, args.judge_id)
    if args.json:
        print(json.dumps({k: v for k, v in scores.items() if k != "per_question"}, indent=2))
        return 0
    answered = scores["predictions"] - scores["errors"]
    print(f"{answered} of {scores['questions']} question(s) answered ({scores['errors']} more ended in an error)")
    for name, bench in scores["benchmarks"].items():
        metrics = ", ".join(
            f"{metric} {100 * value:.1f} [{100 * bench['intervals'][metric][0]:.1f}, "
            f"{100 * bench['intervals'][metric][1]:.1f}]" for metric, value in bench["metrics"].items())
        print(f"{name}: {metrics}; strict {100 * bench['strict_accuracy']:.1f}; parse failures "
              f"{100 * bench['parse_failure_rate']:.1f}% (strict {100 * bench['strict_parse_failure_rate']:.1f}%)")
    for name, judged in scores["judged"].items():
        metrics = judged["metrics"]
        print(f"{name} judged by {judged['judge']}: accuracy {100 * metrics['judge_accuracy']:.1f}, score "
              f"{metrics['judge_score']:.2f}/5 ({judged['judged']} judged, {judged['unparsed']} unreadable "
              f"verdict(s), {judged['judge_errors']} not judged, {judged['unanswered']} unanswered)")
    print(f"wrote {Path(args.run_dir) / 'scores.json'}")
    return 0


def _judge(args: argparse.Namespace) -> int:
    from eval.judge.backends import make_judge
    from eval.judge.stage import judge_run

    if args.limit is not None and args.limit < 0:
        raise UserInputError(f"--limit must be >= 0, got {args.limit}")
    judge = make_judge(args.judge, args.base_url, args.api_key_env, args.device)
    summary = judge_run(args.run_dir, judge, args.manifest, args.retry_errors, args.limit)
    print(f"{summary.written} new judgment(s) by {summary.judge_id} ({summary.errors} error(s), {summary.unparsed} "
          f"unreadable verdict(s)); {summary.already_done} of {summary.to_judge} answered open-ended question(s) "
          f"were already judged; {summary.path}")
    return 0


def _judge_serve(args: argparse.Namespace) -> int:
    from eval.judge.server import serve

    serve(args.path, args.host, args.port, args.name, args.device, max_seconds=args.max_seconds,
          announce=lambda line: print(line, flush=True))
    return 0


def _make_tiny_judge(args: argparse.Namespace) -> int:
    from eval.judge.tiny import make_tiny_judge

    print(f"wrote a random-weight judge (its verdicts are noise) to {make_tiny_judge(args.out_dir)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from eval.report import make_report

    report = make_report(args.run_dir, rescore=args.rescore, n_boot=args.bootstrap)
    print(f"wrote {report} and plots in {report.parent / 'plots'}")
    return 0


def _needle(args: argparse.Namespace) -> int:
    from eval.needle import NeedleSpec, generate

    try:
        width, height = (int(x) for x in args.size.lower().split("x"))
    except ValueError:
        raise UserInputError(f"--size {args.size!r} is not WIDTHxHEIGHT: pass e.g. --size 160x120") from None
    spec = NeedleSpec(args.minutes, args.depths, args.needle_seconds, args.deltas, args.fps, (width, height), args.seed)
    manifest, videos, questions = generate(spec, args.out)
    print(f"wrote {videos} video(s) and {questions} question(s); manifest {manifest}")
    return 0
