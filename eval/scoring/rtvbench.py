"""RTV-Bench: official letter extraction, accuracy, and Group Score.

Group Score: questions of one group (``q-group-<gid>-<level>``) at levels 0 and 1 are basic, level 2
advanced. A group's advanced questions score their correctness only when every basic question of
the group is right (a missing level counts as passed), else 0; Group Score = scored advanced
questions / all advanced questions, over groups that have any.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from eval.manifest import ManifestRecord
from eval.scoring.base import Prediction, ScoredItem, Scorer, accuracy, group_accuracy, response_of, strict_check
from eval.scoring.extractors import rtv_letter

DIMENSIONS = {"SR": "reasoning", "FP": "reasoning", "IA": "understanding", "PU": "understanding",
              "GU": "understanding", "TP": "perception", "VP": "perception", "SP": "perception"}


def group_score(items: Sequence[ScoredItem], attr: str = "correct") -> float:
    """Group Score over ``items`` (see the module docstring)."""
    groups: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        groups[item.groups["group"]][item.groups["level"]].append(getattr(item, attr))
    scored = total = 0.0
    for levels in groups.values():
        advanced = levels.get(2, [])
        if not advanced:
            continue
        basic_pass = all(all(levels.get(level, [])) for level in (0, 1))
        scored += sum(advanced) if basic_pass else 0.0
        total += len(advanced)
    return scored / total if total else 0.0


class RTVBenchScorer(Scorer):
    name = "rtvbench"

    def item(self, record: ManifestRecord, prediction: Prediction | None) -> ScoredItem:
        response = response_of(prediction)
        said = rtv_letter(response, len(record.options))
        strict_correct, strict_parsed = strict_check(record, response)
        kind = record.task_type
        return self.make(record, prediction, float(said == record.answer), said is not None, strict_correct,
                         strict_parsed, extracted=said, group=record.meta.get("group", record.qid),
                         level=int(record.meta.get("level", 0)), main=kind.split("-")[0],
                         dimension=DIMENSIONS.get(kind.split("-")[-1], "unknown"))

    def aggregate(self, items: Sequence[ScoredItem]) -> dict[str, float]:
        return {"accuracy": accuracy(items), "group_score": group_score(items)}

    def breakdowns(self, items: Sequence[ScoredItem]) -> dict[str, dict[str, dict[str, float]]]:
        return {"task_type": group_accuracy(items, lambda i: i.task),
                "main_category": group_accuracy(items, lambda i: i.groups["main"]),
                "dimension": group_accuracy(items, lambda i: i.groups["dimension"]),
                "level": group_accuracy(items, lambda i: i.groups["level"])}
