"""Open-ended sets (ActivityNet-QA, RVS, MLVU generation): a transparent proxy until a judge runs.

The official metrics of these sets come from an LLM judge (accuracy and a 0-5 score). Without one,
this scorer reports normalized exact match (lower case, no articles or punctuation), which is a
lower bound, and labels it as such; yes/no and counting questions compare the leading word/number.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from eval.manifest import ManifestRecord
from eval.scoring.base import Prediction, ScoredItem, Scorer, accuracy, response_of, strict_check
from eval.scoring.extractors import strict_count, strict_yesno


def normalize(text: str | None) -> str:
    text = re.sub(r"[^\w\s]", " ", (text or "").lower())
    return " ".join(word for word in text.split() if word not in ("a", "an", "the"))


class OpenEndedScorer(Scorer):
    name = "open_ended_exact_match"
    headline = "exact_match"

    def item(self, record: ManifestRecord, prediction: Prediction | None) -> ScoredItem:
        response = response_of(prediction)
        strict_correct, strict_parsed = strict_check(record, response)
        if record.answer_type == "yesno":
            said = strict_yesno(response)
            correct = said is not None and said.lower() == normalize(record.answer_text)
        elif record.answer_type == "count":
            number = strict_count(response.split()[0] if response and response.split() else None)
            correct = number is not None and str(number) == normalize(record.answer_text)
        else:
            said = normalize(response)
            correct = bool(said) and said == normalize(record.answer_text)
        return self.make(record, prediction, float(correct), bool(response and response.strip()), strict_correct,
                         strict_parsed, extracted=response)

    def aggregate(self, items: Sequence[ScoredItem]) -> dict[str, float]:
        return {"exact_match": accuracy(items)}

    def notes(self) -> list[str]:
        return ["official metric needs an LLM judge (not run); exact_match is a lower-bound proxy"]
