"""Ingest throughput and tokens per frame of every backbone family's random-init "small" config.

For each family: write its "small" random-weight checkpoint (``make_tiny --size small``: a 12-layer
768-wide language model with the family's real vocabulary table and an 8-layer 512-wide vision tower
of the family's architecture), decode a test-pattern video once at the family's frame size, then time
``StreamSession.feed`` on those frames (encode + prefill + memory bookkeeping; the source is left out
so that decoding does not blur the comparison between families). The memory window keeps every
frame, so every family does its full attention work. The same number of frames goes into each
forward call for every family. Rounds alternate between families (family A, B, ..., then A, B, ...
again) so that noise from other work on a shared machine hits every family alike; medians are reported.

Tokens per frame are measured from the stream itself: cache tokens written per frame (framing text
such as Qwen3-VL's timestamps and SmolVLM's frame headers included) and visual tokens per frame.

    python -m eval.bench.family_throughput --out eval/bench/results/family_throughput_cpu.json
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
from datetime import date
from pathlib import Path

import torch
from tqdm import tqdm

from eval.bench.ingest_throughput import decoded_frames, make_video
from models.registry import FAMILIES, load_model, make_tiny
from pipeline.config import StreamConfig
from pipeline.frames import Frame
from pipeline.session import StreamSession

logger = logging.getLogger(__name__)


def session_config(model, fps: float, frames_per_forward: int) -> StreamConfig:
    """Unbounded memory (every frame kept), ``frames_per_forward`` frames per forward call."""
    config = StreamConfig().replace("source", fps=fps)
    config = dataclasses.replace(config, memory=dataclasses.replace(config.memory, window_frames=None))
    return config.replace("ingest", chunks_per_forward=max(1, frames_per_forward // model.frames_per_chunk))


def run_once(model, frames: list[Frame], config: StreamConfig) -> tuple[float, int]:
    """Seconds to feed ``frames`` into a fresh session, and the cache tokens they wrote."""
    session = StreamSession(model, config)
    header = session.bank.cache.logical_length
    start = time.perf_counter()
    session.feed(frames)
    elapsed = time.perf_counter() - start
    written = session.bank.cache.logical_length - header
    session.close()
    return elapsed, written


def visual_tokens_per_frame(model, frames: list[Frame]) -> float:
    """Visual tokens (framing text excluded) per frame of one encoded chunk."""
    per_chunk = model.frames_per_chunk
    chunk = model.encode([f.rgb for f in frames[:per_chunk]], [f.timestamp for f in frames[:per_chunk]])[0]
    return int(chunk.embeds.shape[0]) / per_chunk


def prepare_family(family: str, args: argparse.Namespace, workdir: Path, video: Path) -> dict:
    """Load the family's small checkpoint, decode the video at its frame size, warm it up."""
    checkpoint = make_tiny(workdir / f"{family}-small", family, "small")
    model = load_model(
        str(checkpoint), device="cpu", dtype="float32", local_files_only=True, max_frame_pixels=args.max_frame_pixels
    )
    rgb, stamps = decoded_frames(model, video, args.fps)
    frames = [Frame(i, t, image) for i, (t, image) in enumerate(zip(stamps, rgb))]
    config = session_config(model, args.fps, args.frames_per_forward)
    run_once(model, frames[: args.frames_per_forward], config)  # warm-up
    return {"family": family, "model": model, "frames": frames, "config": config, "seconds": [], "written": 0}


def summary(entry: dict) -> dict:
    model, frames, config = entry["model"], entry["frames"], entry["config"]
    return {
        "family": entry["family"],
        "model": f"{entry['family']} random-init 'small' (random weights)",
        "parameters_m": round(sum(p.numel() for p in model.model.parameters()) / 1e6, 1),
        "frames": len(frames),
        "frame_size_hw": list(frames[0].rgb.shape[:2]),
        "frames_per_chunk": model.frames_per_chunk,
        "frames_per_forward": config.ingest.chunks_per_forward * model.frames_per_chunk,
        "visual_tokens_per_frame": round(visual_tokens_per_frame(model, frames), 2),
        "cache_tokens_per_frame": round(entry["written"] / len(frames), 2),
        "ingest_fps": round(len(frames) / statistics.median(entry["seconds"]), 2),
        "seconds": [round(s, 3) for s in entry["seconds"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--seconds", type=int, default=20, help="length of the test video")
    parser.add_argument("--fps", type=float, default=2.0, help="sampling rate")
    parser.add_argument("--video-size", type=int, nargs=2, default=[640, 360], metavar=("W", "H"))
    parser.add_argument("--frames-per-forward", type=int, default=8)
    parser.add_argument("--max-frame-pixels", type=int, default=448 * 252, help="pixel budget per frame (Qwen)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default="eval/bench/results/family_throughput_cpu.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    results = {
        "benchmark": "family_throughput",
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} {torch.get_num_threads()} torch threads, "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}",
        "torch": torch.__version__,
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "bench.mp4", args.seconds, tuple(args.video_size))
        entries = [prepare_family(family, args, Path(tmp), video) for family in args.families]
        for _ in tqdm(range(args.repeats), desc="rounds", disable=None):
            for entry in entries:
                elapsed, entry["written"] = run_once(entry["model"], entry["frames"], entry["config"])
                entry["seconds"].append(elapsed)
        results["runs"] = [summary(entry) for entry in entries]
        for run in results["runs"]:
            logger.info("%s", json.dumps(run))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))  # noqa: T201 - the benchmark's report


if __name__ == "__main__":
    main()
