"""Memory policies side by side: device KV bytes and per-frame ingest time vs stream length, policy
overhead, and fidelity to the uncompressed cache.

*Growth*: each policy ingests the same long stream (default 2 h of video at 1 fps, tiny model,
56x84 frames); device KV bytes and the time per frame are sampled along the way. Goals: bytes flat
(<= budget + one chunk) and last-decile / first-decile time per frame <= 1.15.

*Overhead*: the share of ingest time spent making room (scoring, eviction, re-indexing) against the
model's encode + prefill, on the tiny and the ~220M "small" random-init model. Goal <= 5 %.

*Fidelity*: the same frames and questions with the full cache and with each policy at budgets of 5,
10, 25 and 50 % of the full cache: KL divergence of the first answer token's distribution and top-1
agreement. With random weights this is a mechanics proxy, not a quality figure. ``mixed_precision``
keeps a low-precision tier on top of the budget (int4, as many tokens as the long-term budget, no
full-precision edge layers since the tiny model has two): its ``kept_visual_tokens`` include that tier.

    python -m eval.bench.memory_policies --out eval/bench/results/memory_policies.json
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

import numpy as np
import torch
from tqdm import tqdm

from memory.policies import POLICIES, MixedPrecision
from models.registry import load_model, make_tiny
from pipeline.config import StreamConfig
from pipeline.frames import Frame
from pipeline.session import StreamSession

logger = logging.getLogger(__name__)

QUESTIONS = ["What happens in the video?", "What color is the car?", "How many people are there?"]
POLICY_SPECS = [*POLICIES, "token_drop+proxy_attention", "token_drop+proxy_attention+mixed_precision"]


def synthetic_frames(n: int, size: tuple[int, int], seed: int = 0) -> list[Frame]:
    """A slowly changing scene: a static background with a moving block and some noise."""
    rng = np.random.default_rng(seed)
    height, width = size
    background = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        image = background.copy()
        x = (i * 7) % max(1, width - 28)
        image[:28, x : x + 28] = (i * 37) % 256
        frames.append(Frame(i, float(i), image))
    return frames


def session_for(model, policy: str, window: int | None, budget: int | None) -> StreamSession:
    """A session with ``policy``; a low-precision tier (``mixed_precision``) gets the long-term budget
    as its own and, since the tiny model has only two layers, no full-precision edge layers."""
    config = StreamConfig()
    memory = dataclasses.replace(config.memory, policy=policy, window_frames=window, budget_tokens=budget)
    session = StreamSession(model, dataclasses.replace(config, memory=memory))
    node = session.bank.policy
    while node is not None:
        if isinstance(node, MixedPrecision):
            node.budget_tokens, node.full_precision_edge_layers = budget, 0
        node = getattr(node, "inner", None)
    return session


def growth(model, policy: str, frames: list[Frame], window: int, budget: int, batch: int) -> dict:
    session = session_for(model, policy, window, budget)
    per_frame, device_bytes, at_frames = [], [], []
    for start in range(0, len(frames), batch):
        t = time.perf_counter()
        session.feed(frames[start : start + batch])
        per_frame.append((time.perf_counter() - t) / batch)
        if (start // batch) % 30 == 0:
            device_bytes.append(session.bank.cache.nbytes())
            at_frames.append(start + batch)
    tenth = max(1, len(per_frame) // 10)
    first, last = statistics.mean(per_frame[:tenth]), statistics.mean(per_frame[-tenth:])
    stats = session.bank.stats()
    counters = session.counters
    model_s = counters.encode_s + counters.prefill_s
    return {
        "policy": session.bank.policy.name,
        "frames": len(frames),
        "device_bytes_samples": device_bytes,
        "at_frames": at_frames,
        "final": stats.as_dict(),
        "time_per_frame_first_decile_ms": round(first * 1000, 3),
        "time_per_frame_last_decile_ms": round(last * 1000, 3),
        "last_over_first": round(last / first, 3),
        "memory_s": round(counters.memory_s, 3),
        "model_s": round(model_s, 3),
        "overhead_fraction": round(counters.memory_s / model_s, 4),
    }


def first_token_distributions(session: StreamSession) -> list[torch.Tensor]:
    """Log-probabilities of the first answer token for each question (memory left unchanged)."""
    out = []
    cache = session.bank.cache
    for question in QUESTIONS:
        checkpoint = cache.checkpoint()
        with torch.inference_mode():
            logits = session.model._forward_text(
                session.model._ids(session.model.question_text(question)), cache, session.cursor.copy()
            )
        cache.rollback(checkpoint)
        out.append(torch.log_softmax(logits.float(), dim=-1))
    return out


def fidelity(model, frames: list[Frame], window: int, fractions: list[float], policies: list[str]) -> list[dict]:
    full = session_for(model, "sink_window", None, None)
    full.feed(frames)
    reference = first_token_distributions(full)
    visual_tokens = full.bank.cache.logical_length - full.bank.sink_tokens
    rows = []
    for fraction in fractions:
        kept_total = int(visual_tokens * fraction)
        window_tokens = int(visual_tokens * window / len(frames))
        budget = max(0, kept_total - window_tokens)
        for policy in tqdm(policies, desc=f"fidelity at {fraction:.0%}", disable=None):
            session = session_for(model, policy, window, budget)
            session.feed(frames)
            ours = first_token_distributions(session)
            kl = [float(torch.sum(r.exp() * (r - o))) for r, o in zip(reference, ours)]
            agree = [int(r.argmax() == o.argmax()) for r, o in zip(reference, ours)]
            rows.append({
                "policy": session.bank.policy.name,
                "budget_fraction": fraction,
                "kept_visual_tokens": session.bank.cache.physical_length - session.bank.sink_tokens,
                "low_precision_tokens": session.bank.cache.quantized_length,
                "kl_first_token": round(statistics.mean(kl), 6),
                "top1_agreement": round(statistics.mean(agree), 3),
            })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=120, help="stream length at 1 fps for the growth runs")
    parser.add_argument("--window-frames", type=int, default=16)
    parser.add_argument("--budget-tokens", type=int, default=128)
    parser.add_argument("--fidelity-frames", type=int, default=240)
    parser.add_argument("--fidelity-window", type=int, default=4, help="short-term frames in the fidelity runs")
    parser.add_argument("--small-frames", type=int, default=96, help="frames for the small model's overhead run")
    parser.add_argument("--skip-small", action="store_true", help="same as leaving 'small' out of --parts")
    parser.add_argument("--parts", nargs="+", choices=["growth", "fidelity", "small"],
                        default=["growth", "fidelity", "small"], help="which measurements to run")
    parser.add_argument("--policies", nargs="+", default=POLICY_SPECS, help="policy specs to measure")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.1, 0.25, 0.5],
                        help="fidelity budgets as fractions of the full cache")
    parser.add_argument("--out", default="eval/bench/results/memory_policies.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    results: dict = {
        "benchmark": "memory_policies",
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, cpu",
        "settings": vars(args),
        "note": "random weights: fidelity figures are a mechanics proxy, not answer quality",
    }
    with tempfile.TemporaryDirectory() as tmp:
        tiny = load_model(str(make_tiny(Path(tmp) / "tiny", "qwen2_5_vl")), device="cpu", local_files_only=True)
        if "growth" in args.parts:
            frames = synthetic_frames(int(args.minutes * 60), (56, 84))
            results["growth_tiny"] = [
                growth(tiny, policy, frames, args.window_frames, args.budget_tokens, batch=8)
                for policy in tqdm(args.policies, desc="growth", disable=None)
            ]
        if "fidelity" in args.parts:
            results["fidelity_tiny"] = fidelity(
                tiny, synthetic_frames(args.fidelity_frames, (112, 168)), args.fidelity_window, args.fractions,
                args.policies,
            )
        if "small" in args.parts and not args.skip_small:
            small = load_model(
                str(make_tiny(Path(tmp) / "small", "qwen2_5_vl", "small")), device="cpu", local_files_only=True,
                max_frame_pixels=224 * 224,
            )
            small_frames = synthetic_frames(args.small_frames, (224, 224))
            results["overhead_small"] = [
                growth(small, policy, small_frames, 16, 512, batch=8)
                for policy in tqdm(args.policies, desc="small model", disable=None)
            ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    logger.info("wrote %s", out)


if __name__ == "__main__":
    main()
