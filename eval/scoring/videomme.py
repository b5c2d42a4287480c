"""Video-MME: prefix-strip then the first A-D; accuracy over *answered* questions, as the official
script counts (an unparsable response is left out of the denominator; ``accuracy_all`` counts it
wrong). Broken down by duration, domain, sub-category and task type."""

from __future__ import annotations

from collections.abc import Sequence

from eval.manifest import ManifestRecord
from eval.scoring.base import Prediction, ScoredItem, Scorer, accuracy, group_accuracy, response_of, strict_check
from eval.scoring.extractors import videomme_letter


class VideoMMEScorer(Scorer):
    name = "videomme"

    def item(self, record: ManifestRecord, prediction: Prediction | None) -> ScoredItem:
        response = response_of(prediction)
        said = videomme_letter(response)
        strict_correct, strict_parsed = strict_check(record, response)
        return self.make(record, prediction, float(said == record.answer), said != "", strict_correct, strict_parsed,
                         included=said != "", extracted=said, duration=record.meta.get("duration", record.split),
                         domain=record.meta.get("domain"), sub_category=record.meta.get("sub_category"))

    def aggregate(self, items: Sequence[ScoredItem]) -> dict[str, float]:
        everything = sum(item.correct for item in items) / len(items) if items else 0.0
        return {"accuracy": accuracy(items), "accuracy_all": everything}

    def breakdowns(self, items: Sequence[ScoredItem]) -> dict[str, dict[str, dict[str, float]]]:
        return {
            "duration": group_accuracy(items, lambda i: i.groups["duration"]),
            "domain": group_accuracy(items, lambda i: i.groups["domain"]),
            "sub_category": group_accuracy(items, lambda i: i.groups["sub_category"]),
            "task_type": group_accuracy(items, lambda i: i.task),
        }
