"""``streamvqa eval score RUN_DIR``: merge the run's prediction files, score each benchmark, summarize
efficiency, and write ``RUN_DIR/scores.json``.

A manifest question without a prediction counts as unanswered (wrong for accuracy; the official
scripts that skip unanswered questions skip it too). Scoring is CPU-only and can be repeated at
any time, also while a run is still going.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from eval.manifest import ManifestRecord, load_manifest
from eval.predictions import load_predictions
from eval.scoring import score_items, scorer_for
from pipeline.errors import UserInputError

logger = logging.getLogger(__name__)


def manifest_of(run_dir: Path, manifest: str | Path | None = None) -> Path:
    """The manifest given, else the one recorded in ``run.json``."""
    if manifest is not None:
        return Path(manifest)
    info = run_dir / "run.json"
    if not info.is_file():
        raise UserInputError(f"{run_dir} has no run.json: pass --manifest, or point at a folder made by `eval run`")
    return Path(json.loads(info.read_text())["manifest"])


def score_run(run_dir: str | Path, manifest: str | Path | None = None, n_boot: int = 1000,
              seed: int = 0, judge_id: str | None = None) -> dict[str, Any]:
    """Score every benchmark of the run; returns (and writes) the ``scores.json`` content.

    When ``streamvqa eval judge`` has judged the run (by ``judge_id``, or by its only judge), the
    open-ended benchmarks also get judge-based metrics under ``judged``.
    """
    from eval.judge.scoring import judged_scores
    from eval.judge.stage import load_judgments

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserInputError(f"run folder not found: {run_dir}")
    records = load_manifest(manifest_of(run_dir, manifest)).records
    predictions = load_predictions(run_dir)
    by_benchmark: dict[str, list[ManifestRecord]] = defaultdict(list)
    for record in records:
        by_benchmark[record.benchmark].append(record)
    benchmarks = {}
    for benchmark, members in sorted(by_benchmark.items()):
        scorer = scorer_for(benchmark, seed)
        items = [scorer.item(record, predictions.get(record.qid)) for record in members]
        benchmarks[benchmark] = score_items(benchmark, scorer, items, n_boot, seed).to_dict()
    judge, judgments = load_judgments(run_dir, judge_id)
    known = {record.qid for record in records}
    lines = [line for qid, line in predictions.items() if qid in known]
    result = {
        "run_dir": str(run_dir.resolve()),
        "questions": len(records),
        "predictions": len(lines),
        "errors": sum(bool(line.get("error")) for line in lines),
        "bootstrap": {"replicates": n_boot, "seed": seed, "cluster": "video", "level": 0.95},
        "benchmarks": benchmarks,
        "judged": judged_scores(records, predictions, judgments, judge, n_boot, seed) if judge else {},
        "efficiency": efficiency(lines),
        "per_question": per_question(records, predictions),
    }
    (run_dir / "scores.json").write_text(json.dumps(result, indent=2, default=float))
    return result


def _quantiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {"mean": statistics.fmean(ordered), "median": statistics.median(ordered),
            "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], "max": ordered[-1]}


def efficiency(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Latency, time to first token, ingest throughput and memory over the answered questions."""
    ok = [line for line in lines if not line.get("error")]
    sessions: dict[str, tuple[int, float]] = {}
    for line in ok:
        frames, seconds = line.get("ingest_frames") or 0, line.get("ingest_s") or 0.0
        if frames >= sessions.get(line["session_id"], (0, 0.0))[0]:
            sessions[line["session_id"]] = (frames, seconds)
    frames = sum(f for f, _ in sessions.values())
    seconds = sum(s for _, s in sessions.values())
    memory = [line["peak_memory_bytes"] for line in ok if line.get("peak_memory_bytes") is not None]
    return {
        "answered": len(ok),
        "latency_s": _quantiles([line["latency_s"] for line in ok if line.get("latency_s") is not None]),
        "ttft_s": _quantiles([line["ttft_s"] for line in ok if line.get("ttft_s") is not None]),
        "catch_up_s": _quantiles([line["catch_up_s"] for line in ok if line.get("catch_up_s") is not None]),
        "ingest_frames": frames,
        "ingest_frames_per_s": frames / seconds if seconds > 0 else None,
        "peak_memory_bytes": max(memory) if memory else None,
        "peak_memory_kind": next((line.get("peak_memory_kind") for line in ok if line.get("peak_memory_kind")), None),
        "kv_bytes_max": max((line.get("kv_bytes") or 0 for line in ok), default=None),
    }


def per_question(records: list[ManifestRecord], predictions: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Compact per-question rows (for plots): qid, benchmark, task, ask time, latency, meta keys."""
    rows = []
    for record in records:
        line = predictions.get(record.qid) or {}
        rows.append({
            "qid": record.qid, "benchmark": record.benchmark, "task_type": record.task_type,
            "ask_time": record.ask_time, "latency_s": line.get("latency_s"), "error": line.get("error"),
            "answered": bool(line) and not line.get("error"),
        })
    return rows
