"""Per-benchmark scorers, by benchmark name (the ``benchmark`` field of the manifest).

``scorer_for(name)`` returns the official rules where the benchmark has them and the generic scorer
otherwise; ``streamvqa eval score RUN_DIR`` uses :func:`eval.scoring.run_scores.score_run`.
"""

from __future__ import annotations

from eval.scoring.base import BenchmarkScore, ScoredItem, Scorer, score_items
from eval.scoring.mlvu import MLVUScorer
from eval.scoring.mmmu_style import LongVideoBenchScorer, MMMUScorer, NExTQAScorer
from eval.scoring.needle import NeedleScorer
from eval.scoring.open_ended import OpenEndedScorer
from eval.scoring.ovobench import OVOBenchScorer
from eval.scoring.rtvbench import RTVBenchScorer
from eval.scoring.streamingbench import StreamingBenchScorer
from eval.scoring.videomme import VideoMMEScorer

SCORERS: dict[str, type[Scorer]] = {
    "mlvu": MLVUScorer,
    "videomme": VideoMMEScorer,
    "egoschema": MMMUScorer,
    "nextqa": NExTQAScorer,
    "longvideobench": LongVideoBenchScorer,
    "ovobench": OVOBenchScorer,
    "streamingbench": StreamingBenchScorer,
    "rtvbench": RTVBenchScorer,
    "activitynetqa": OpenEndedScorer,
    "rvs": OpenEndedScorer,
    "needle": NeedleScorer,
}


def scorer_for(benchmark: str, seed: int = 0) -> Scorer:
    """The scorer of ``benchmark`` (the generic one for names without official rules)."""
    return SCORERS.get(benchmark, Scorer)(seed=seed)


__all__ = ["SCORERS", "BenchmarkScore", "ScoredItem", "Scorer", "score_items", "scorer_for"]
