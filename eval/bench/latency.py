"""Answer latency vs stream length with bounded memory, against re-encoding sampled frames; ingest while answering.

Three measurements on a random-init Qwen2.5-VL (the default architecture; ``--run SIZE:PIXELS:MINUTES``):

1. *Streaming* (ours): one :class:`~pipeline.session.StreamSession` with a bounded memory
   (``--policy``, ``--window-frames``, ``--budget-tokens``) ingests a stream at 1 fps; at each
   checkpoint (e.g. 1, 10, 60, 120 minutes of stream) the same fixed questions are asked; time to
   first token and total answer time are recorded (median over the questions).
2. *Re-encode baseline*: at the same checkpoints, the same questions answered the way a user of plain
   transformers would: the same model re-encodes ``N`` frames uniformly sampled from everything seen
   so far (``--baseline-frames``, default 32 and 64) in one forward and decodes greedily with
   ``generate`` (:mod:`eval.bench.latency_baseline`). Methods alternate question by question.
3. *Ingest while answering* (:mod:`eval.bench.latency_engine`): the real-time engine ingests a stream
   as fast as it can while long answers are generated; ingest throughput while answering vs idle and
   the longest gap between ingest steps during an answer.

Frames: a real H.264 test pattern encoded by ffmpeg, decoded once (``--clip-seconds`` at 1 fps) at
the model's frame size and cycled from RAM with increasing timestamps (content does not change speed
with random weights; the stream is as long as the checkpoints ask for). TTFT is time to the first
generated *token*: random weights emit ids the tiny tokenizer decodes to nothing, so "first text"
would mean "end of answer".

    python -m eval.bench.latency --run small:16464:1,10,60,120 --out eval/bench/results/latency.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import AutoProcessor

from eval.bench.ingest_throughput import decoded_frames, make_video
from eval.bench.latency_baseline import ReencodeBaseline, uniform_indices
from eval.bench.latency_engine import ingest_while_answering
from models.protocol import SamplingParams
from models.registry import load_model, make_tiny
from pipeline.config import StreamConfig
from pipeline.frames import Frame
from pipeline.session import StreamSession

logger = logging.getLogger(__name__)

QUESTIONS = [
    "What is happening in the video right now?",
    "What color is the large moving object?",
    "How many distinct objects have appeared so far?",
    "Describe the scene at the beginning of the stream.",
    "Did anything change in the last minute? Answer briefly.",
]
FPS = 1.0


@dataclass(frozen=True)
class RunSpec:
    """One model configuration: size (``tiny``/``small``), pixel budget per frame, checkpoints in minutes."""

    size: str
    max_frame_pixels: int
    minutes: tuple[float, ...]

    @classmethod
    def parse(cls, text: str) -> RunSpec:
        """``SIZE:PIXELS:M1,M2,...`` e.g. ``small:16464:1,10,60,120``."""
        try:
            size, pixels, minutes = text.split(":")
            return cls(size, int(pixels), tuple(sorted(float(m) for m in minutes.split(","))))
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"--run {text!r}: expected SIZE:PIXELS:M1,M2,... ({error})") from error


class FrameTape:
    """An endless 1-fps stream cycling a decoded clip held in RAM: frame ``i`` is at ``i / FPS`` s."""

    def __init__(self, clip: list[np.ndarray]) -> None:
        self.clip = clip

    def rgb(self, index: int) -> np.ndarray:
        return self.clip[index % len(self.clip)]

    def frames(self, start: int, stop: int) -> list[Frame]:
        return [Frame(i, i / FPS, self.rgb(i)) for i in range(start, stop)]


def stream_config(args: argparse.Namespace) -> StreamConfig:
    """Bounded memory, ``--chunks-per-forward`` chunks per forward call, 1 fps."""
    config = StreamConfig().replace("source", fps=FPS).replace("ingest", chunks_per_forward=args.chunks_per_forward)
    memory = dataclasses.replace(
        config.memory, policy=args.policy, window_frames=args.window_frames, budget_tokens=args.budget_tokens
    )
    return dataclasses.replace(config, memory=memory)


def ours(session: StreamSession, question: str, sampling: SamplingParams) -> dict:
    """Time one streamed answer: first generated token and end, from the moment the question is asked."""
    start = time.perf_counter()
    first = None
    tokens = 0
    for piece in session.ask_stream(question, sampling=sampling):
        if piece.token_ids and first is None:
            first = time.perf_counter()
        tokens += len(piece.token_ids)
    end = time.perf_counter()
    return {"ttft_s": (first or end) - start, "total_s": end - start, "num_tokens": tokens}


def baseline(method: ReencodeBaseline, tape: FrameTape, seen: int, n: int, question: str, max_new: int) -> dict:
    """Time one answer of the re-encode baseline over ``n`` frames sampled from the ``seen`` so far."""
    frames = [tape.rgb(int(i)) for i in uniform_indices(seen, n)]
    timing = method.answer(frames, seen / FPS, question, max_new)
    return dataclasses.asdict(timing)


def summarise(samples: list[dict]) -> dict:
    """Medians (and the raw samples) of one method at one checkpoint."""
    out = {
        "ttft_s_median": round(statistics.median(s["ttft_s"] for s in samples), 4),
        "total_s_median": round(statistics.median(s["total_s"] for s in samples), 4),
        "num_tokens_median": statistics.median(s["num_tokens"] for s in samples),
    }
    out["ttft_s"] = [round(s["ttft_s"], 4) for s in samples]
    out["total_s"] = [round(s["total_s"], 4) for s in samples]
    if "prompt_tokens" in samples[0]:
        out["prompt_tokens"] = samples[0]["prompt_tokens"]
    return out


def method_order(question_index: int, names: list[str]) -> list[str]:
    """Rotate which method goes first, question by question, so drift hits every method alike."""
    k = question_index % len(names)
    return names[k:] + names[:k]


def checkpoint_round(
    session: StreamSession, base: ReencodeBaseline, tape: FrameTape, seen: int, args: argparse.Namespace
) -> dict[str, dict]:
    """Every question by every method at this stream length, alternating."""
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens)
    names = ["streaming", *[f"reencode_{n}" for n in args.baseline_frames]]
    samples: dict[str, list[dict]] = {name: [] for name in names}
    for q, question in enumerate(QUESTIONS[: args.questions]):
        for name in method_order(q, names):
            if name == "streaming":
                samples[name].append(ours(session, question, sampling))
            else:
                n = int(name.split("_")[1])
                samples[name].append(baseline(base, tape, seen, n, question, args.max_new_tokens))
    return {name: summarise(values) for name, values in samples.items()}


def warm_up(model, base: ReencodeBaseline, tape: FrameTape, config: StreamConfig, args: argparse.Namespace) -> None:
    """One unmeasured answer per method on a throwaway session (first-call allocations, lazy init)."""
    session = StreamSession(model, config)
    session.feed(tape.frames(0, 2 * config.ingest.chunks_per_forward * model.frames_per_chunk))
    ours(session, QUESTIONS[0], SamplingParams(max_new_tokens=2))
    session.close()
    for n in args.baseline_frames:
        baseline(base, tape, 8, n, QUESTIONS[0], 2)


def bench_run(
    spec: RunSpec, args: argparse.Namespace, workdir: Path, video: Path, save: Callable[[dict], None]
) -> dict:
    """The length sweep (and the engine measurement) for one model configuration.

    ``save`` is called with the run's results so far after every checkpoint (a long run that is
    stopped keeps what it measured)."""
    checkpoint = make_tiny(workdir / f"qwen2_5_vl-{spec.size}", "qwen2_5_vl", spec.size)
    model = load_model(
        str(checkpoint), device="cpu", dtype="float32", local_files_only=True, max_frame_pixels=spec.max_frame_pixels
    )
    processor = AutoProcessor.from_pretrained(str(checkpoint), local_files_only=True)
    base = ReencodeBaseline(model.model, processor)  # the same weights, the same frames
    clip, _ = decoded_frames(model, video, FPS)
    tape = FrameTape(clip)
    config = stream_config(args)
    warm_up(model, base, tape, config, args)
    session = StreamSession(model, config)
    targets = [int(round(m * 60 * FPS)) for m in spec.minutes]
    fed, ingest_s = 0, 0.0
    checkpoints: list[dict] = []
    batch = config.ingest.chunks_per_forward * model.frames_per_chunk
    probe = model.encode(clip[:2], [0.0, 1.0])[0]
    result = {
        "model": f"qwen2_5_vl random-init '{spec.size}' (random weights)",
        "parameters_m": round(sum(p.numel() for p in model.model.parameters()) / 1e6, 1),
        "max_frame_pixels": spec.max_frame_pixels,
        "frame_size_hw": list(clip[0].shape[:2]),
        "visual_tokens_per_frame": probe.n_tokens / model.frames_per_chunk,
        "frames_per_forward": batch,
        "checkpoints": checkpoints,
        "complete": False,
    }
    with tqdm(total=targets[-1], desc=f"{spec.size} stream frames", unit="frame", disable=None) as bar:
        for minutes, target in zip(spec.minutes, targets):
            segment_start = time.perf_counter()
            for start in range(fed, target, batch):
                stop = min(start + batch, target)
                session.feed(tape.frames(start, stop))
                bar.update(stop - start)
            segment_s = time.perf_counter() - segment_start
            ingest_segment = target - fed
            fed = target
            ingest_s += segment_s
            memory = session.bank.stats().as_dict()
            logger.info("%s: %d frames streamed (%.1f frames/s); asking at %.1f min", spec.size, fed,
                        ingest_segment / max(segment_s, 1e-9), minutes)
            methods = checkpoint_round(session, base, tape, fed, args)
            checkpoints.append({
                "minutes": minutes,
                "frames_seen": fed,
                "segment_ingest_fps": round(ingest_segment / segment_s, 2) if segment_s > 0 else None,
                "memory_device_tokens": memory["device_tokens"],
                "memory_device_bytes": memory["device_bytes"],
                "memory_resident_frames": memory["resident_frames"],
                "methods": methods,
            })
            logger.info("%s", json.dumps({k: v["ttft_s_median"] for k, v in methods.items()}))
            result["stream_ingest_fps"] = round(fed / ingest_s, 2)
            add_ratios(checkpoints, args.baseline_frames)
            save(result)
    session.close()
    if not args.skip_engine:
        result["ingest_while_answering"] = ingest_while_answering(model, tape, config, args)
    result["complete"] = True
    save(result)
    return result


def add_ratios(checkpoints: list[dict], baseline_frames: list[int]) -> None:
    """Streaming medians over the first checkpoint's, and baseline medians over streaming, per checkpoint."""
    first = checkpoints[0]["methods"]["streaming"]
    for entry in checkpoints:
        streaming = entry["methods"]["streaming"]
        entry["streaming_ttft_over_first"] = round(streaming["ttft_s_median"] / first["ttft_s_median"], 3)
        entry["streaming_total_over_first"] = round(streaming["total_s_median"] / first["total_s_median"], 3)
        for n in baseline_frames:
            other = entry["methods"][f"reencode_{n}"]
            entry[f"ttft_speedup_vs_reencode_{n}"] = round(other["ttft_s_median"] / streaming["ttft_s_median"], 2)
            entry[f"total_speedup_vs_reencode_{n}"] = round(other["total_s_median"] / streaming["total_s_median"], 2)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, write the JSON (and a PNG plot when matplotlib is installed); returns the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=RunSpec.parse, action="append", dest="runs",
                        help="SIZE:PIXELS:MINUTES, e.g. small:16464:1,10,60,120 (repeatable)")
    parser.add_argument("--policy", default="key_norm")
    parser.add_argument("--window-frames", type=int, default=16)
    parser.add_argument("--budget-tokens", type=int, default=256, help="long-term tokens per layer and KV head")
    parser.add_argument("--chunks-per-forward", type=int, default=2)
    parser.add_argument("--questions", type=int, default=5, help=f"questions per checkpoint (<= {len(QUESTIONS)})")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--baseline-frames", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--clip-seconds", type=int, default=120, help="length of the decoded test clip")
    parser.add_argument("--video-size", type=int, nargs=2, default=[640, 360], metavar=("W", "H"))
    parser.add_argument("--engine-answers", type=int, default=3, help="long answers during the engine run")
    parser.add_argument("--engine-max-new-tokens", type=int, default=64)
    parser.add_argument("--engine-idle-s", type=float, default=8.0, help="idle ingest before and between answers")
    parser.add_argument("--skip-engine", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared machine, 2 threads stall each other at every small op)")
    parser.add_argument("--out", default="eval/bench/results/latency.json")
    parser.add_argument("--plot", default=None, help="PNG path (default: --out with .png)")
    args = parser.parse_args(argv)
    args.runs = args.runs or [RunSpec.parse("small:16464:1,10,60,120")]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    results: dict = {
        "benchmark": "latency",
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} {torch.get_num_threads()} torch threads, "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}",
        "torch": torch.__version__,
        "settings": {k: (v if k != "runs" else [dataclasses.asdict(r) for r in v]) for k, v in vars(args).items()},
        "questions": QUESTIONS[: args.questions],
        "ttft_definition": "seconds from the question to the first generated token (random weights decode to no text)",
        "frames": "H.264 testsrc2 clip made with ffmpeg, decoded once at 1 fps and cycled from RAM",
        "runs": [],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(run: dict | None = None, index: int | None = None) -> None:
        if run is not None:
            results["runs"][index] = run
        results["wall_s"] = round(time.perf_counter() - started, 1)
        out.write_text(json.dumps(results, indent=2) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "clip.mp4", args.clip_seconds, tuple(args.video_size))
        for index, spec in enumerate(args.runs):
            results["runs"].append({"model": spec.size, "complete": False})
            save(bench_run(spec, args, Path(tmp), video, lambda run, i=index: save(run, i)), index)
    logger.info("wrote %s", out)
    try:
        from eval.bench.latency_plot import plot
    except ImportError:  # matplotlib is optional
        logger.info("matplotlib is not installed: no plot")
    else:
        plot(results, Path(args.plot) if args.plot else out.with_suffix(".png"))
    return results


if __name__ == "__main__":
    main()
