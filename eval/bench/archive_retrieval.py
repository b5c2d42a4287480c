"""Archive and retrieval costs: search latency vs archive size, archive bytes per hour, question latency.

1. *Search latency vs archive size*: a ``RunIndex`` (faiss flat inner product, recency correction,
   top-8, 8 resident blocks excluded) filled with ``--sizes`` random unit vectors of the real sizes of
   the chosen model: visual = the projector's output width, internal shared = KV heads x head dim,
   internal per-layer = layers x that. Latency does not depend on the vector values. Reported: median
   search time over ``--queries`` queries, and the mean time to add one block.
2. *Archive bytes per hour*: a real stream (H.264 file at 640x360, sampled at ``--fps``) through the
   model with a short window and no long-term memory, so every block that leaves the window is
   archived; the archive's own counters (RAM bytes / blocks, disk shard bytes / blocks) times blocks
   per hour.
3. *Question latency with retrieval vs without*, on the same session after ``--minutes`` of video:
   top-k 0 (no retrieval), a text question (internal retriever: one extra forward of the question to
   get its query states, search, load, re-rotate, attend), an image question (visual retriever: one
   vision-tower call on the image). Median of ``--repeats`` answers of ``--max-new-tokens`` tokens.

    python -m eval.bench.archive_retrieval --out eval/bench/results/archive_retrieval_cpu.json
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from eval.needle import encode_needles_video, needle_frame
from memory.retrieval.vector_index import RunIndex
from models.registry import load_model, make_tiny
from pipeline.config import StreamConfig
from pipeline.session import StreamSession

logger = logging.getLogger(__name__)

NEEDLE_COLOR = (230, 40, 230)


def search_latency(dim: int, n_blocks: int, queries: int, seed: int = 0) -> dict[str, float]:
    """Fill an index with ``n_blocks`` random unit vectors of ``dim``; time adds and top-8 searches."""
    rng = np.random.default_rng(seed)
    index = RunIndex(dim)
    vectors = rng.standard_normal((n_blocks, dim), dtype=np.float32)
    started = time.perf_counter()
    for block_id in tqdm(range(n_blocks), desc=f"index {n_blocks}x{dim}", unit="block", disable=None, leave=False):
        index.add(block_id, vectors[block_id])
    add_s = time.perf_counter() - started
    exclude = set(range(n_blocks - 8, n_blocks))  # the resident window
    times = []
    for _ in range(queries):
        query = rng.standard_normal(dim, dtype=np.float32)
        started = time.perf_counter()
        found = index.search(query, 8, exclude)
        times.append(time.perf_counter() - started)
        assert len(found) == 8
    return {"blocks": n_blocks, "dim": dim, "search_ms_median": round(1e3 * statistics.median(times), 3),
            "search_ms_max": round(1e3 * max(times), 3), "add_us_per_block": round(1e6 * add_s / n_blocks, 2)}


def stream_config(folder: Path, fps: float, window_frames: int, ram_mb: float, max_new_tokens: int) -> StreamConfig:
    config = StreamConfig().replace("source", fps=fps).replace("sampling", max_new_tokens=max_new_tokens)
    config = config.replace("memory", policy="sink_window", window_frames=window_frames, budget_tokens=0)
    return config.replace("archive", enabled=True, folder=str(folder), ram_mb=ram_mb, disk_mb=1 << 20)


def question_latency(
    model, video: Path, needle: tuple[float, float], config: StreamConfig, repeats: int, size: tuple[int, int]
) -> dict:
    """Ingest ``video``, then time answers with and without retrieval on the same memory."""
    session = StreamSession(model, config)
    session.watch(str(video))
    started = time.perf_counter()
    with tqdm(desc="ingest", unit="frame", disable=None, leave=False) as bar:
        while taken := session.ingest_step():
            bar.update(taken)
    ingest_s = time.perf_counter() - started
    question = "When did the colored flash appear?"
    image = needle_frame(NEEDLE_COLOR, size)
    top_k = session.recall.settings.top_k
    modes = {"no_retrieval": (0, None), "internal_text": (top_k, None), "visual_image": (top_k, image)}
    results = {}
    for _ in range(repeats):  # rounds alternate the modes so that machine noise hits all of them
        for mode, (k, query_image) in modes.items():
            session.recall.settings.top_k = k
            answer = session.ask(question, image=query_image)
            entry = results.setdefault(mode, {"total_s": [], "ttft_s": [], "tokens": [], "retrieved": None})
            entry["total_s"].append(answer.timing["total_s"])
            entry["ttft_s"].append(answer.timing["ttft_s"])
            entry["tokens"].append(answer.num_tokens)
            entry["retrieved"] = answer.retrieved
    session.recall.settings.top_k = top_k
    summary = {}
    for mode, entry in results.items():
        needle_frames = [t for t in entry["retrieved"] if needle[0] <= t < needle[1]]
        summary[mode] = {"total_s_median": round(statistics.median(entry["total_s"]), 4),
                         "ttft_s_median": round(statistics.median(entry["ttft_s"]), 4),
                         "tokens": entry["tokens"], "retrieved_frames": len(entry["retrieved"]),
                         "needle_frames_retrieved": len(needle_frames)}
    stats = session.stats()
    session.close()
    return {"ingest_s": round(ingest_s, 2), "frames": stats["ingest"]["frames_ingested"],
            "archive": stats["archive"], "memory_device_tokens": stats["memory"]["device_tokens"],
            "questions": summary}


def bytes_per_hour(archive: dict, fps: float, frames_per_chunk: int) -> dict[str, float]:
    blocks_per_hour = 3600 * fps / frames_per_chunk
    out = {"blocks_per_hour": blocks_per_hour}
    for tier in ("ram", "disk"):
        if archive[f"{tier}_blocks"]:
            per_block = archive[f"{tier}_bytes"] / archive[f"{tier}_blocks"]
            out[f"{tier}_bytes_per_block"] = round(per_block)
            out[f"{tier}_gib_per_hour"] = round(per_block * blocks_per_hour / 2**30, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small", choices=["tiny", "small"], help="random Qwen2.5-VL size")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 3600, 10000, 100000],
                        help="archive sizes (frame blocks) for the search latency (none: skip)")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--minutes", type=float, nargs="*", default=[1.0],
                        help="video lengths for question latency (none: skip)")
    parser.add_argument("--video-size", type=int, nargs=2, default=[640, 360], metavar=("W", "H"))
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--window-frames", type=int, default=16)
    parser.add_argument("--ram-mb", type=float, default=64.0, help="archive RAM budget (the rest goes to disk)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        checkpoint = make_tiny(tmp_path / "model", "qwen2_5_vl", args.size)
        model = load_model(str(checkpoint), device="cpu", dtype="float32", local_files_only=True)
        text = model.model.config.text_config
        kv_dim = text.num_key_value_heads * (text.hidden_size // text.num_attention_heads)
        dims = {"visual": text.hidden_size, "internal_shared": kv_dim, "internal_per_layer": kv_dim * model.num_layers}
        report = {
            "benchmark": "archive_retrieval", "date": date.today().isoformat(),
            "machine": platform.processor() or platform.machine(), "torch_threads": args.threads,
            "model": f"random qwen2_5_vl {args.size}", "vector_dims": dims, "args": vars(args),
            "search": {}, "streams": [],
        }
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        for kind, dim in dims.items():
            report["search"][kind] = [search_latency(dim, n, args.queries) for n in args.sizes]
            out.write_text(json.dumps(report, indent=1))  # written after every part: a long run keeps its figures
        for minutes in args.minutes:
            seconds = minutes * 60
            needle = (float(round(0.5 * seconds)), float(round(0.5 * seconds)) + 4.0)
            video = tmp_path / f"video-{minutes:g}m.mp4"
            size = tuple(args.video_size)
            encode_needles_video(video, seconds, args.fps, size, [(*needle, NEEDLE_COLOR)], seed=0)
            config = stream_config(tmp_path / f"archive-{minutes:g}m", args.fps, args.window_frames, args.ram_mb,
                                   args.max_new_tokens)
            result = question_latency(model, video, needle, config, args.repeats, size)
            result["minutes"] = minutes
            result["bytes_per_hour"] = bytes_per_hour(result["archive"], args.fps, model.frames_per_chunk)
            report["streams"].append(result)
            out.write_text(json.dumps(report, indent=1))
            logger.warning("%g min: %s", minutes, json.dumps(result))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
