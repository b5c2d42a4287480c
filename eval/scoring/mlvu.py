"""MLVU dev: official letter rule, M-Avg = macro mean over the 7 multiple-choice tasks.

The official script compares the text before the first ``)`` with the letter (see
:func:`~eval.scoring.extractors.mlvu_letter`); M-Avg, the number MLVU reports, is the unweighted mean
of the per-task accuracies of the 7 MC tasks, not the mean over questions (``avg``, also reported).
The two generation tasks (sub-scene captioning, summary) need an LLM judge and are left out here.
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
from eval.scoring.extractors import mlvu_letter

MC_TASKS = ("plotQA", "findNeedle", "ego", "count", "order", "anomaly_reco", "topic_reasoning")


class MLVUScorer(Scorer):
    name = "mlvu"
    headline = "m_avg"

    def item(self, record: ManifestRecord, prediction: Prediction | None) -> ScoredItem:
        response = response_of(prediction)
        strict_correct, strict_parsed = strict_check(record, response)
        if record.answer_type != "mc":  # generation tasks: judged elsewhere, not in M-Avg
            return self.make(record, prediction, 0.0, bool(response), strict_correct, strict_parsed,
                             included=False, extracted=response)
        said = mlvu_letter(response)
        return self.make(record, prediction, float(said == record.answer), is_option_letter(said, record),
                         strict_correct, strict_parsed, extracted=said)

    def aggregate(self, items: Sequence[ScoredItem]) -> dict[str, float]:
        per_task = group_accuracy(items, lambda item: item.task)
        tasks = [per_task[t]["accuracy"] for t in MC_TASKS if t in per_task]
        return {"m_avg": sum(tasks) / len(tasks) if tasks else 0.0, "avg": accuracy(items)}

    def notes(self) -> list[str]:
        return ["generation tasks (subPlot, summary) need an LLM judge; not scored here"]
