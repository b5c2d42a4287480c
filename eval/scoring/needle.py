"""Needle-in-a-haystack runs (``streamvqa eval needle``): accuracy by haystack length, depth,
question kind and ask delay, with the generic letter extractor."""

from __future__ import annotations

from collections.abc import Sequence

from eval.manifest import ManifestRecord
from eval.scoring.base import Prediction, ScoredItem, Scorer, group_accuracy


class NeedleScorer(Scorer):
    name = "needle"

    def item(self, record: ManifestRecord, prediction: Prediction | None) -> ScoredItem:
        item = super().item(record, prediction)
        meta = record.meta
        item.groups.update(minutes=meta.get("minutes"), depth=meta.get("depth"), kind=meta.get("kind"),
                           delay=meta.get("delay"), needle_seconds=meta.get("needle_seconds"))
        return item

    def breakdowns(self, items: Sequence[ScoredItem]) -> dict[str, dict[str, dict[str, float]]]:
        return {
            "task_type": group_accuracy(items, lambda i: i.task),
            "kind": group_accuracy(items, lambda i: i.groups["kind"]),
            "minutes": group_accuracy(items, lambda i: i.groups["minutes"]),
            "depth": group_accuracy(items, lambda i: i.groups["depth"]),
            "delay": group_accuracy(items, lambda i: i.groups["delay"]),
            "minutes_x_depth": group_accuracy(items, lambda i: f"{i.groups['minutes']}|{i.groups['depth']}"),
        }
