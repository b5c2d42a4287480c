"""StreamingBench: ``response[0]`` must equal the answer letter, per task type.

As in the official counting script, a question with an empty response is not counted at all
(``included`` false; ``accuracy_all`` counts it wrong). Proactive output: correct when the model's
reply time is within 2 s of the ground-truth time (the time of the last poll when it never said yes).
"""

from __future__ import annotations

from collections.abc import Sequence

from eval.manifest import ManifestRecord
from eval.scoring.base import (
    Prediction,
    ScoredItem,
    Scorer,
    accuracy,
    group_accuracy,
    is_option_letter,
    response_of,
    strict_check,
)
from eval.scoring.extractors import first_character

PROACTIVE_TOLERANCE_S = 2.0


class StreamingBenchScorer(Scorer):
    name = "streamingbench"

    def item(self, record: ManifestRecord, prediction: Prediction | None) -> ScoredItem:
        response = response_of(prediction)
        subset = record.meta.get("subset", record.split)
        if record.answer_type == "proactive":
            reply_time = (prediction or {}).get("response_time") if response is not None else None
            truth = float((record.evidence or {})["time"])
            correct = reply_time is not None and abs(float(reply_time) - truth) <= PROACTIVE_TOLERANCE_S
            said_yes = bool((prediction or {}).get("triggered"))
            return self.make(record, prediction, float(correct), said_yes, float(correct), said_yes,
                             included=response is not None, extracted=reply_time, subset=subset)
        said = first_character(response)
        strict_correct, strict_parsed = strict_check(record, response)
        return self.make(record, prediction, float(said == record.answer), is_option_letter(said, record),
                         strict_correct, strict_parsed, included=bool(said), extracted=said, subset=subset)

    def aggregate(self, items: Sequence[ScoredItem]) -> dict[str, float]:
        everything = sum(item.correct for item in items) / len(items) if items else 0.0
        return {"accuracy": accuracy(items), "accuracy_all": everything}

    def breakdowns(self, items: Sequence[ScoredItem]) -> dict[str, dict[str, dict[str, float]]]:
        return {"subset": group_accuracy(items, lambda i: i.groups["subset"]),
                "task_type": group_accuracy(items, lambda i: i.task)}
