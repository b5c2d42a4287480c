"""Judge-based metrics of a run: accuracy (share of answers the judge calls correct) and mean 0-5 score.

Every open-ended question of the manifest counts: an unanswered question, a failed judgment and an
unreadable verdict all count as incorrect with score 0, so the figure never flatters a run with gaps;
the counts of each are reported beside it, with 95% bootstrap intervals resampling videos.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from eval.judge.stage import needs_judge
from eval.manifest import ManifestRecord
from eval.scoring.base import ScoredItem, Scorer, accuracy, score_items


class JudgedScorer(Scorer):
    """Aggregates judgments; ``ScoredItem.extracted`` holds the judge's 0-5 score (0 when missing)."""

    name = "llm_judge"
    headline = "judge_accuracy"

    def aggregate(self, items: Sequence[ScoredItem]) -> dict[str, float]:
        kept = [item for item in items if item.included]
        mean_score = sum(float(item.extracted or 0.0) for item in kept) / len(kept) if kept else 0.0
        return {"judge_accuracy": accuracy(items), "judge_score": mean_score}


def judged_scores(records: Sequence[ManifestRecord], predictions: dict[str, dict[str, Any]],
                  judgments: dict[str, dict[str, Any]], judge_id: str, n_boot: int = 1000,
                  seed: int = 0) -> dict[str, Any]:
    """``{benchmark: judged score dict}`` for the benchmarks that have open-ended questions."""
    scorer = JudgedScorer(seed=seed)
    by_benchmark: dict[str, list[ScoredItem]] = defaultdict(list)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"judged": 0, "unanswered": 0, "judge_errors": 0,
                                                             "unparsed": 0})
    for record in records:
        if not needs_judge(record):
            continue
        prediction = predictions.get(record.qid)
        judgment = judgments.get(record.qid)
        count = counts[record.benchmark]
        if not prediction or prediction.get("error"):
            count["unanswered"] += 1
        elif judgment is None or judgment.get("error"):
            count["judge_errors"] += 1
        elif judgment.get("correct") is None:
            count["unparsed"] += 1
        else:
            count["judged"] += 1
        correct = bool(judgment and judgment.get("correct"))
        score = judgment.get("score") if judgment and judgment.get("correct") is not None else None
        by_benchmark[record.benchmark].append(scorer.make(
            record, prediction, float(correct), judgment is not None and judgment.get("correct") is not None,
            float(correct), judgment is not None and judgment.get("correct") is not None,
            extracted=float(score) if score is not None else 0.0))
    results = {}
    for benchmark, items in sorted(by_benchmark.items()):
        scored = score_items(benchmark, scorer, items, n_boot, seed).to_dict()
        results[benchmark] = {"judge": judge_id, **counts[benchmark], "metrics": scored["metrics"],
                              "intervals": scored["intervals"], "breakdowns": scored["breakdowns"]}
    return results
