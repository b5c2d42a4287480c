"""OVO-Bench: official per-task rules, category means, total.

* Backward / real-time: correct when the answer letter occurs *anywhere* in the response
  (case-sensitive substring): ``"Answer: B"`` scores for A as well as for B. This quirk is the
  official rule and is kept; the strict extractor beside it does not have it.
* REC: all digits of the response concatenated must equal the count.
* SSR / CRR: ``"Y"``/``"N"`` exactly, or ``"Yes"``/``"No"`` anywhere (case-sensitive).
* Task score = mean over its questions (probes for forward tasks); category score = mean of its
  task scores; ``total`` = mean of the 3 category scores (the paper's Overall). ``task_macro`` is
  the mean over all tasks, which is what the released scoring script prints as "Total Avg.".
"""

from __future__ import annotations

from collections.abc import Sequence

from eval.converters.ovobench import CATEGORIES, CATEGORY_OF
from eval.manifest import LETTERS, ManifestRecord
from eval.scoring.base import Prediction, ScoredItem, Scorer, group_accuracy, response_of, strict_check
from eval.scoring.extractors import ovo_contains, ovo_count, ovo_yesno


class OVOBenchScorer(Scorer):
    name = "ovobench"
    headline = "total"

    def item(self, record: ManifestRecord, prediction: Prediction | None) -> ScoredItem:
        response = response_of(prediction)
        strict_correct, strict_parsed = strict_check(record, response)
        task = record.task_type
        if task == "REC":
            truth = int(str(record.answer_text))
            correct = ovo_count(response, truth)
            parsed = bool(response) and any(ch.isdigit() for ch in response)
        elif task in ("SSR", "CRR"):
            correct = ovo_yesno(response, str(record.answer_text))
            parsed = response is not None and (response in ("Y", "N") or "Yes" in response or "No" in response)
        else:
            correct = ovo_contains(response, str(record.answer))
            parsed = response is not None and any(letter in response for letter in LETTERS[: len(record.options)])
        return self.make(record, prediction, float(correct), parsed, strict_correct, strict_parsed,
                         extracted=response, category=CATEGORY_OF.get(task, "unknown"))

    def aggregate(self, items: Sequence[ScoredItem]) -> dict[str, float]:
        per_task = group_accuracy(items, lambda item: item.task)
        metrics: dict[str, float] = {}
        category_means = []
        for category, tasks in CATEGORIES.items():
            scores = [per_task[t]["accuracy"] for t in tasks if t in per_task]
            if scores:
                metrics[category] = sum(scores) / len(scores)
                category_means.append(metrics[category])
        task_scores = [v["accuracy"] for v in per_task.values()]
        return {
            "total": sum(category_means) / len(category_means) if category_means else 0.0,
            **metrics,
            "task_macro": sum(task_scores) / len(task_scores) if task_scores else 0.0,
        }

    def breakdowns(self, items: Sequence[ScoredItem]) -> dict[str, dict[str, dict[str, float]]]:
        return {"task_type": group_accuracy(items, lambda i: i.task),
                "category": group_accuracy(items, lambda i: i.groups["category"])}
