"""Ingest throughput: the whole pipeline against the raw model forward on the same frames and chunking.

*Pipeline*: a real H.264 file (made with ffmpeg) read by the file source in its background thread,
sampled to ``--fps``, resized at decode time, then encode + prefill into the streaming memory with the
policy's bookkeeping: everything ``StreamSession.ingest()`` does.

*Session from RAM*: the same decoded frames fed to ``StreamSession.feed`` (the pipeline minus the
source), which separates our bookkeeping from decoding.

*Raw forward* (the limit): the same frames already decoded and resized in RAM, then our pixel
patchify, the vision tower and the language model with a plain ``DynamicCache`` and the same chunks
per forward call. No source, no memory bank, no policy.

Runs alternate (raw, pipeline, raw, pipeline, ...) so that machine noise hits both; the ratio of
medians is reported. Writes JSON; ``BENCHMARKS.md`` quotes it.

    python -m eval.bench.ingest_throughput --sizes tiny small --out eval/bench/results/ingest_cpu.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import statistics
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import DynamicCache

from models.registry import load_model, make_tiny
from pipeline.config import StreamConfig
from pipeline.frames import Frame
from pipeline.session import StreamSession
from pipeline.sources import FileSource
from pipeline.sources.ffmpeg_binary import ffmpeg_exe

logger = logging.getLogger(__name__)


def make_video(path: Path, seconds: int, size: tuple[int, int], fps: int = 30) -> Path:
    """An H.264 test pattern video of ``seconds`` at ``size`` (w, h)."""
    subprocess.run(
        [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
         f"testsrc2=size={size[0]}x{size[1]}:rate={fps}:duration={seconds}",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", str(path)],
        check=True,
    )
    return path


def run_pipeline(model, video: Path, config: StreamConfig) -> tuple[float, int]:
    """Seconds and frames for a session to ingest the whole file through the file source."""
    session = StreamSession(model, config)
    height, width = model.frame_size(*_native_size(video))
    source = FileSource(str(video), fps=config.source.fps, size=(width, height))
    start = time.perf_counter()
    session.watch(source)
    frames = session.ingest()
    elapsed = time.perf_counter() - start
    session.close()
    return elapsed, frames


def run_session_from_ram(model, frames: list[np.ndarray], stamps: list[float], config: StreamConfig) -> float:
    """Seconds for a session to ingest already-decoded frames (the pipeline minus the source)."""
    session = StreamSession(model, config)
    batch = [Frame(i, t, rgb) for i, (t, rgb) in enumerate(zip(stamps, frames))]
    start = time.perf_counter()
    session.feed(batch)
    elapsed = time.perf_counter() - start
    session.close()
    return elapsed


def _native_size(video: Path) -> tuple[int, int]:
    import decord

    reader = decord.VideoReader(str(video))
    height, width = reader[0].shape[:2]
    return height, width


def decoded_frames(model, video: Path, fps: float) -> tuple[list[np.ndarray], list[float]]:
    height, width = model.frame_size(*_native_size(video))
    with FileSource(str(video), fps=fps, size=(width, height)) as source:
        frames = list(source)
    return [f.rgb for f in frames], [f.timestamp for f in frames]


@torch.inference_mode()
def run_raw(model, frames: list[np.ndarray], stamps: list[float], frames_per_call: int) -> float:
    """Seconds for vision tower + LM forward over the frames with a plain DynamicCache."""
    from models.mrope import chunk_positions, text_positions
    from models.vision_prep import patchify_frames

    cache = DynamicCache(config=model.model.config)
    cursor = model.new_stream_state()
    header = torch.tensor([model._ids(model.header_text("You are a helpful assistant."))])
    start = time.perf_counter()
    model.language_model(
        inputs_embeds=model.embed_tokens(header),
        position_ids=text_positions(cursor, header.shape[1]).unsqueeze(1),
        past_key_values=cache,
        use_cache=True,
    )
    for k in range(0, len(frames), frames_per_call):
        batch = np.stack(frames[k : k + frames_per_call])
        pixels, n_chunks, grid_h, grid_w = patchify_frames(
            batch, model.image_mean, model.image_std, model.patch_size, model.merge_size, model.frames_per_chunk
        )
        merged = model.visual(pixels.to(model.dtype), grid_thw=torch.tensor([[n_chunks, grid_h, grid_w]])).pooler_output
        hw = (grid_h // model.merge_size, grid_w // model.merge_size)
        positions = torch.cat(
            [chunk_positions(cursor, hw, stamps[k + 2 * c], model.tokens_per_second) for c in range(n_chunks)], dim=1
        )
        model.language_model(
            inputs_embeds=merged.unsqueeze(0),
            position_ids=positions.unsqueeze(1),
            past_key_values=cache,
            use_cache=True,
        )
    return time.perf_counter() - start


def bench_size(size: str, args: argparse.Namespace, workdir: Path) -> dict:
    checkpoint = make_tiny(workdir / f"qwen2_5_vl-{size}", "qwen2_5_vl", size)
    model = load_model(
        str(checkpoint), device="cpu", dtype="float32", local_files_only=True, max_frame_pixels=args.max_frame_pixels
    )
    video = make_video(workdir / f"bench-{args.seconds}s.mp4", args.seconds, tuple(args.video_size))
    config = StreamConfig()
    config = config.replace("source", fps=args.fps)
    window = args.window_frames or None  # StreamConfig.replace ignores None, so set the section directly
    config = dataclasses.replace(config, memory=dataclasses.replace(config.memory, window_frames=window))
    config = config.replace("ingest", chunks_per_forward=args.chunks_per_forward)
    frames, stamps = decoded_frames(model, video, args.fps)
    frames_per_call = model.frames_per_chunk * args.chunks_per_forward
    run_raw(model, frames[:frames_per_call], stamps[:frames_per_call], frames_per_call)  # warm-up
    raw_s, ram_s, pipe_s = [], [], []
    for _ in tqdm(range(args.repeats), desc=f"{size}: raw/session/pipeline rounds", disable=None):
        raw_s.append(run_raw(model, frames, stamps, frames_per_call))
        ram_s.append(run_session_from_ram(model, frames, stamps, config))
        elapsed, n = run_pipeline(model, video, config)
        assert n == len(frames), f"pipeline ingested {n} frames, raw forward {len(frames)}"
        pipe_s.append(elapsed)
    n_frames = len(frames)
    chunk_tokens = model.encode(frames[:2], stamps[:2])[0].n_tokens
    raw_fps = n_frames / statistics.median(raw_s)
    pipe_fps = n_frames / statistics.median(pipe_s)
    ram_fps = n_frames / statistics.median(ram_s)
    return {
        "model": f"qwen2_5_vl random-init '{size}' (random weights)",
        "parameters_m": round(sum(p.numel() for p in model.model.parameters()) / 1e6, 1),
        "frames": n_frames,
        "frame_size_hw": list(frames[0].shape[:2]),
        "tokens_per_chunk": chunk_tokens,
        "frames_per_forward": frames_per_call,
        "raw_forward_fps": round(raw_fps, 2),
        "session_from_ram_fps": round(ram_fps, 2),
        "pipeline_fps": round(pipe_fps, 2),
        "ratio_session_from_ram_over_raw": round(ram_fps / raw_fps, 3),
        "ratio_pipeline_over_raw": round(pipe_fps / raw_fps, 3),
        "raw_seconds": [round(s, 3) for s in raw_s],
        "session_from_ram_seconds": [round(s, 3) for s in ram_s],
        "pipeline_seconds": [round(s, 3) for s in pipe_s],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"], choices=["tiny", "small"])
    parser.add_argument("--seconds", type=int, default=40, help="length of the test video")
    parser.add_argument("--fps", type=float, default=2.0, help="sampling rate")
    parser.add_argument("--video-size", type=int, nargs=2, default=[640, 360], metavar=("W", "H"))
    parser.add_argument("--chunks-per-forward", type=int, default=4)
    parser.add_argument("--window-frames", type=int, default=0,
                        help="memory window (0 = keep every frame: the same attention work as the raw forward)")
    parser.add_argument("--max-frame-pixels", type=int, default=448 * 252, help="pixel budget per frame")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default="eval/bench/results/ingest_cpu.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    results = {
        "benchmark": "ingest_throughput",
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} {torch.get_num_threads()} torch threads, "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}",
        "torch": torch.__version__,
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            results["runs"].append(bench_size(size, args, Path(tmp)))
            logger.info("%s", json.dumps(results["runs"][-1]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))  # noqa: T201 - the benchmark's report


if __name__ == "__main__":
    main()
