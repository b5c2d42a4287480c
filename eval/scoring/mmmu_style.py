"""EgoSchema, NExT-QA and LongVideoBench: MMMU-style parsing with a seeded random fallback.

A response the parser cannot read gets a random letter (the official behaviour), drawn from a
generator seeded by ``(seed, qid)`` so scores are reproducible and independent of order; such
questions count as parse failures. NExT-QA is broken down by question type and by its three groups
(Causal, Temporal, Descriptive); LongVideoBench by duration group and question category.
"""

from __future__ import annotations

from collections.abc import Sequence

from eval.manifest import ManifestRecord
from eval.scoring.base import (
    Prediction,
    ScoredItem,
    Scorer,
    group_accuracy,
    response_of,
    rng_for,
    strict_check,
)
from eval.scoring.extractors import longvideobench_letter, mmmu_letter

NEXTQA_GROUPS = {"C": "causal", "T": "temporal", "D": "descriptive"}


class MMMUScorer(Scorer):
    name = "mmmu"

    def item(self, record: ManifestRecord, prediction: Prediction | None) -> ScoredItem:
        response = response_of(prediction)
        letter, fell_back = self.parse(record, response)
        strict_correct, strict_parsed = strict_check(record, response)
        return self.make(record, prediction, float(letter == record.answer), not fell_back, strict_correct,
                         strict_parsed, extracted=letter, **self.group_keys(record))

    def parse(self, record: ManifestRecord, response: str | None) -> tuple[str, bool]:
        return mmmu_letter(response, record.options, rng_for(record.qid, self.seed))

    def group_keys(self, record: ManifestRecord) -> dict[str, str]:
        return {}


class NExTQAScorer(MMMUScorer):
    name = "nextqa"

    def group_keys(self, record: ManifestRecord) -> dict[str, str]:
        return {"group": NEXTQA_GROUPS.get(record.task_type[:1].upper(), "other")}

    def breakdowns(self, items: Sequence[ScoredItem]) -> dict[str, dict[str, dict[str, float]]]:
        return {"task_type": group_accuracy(items, lambda i: i.task),
                "group": group_accuracy(items, lambda i: i.groups["group"])}


class LongVideoBenchScorer(MMMUScorer):
    name = "longvideobench"

    def parse(self, record: ManifestRecord, response: str | None) -> tuple[str, bool]:
        return longvideobench_letter(response, len(record.options), rng_for(record.qid, self.seed))

    def group_keys(self, record: ManifestRecord) -> dict[str, str]:
        return {"duration_group": str(record.meta.get("duration_group", record.split))}

    def breakdowns(self, items: Sequence[ScoredItem]) -> dict[str, dict[str, dict[str, float]]]:
        return {"duration_group": group_accuracy(items, lambda i: i.groups["duration_group"]),
                "question_category": group_accuracy(items, lambda i: i.task)}
