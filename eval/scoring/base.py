"""The scoring contract: one :class:`ScoredItem` per manifest question, then benchmark aggregates.

A scorer maps (record, prediction) to a :class:`ScoredItem` (official correctness, strict
correctness, parse flags, whether the official script counts it) and aggregates items into named
metrics, the first one being the benchmark's headline number. :func:`score_items` adds the strict
accuracy, parse-failure rates and 95% bootstrap intervals clustered by video.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eval.manifest import ManifestRecord
from eval.scoring.bootstrap import cluster_bootstrap
from eval.scoring.extractors import standard_letter, strict_count, strict_letter, strict_yesno

Prediction = dict[str, Any]


@dataclass
class ScoredItem:
    """One question, scored.

    Attributes:
        qid: question id.
        cluster: the video id (bootstrap resampling unit).
        task: task type.
        correct: official correctness (0 or 1; a fraction for soft metrics).
        parsed: the official extractor found an answer (no fallback, no empty string).
        strict_correct: correctness under the strict extractor.
        strict_parsed: the strict extractor found an answer.
        included: the official script counts this question in its denominator.
        answered: a prediction without error exists.
        extracted: what the official extractor returned.
        groups: extra grouping keys (duration, domain, level...).
    """

    qid: str
    cluster: str
    task: str
    correct: float
    parsed: bool
    strict_correct: float
    strict_parsed: bool
    included: bool = True
    answered: bool = True
    extracted: Any = None
    groups: dict[str, Any] = field(default_factory=dict)


def is_option_letter(value: Any, record: ManifestRecord) -> bool:
    """``value`` is exactly one of the record's option letters."""
    return isinstance(value, str) and len(value) == 1 and value in record.letters


def accuracy(items: Sequence[ScoredItem], attr: str = "correct") -> float:
    """Mean of ``attr`` over the included items (0.0 when none)."""
    kept = [getattr(item, attr) for item in items if item.included]
    return sum(kept) / len(kept) if kept else 0.0


def rng_for(qid: str, seed: int) -> random.Random:
    """The random fallback's generator for one question: seeded by (seed, qid), order-independent."""
    return random.Random(f"{seed}:{qid}")


def response_of(prediction: Prediction | None) -> str | None:
    """The raw response, or None for a missing prediction or one that ended in an error."""
    if not prediction or prediction.get("error"):
        return None
    response = prediction.get("response")
    return response if isinstance(response, str) else None


def strict_check(record: ManifestRecord, response: str | None) -> tuple[float, bool]:
    """``(strict_correct, strict_parsed)`` for any answer type."""
    if record.answer_type == "mc":
        letter = strict_letter(response, len(record.options))
        return float(letter == record.answer), letter is not None
    if record.answer_type == "yesno":
        said = strict_yesno(response)
        return float(said is not None and said.lower() == str(record.answer_text).strip().lower()), said is not None
    if record.answer_type == "count":
        number = strict_count(response)
        truth = strict_count(str(record.answer_text))
        return float(number is not None and number == truth), number is not None
    normalized = (response or "").strip().lower().rstrip(".")
    return float(bool(normalized) and normalized == str(record.answer_text or "").strip().lower().rstrip(".")), bool(
        normalized
    )


class Scorer:
    """Default scorer: the generic extractor, plain accuracy, breakdown by task type."""

    name = "generic"
    headline = "accuracy"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def item(self, record: ManifestRecord, prediction: Prediction | None) -> ScoredItem:
        response = response_of(prediction)
        strict_correct, strict_parsed = strict_check(record, response)
        if record.answer_type == "mc":
            letter = standard_letter(response, record.options)
            correct, parsed, extracted = float(letter == record.answer), letter is not None, letter
        else:
            correct, parsed, extracted = strict_correct, strict_parsed, response
        return self.make(record, prediction, correct, parsed, strict_correct, strict_parsed, extracted=extracted)

    def make(self, record: ManifestRecord, prediction: Prediction | None, correct: float, parsed: bool,
             strict_correct: float, strict_parsed: bool, included: bool = True, extracted: Any = None,
             **groups: Any) -> ScoredItem:
        return ScoredItem(
            qid=record.qid, cluster=record.video.id, task=record.task_type or record.benchmark,
            correct=correct, parsed=parsed, strict_correct=strict_correct, strict_parsed=strict_parsed,
            included=included, answered=response_of(prediction) is not None, extracted=extracted, groups=groups,
        )

    def extract(self, record: ManifestRecord, response: str | None) -> tuple[Any, bool]:
        """``(extracted answer, parsed)`` for a response: what the runner writes beside it."""
        item = self.item(record, {"response": response})
        return item.extracted, item.parsed

    def aggregate(self, items: Sequence[ScoredItem]) -> dict[str, float]:
        """Named metrics; the first is the headline."""
        return {self.headline: accuracy(items)}

    def breakdowns(self, items: Sequence[ScoredItem]) -> dict[str, dict[str, dict[str, float]]]:
        """``{grouping: {key: {"accuracy": a, "n": n}}}``."""
        return {"task_type": group_accuracy(items, lambda item: item.task)}

    def notes(self) -> list[str]:
        return []


def group_accuracy(items: Sequence[ScoredItem], key: Callable[[ScoredItem], Any],
                   attr: str = "correct") -> dict[str, dict[str, float]]:
    """Accuracy and count per group (included items only)."""
    groups: dict[str, list[ScoredItem]] = defaultdict(list)
    for item in items:
        if item.included:
            groups[str(key(item))].append(item)
    return {name: {"accuracy": accuracy(members, attr), "n": len(members)} for name, members in sorted(groups.items())}


@dataclass
class BenchmarkScore:
    """Everything ``streamvqa eval score`` reports for one benchmark."""

    benchmark: str
    scorer: str
    questions: int
    answered: int
    included: int
    metrics: dict[str, float]
    intervals: dict[str, list[float]]
    strict_accuracy: float
    strict_interval: list[float]
    parse_failure_rate: float
    strict_parse_failure_rate: float
    breakdowns: dict[str, dict[str, dict[str, float]]]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def score_items(benchmark: str, scorer: Scorer, items: list[ScoredItem], n_boot: int = 1000,
                seed: int = 0) -> BenchmarkScore:
    """Aggregate items into a :class:`BenchmarkScore` with clustered bootstrap intervals."""
    metrics = scorer.aggregate(items)
    intervals = {name: list(cluster_bootstrap(items, lambda s, name=name: scorer.aggregate(s)[name], n_boot, seed))
                 for name in metrics}
    answered = [item for item in items if item.answered]
    return BenchmarkScore(
        benchmark=benchmark,
        scorer=scorer.name,
        questions=len(items),
        answered=len(answered),
        included=sum(item.included for item in items),
        metrics=metrics,
        intervals=intervals,
        strict_accuracy=sum(i.strict_correct for i in items) / len(items) if items else 0.0,
        strict_interval=list(cluster_bootstrap(
            items, lambda s: sum(i.strict_correct for i in s) / len(s) if s else 0.0, n_boot, seed)),
        parse_failure_rate=sum(not i.parsed for i in answered) / len(answered) if answered else 0.0,
        strict_parse_failure_rate=sum(not i.strict_parsed for i in answered) / len(answered) if answered else 0.0,
        breakdowns=scorer.breakdowns(items),
        notes=scorer.notes(),
    )
