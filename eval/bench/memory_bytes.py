"""Bytes per hour of video for each memory policy, at the real dimensions of Qwen2.5-VL-7B.

*Measured*: a real H.264 file (made with ffmpeg, 448x448, a few minutes) is streamed through the
whole pipeline (file source, 0.5 fps, tiny random-weight Qwen2.5-VL at the 7B's 448 x 448 pixel
budget) with each policy; the bank's tier counts are read at the end: sinks, short-term,
full-precision long-term and low-precision tokens, visual tokens written and dropped before the LLM.
The tiny model's grid is coarser than the 7B's (it has its own patch size), so per-frame token counts
are scaled to the 7B's 128 tokens per frame; fractions (what token_drop writes) are kept as measured.

*Extrapolated exactly*: bytes are ``tokens x bytes per token`` of each tier at the 7B's dimensions
(28 layers, 4 KV heads, head_dim 128, bf16 = 57,344 B per full-precision token; the int4 tier at
group 32 with float16 scale and zero keeps the first and last layers at bf16 = 20,736 B). The short-
term and full-precision long-term tiers are bounded (steady state after the window and the budget
have filled, checked below); a tier that keeps everything else (the full cache; ``mixed_precision``
with no low-precision budget) grows with the written tokens, extrapolated at the measured rate of
written visual tokens per second (this is where the video content matters: ``token_drop`` writes only
what changed). The reference: ReKV keeps ~18.8 GB per hour offloaded for a 7B model.

    python -m eval.bench.memory_bytes --minutes 4 --out eval/bench/results/memory_bytes.json
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import torch
from tqdm import tqdm

from memory.policies import MixedPrecision, Policy, build_policy
from models.registry import load_model, make_tiny
from pipeline.config import StreamConfig
from pipeline.session import StreamSession
from pipeline.sources.ffmpeg_binary import ffmpeg_exe

logger = logging.getLogger(__name__)

LAYERS, KV_HEADS, HEAD_DIM, BF16 = 28, 4, 128, 2  # Qwen2.5-VL-7B language model
FULL_TOKEN_BYTES = LAYERS * KV_HEADS * HEAD_DIM * 2 * BF16  # K and V, every layer
REKV_GB_PER_HOUR = 18.8
FPS = 0.5
FRAME = 448
TOKENS_PER_FRAME_7B = 128  # 448 x 448, patch 14, 2 x 2 merge, 2 frames per temporal patch: 256 per chunk
POLICY_SPECS = [
    "full",  # no eviction at all: what an offloading system like ReKV stores
    "sink_window",
    "key_norm",
    "uniform_frames",
    "redundancy_value_norm",
    "proxy_attention",
    "frame_merge",
    "token_drop",
    "token_drop+proxy_attention",
    "mixed_precision",
    "mixed_precision+proxy_attention",
    "token_drop+mixed_precision",
    "token_drop+proxy_attention+mixed_precision",
]
CONTENTS = {
    "testsrc2": "ffmpeg testsrc2: a static test card with a small moving element and a running counter "
    "(mostly static: flatters token_drop)",
    "mandelbrot": "ffmpeg mandelbrot: a continuous zoom, nearly every patch changes between sampled frames "
    "(hard case for token_drop)",
}


def low_precision_token_bytes(policy: MixedPrecision) -> int:
    """Bytes of one low-precision token over the 7B's layers (edge layers at bf16)."""
    group = policy.group_for(HEAD_DIM)
    quantized = HEAD_DIM * policy.bits // 8 + 2 * 2 * (HEAD_DIM // group)  # codes + float16 scale, zero
    per_layer = [
        2 * KV_HEADS * (HEAD_DIM * BF16 if policy.layer_bits(layer, LAYERS) is None else quantized)
        for layer in range(LAYERS)
    ]
    return sum(per_layer)


def make_video(path: Path, pattern: str, seconds: int) -> Path:
    """An H.264 file of ``seconds`` of the lavfi source ``pattern`` at 448x448, 2 fps."""
    subprocess.run(
        [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
         f"{pattern}=size={FRAME}x{FRAME}:rate=2", "-t", str(seconds),
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", str(path)],
        check=True,
    )  # fmt: skip
    return path


def policy_for(spec: str) -> Policy:
    """The policy of ``spec``; a low-precision tier keeps everything (no budget of its own, MiKV edges)."""
    policy = build_policy("sink_window" if spec == "full" else spec)
    node = policy
    while node is not None:
        if isinstance(node, MixedPrecision):
            node.budget_tokens = None
        node = getattr(node, "inner", None)
    return policy


def find_mixed_precision(policy: Policy) -> MixedPrecision | None:
    node = policy
    while node is not None:
        if isinstance(node, MixedPrecision):
            return node
        node = getattr(node, "inner", None)
    return None


def measure(model, video: Path, spec: str, window: int, budget: int, seconds: float) -> dict:
    """Stream ``video`` with one policy; tier counts, and bytes at the 7B's dimensions now and after 1 h."""
    config = StreamConfig().replace("source", fps=FPS)
    full = spec == "full"
    config = config.replace("memory", window_frames=window, budget_tokens=budget)
    session = StreamSession(model, config)
    if full:
        session.bank.window_frames = None
    session.bank.policy = policy = policy_for(spec)
    session.bank.budget_tokens = policy.long_term_budget(budget)
    started = time.perf_counter()
    session.watch(str(video))
    session.ingest()
    stats = session.bank.stats()
    written = stats.logical_tokens - stats.sink_tokens
    dropped = session.counters.tokens_dropped
    mixed = find_mixed_precision(policy)
    low_bytes = low_precision_token_bytes(mixed) if mixed else 0
    grows = full or mixed is not None  # keeps every written token (a tier without a budget)
    if mixed is not None:  # every written token not in a bounded tier is in the low-precision tier
        assert stats.quantized_tokens == written - stats.short_term_tokens - stats.long_term_tokens, stats
    # after one hour, by the tier rules the budget tests check: the window holds its frames, the
    # long-term tier fills up to its budget, the low-precision tier (if unbounded) holds the rest.
    # Token counts scale from the tiny model's grid to the 7B's 128 tokens per frame (token budgets,
    # sinks and the written fraction do not scale).
    frames = session.counters.frames_ingested
    scale = TOKENS_PER_FRAME_7B / ((written + dropped) / frames)
    hour_written = written / (written + dropped) * FPS * 3600 * TOKENS_PER_FRAME_7B
    short_7b = stats.short_term_tokens * scale
    long_cap = session.bank.long_term_cap() or 0
    if full:
        hour_tokens = {"full_precision": stats.sink_tokens + hour_written, "low_precision": 0.0}
    else:
        long_1h = min(long_cap, hour_written - short_7b)
        rest = hour_written - short_7b - long_1h
        hour_tokens = {
            "full_precision": stats.sink_tokens + short_7b + long_1h,
            "low_precision": rest if mixed is not None else 0.0,
        }
    hour_bytes = hour_tokens["full_precision"] * FULL_TOKEN_BYTES + hour_tokens["low_precision"] * low_bytes
    return {
        "policy": session.bank.policy.name if not full else "full (no eviction)",
        "frames": session.counters.frames_ingested,
        "stream_seconds": seconds,
        "measured": {
            "sink_tokens": stats.sink_tokens,
            "short_term_tokens": stats.short_term_tokens,
            "long_term_tokens": stats.long_term_tokens,
            "low_precision_tokens": stats.quantized_tokens,
            "visual_tokens_written": written,
            "visual_tokens_dropped_before_llm": dropped,
            "written_fraction": round(written / (written + dropped), 4),
            "tiny_tokens_per_frame": round((written + dropped) / session.counters.frames_ingested, 2),
            "tiny_model_device_bytes": stats.device_bytes,
            "long_term_full": stats.long_term_tokens == long_cap,
        },
        "keeps_whole_stream": grows,
        "bytes_per_full_precision_token_7b": FULL_TOKEN_BYTES,
        "bytes_per_low_precision_token_7b": low_bytes,
        "tokens_after_1h_7b": {k: round(v) for k, v in hour_tokens.items()},
        "gb_after_1h_7b": round(hour_bytes / 1e9, 3),
        "x_less_than_rekv": round(REKV_GB_PER_HOUR / (hour_bytes / 1e9), 2),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4, help="length of each test video")
    parser.add_argument("--window-frames", type=int, default=32, help="short-term frames (64 s at 0.5 fps)")
    parser.add_argument("--budget-tokens", type=int, default=4096, help="full-precision long-term tokens")
    parser.add_argument("--contents", nargs="+", default=list(CONTENTS), choices=list(CONTENTS))
    parser.add_argument("--policies", nargs="+", default=POLICY_SPECS)
    parser.add_argument("--out", default="eval/bench/results/memory_bytes.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    seconds = int(args.minutes * 60)
    results: dict = {
        "benchmark": "memory_bytes",
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, cpu",
        "settings": vars(args),
        "dimensions": {"layers": LAYERS, "kv_heads": KV_HEADS, "head_dim": HEAD_DIM, "dtype": "bfloat16",
                       "fps": FPS, "frame": f"{FRAME}x{FRAME}", "tokens_per_frame": TOKENS_PER_FRAME_7B},  # fmt: skip
        "full_hour_7b_gb": round(FPS * 3600 * 128 * FULL_TOKEN_BYTES / 1e9, 3),
        "rekv_reference_gb_per_hour": REKV_GB_PER_HOUR,
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_tiny(Path(tmp) / "tiny", "qwen2_5_vl")
        model = load_model(str(checkpoint), device="cpu", local_files_only=True)
        model.max_pixels = FRAME * FRAME  # the tiny processor caps lower; the 7B's budget is 448 x 448
        for content in args.contents:
            video = make_video(Path(tmp) / f"{content}.mp4", content, seconds)
            for spec in tqdm(args.policies, desc=content, disable=None):
                row = measure(model, video, spec, args.window_frames, args.budget_tokens, seconds)
                row["content"] = CONTENTS[content]
                row["video"] = content
                results["runs"].append(row)
                logger.info("%s %s: %.2f GB/h (%.1fx less than ReKV)", content, row["policy"],
                            row["gb_after_1h_7b"], row["x_less_than_rekv"])  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    logger.info("wrote %s", out)


if __name__ == "__main__":
    main()
