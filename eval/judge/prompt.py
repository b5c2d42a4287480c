"""The judge's instructions and the parser of its reply.

The protocol is the one ActivityNet-QA / Video-ChatGPT popularised for open-ended video QA: the judge
sees the question, the reference answer and the model's answer, and returns whether the answer is
correct (yes/no) and a 0-5 match score. The wording below is ours; ``PROMPT_VERSION`` is recorded in
every judgment so that scores from different wordings are never mixed silently.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

PROMPT_VERSION = "streamvqa-judge-v1"

SYSTEM = (
    "You grade answers to questions about videos. You are given a question, the reference answer and a "
    "predicted answer. Judge meaning, not wording: synonyms and paraphrases that say the same thing are "
    "correct; an answer that adds a wrong detail or misses the point is not. Reply with JSON only, "
    'exactly of the form {"correct": "yes", "score": 4}, where "correct" is "yes" or "no" and "score" is '
    "an integer from 0 (unrelated) to 5 (same meaning)."
)


def user_message(question: str, reference: str, predicted: str) -> str:
    """The user turn for one question."""
    return f"Question: {question}\nReference answer: {reference}\nPredicted answer: {predicted}\nYour JSON verdict:"


def chat_messages(question: str, reference: str, predicted: str) -> list[dict[str, str]]:
    """OpenAI-style messages for one question."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user_message(question, reference,
                                                                                          predicted)}]


@dataclass(frozen=True)
class Verdict:
    """A parsed judge reply; ``correct`` and ``score`` are None when the reply could not be read."""

    correct: bool | None
    score: float | None

    @property
    def parsed(self) -> bool:
        return self.correct is not None


_OBJECT = re.compile(r"\{[^{}]*\}")
_CORRECT = re.compile(r"[\"']?(?:correct|pred)[\"']?\s*[:=]\s*[\"']?(yes|no|true|false)\b", re.IGNORECASE)
_SCORE = re.compile(r"[\"']?score[\"']?\s*[:=]\s*[\"']?(\d+(?:\.\d+)?)", re.IGNORECASE)
_LEADING = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


def _truth(word: str) -> bool:
    return word.lower() in ("yes", "true")


def _clamped(score: float | None) -> float | None:
    return None if score is None or not 0 <= score <= 5 else score


def parse_verdict(reply: str | None) -> Verdict:
    """Read a judge reply: a JSON object first, then ``correct: yes`` / ``score: 4`` pairs, then a leading yes/no.

    A score outside 0-5 is dropped (kept None); the verdict still counts when ``correct`` is readable.
    """
    if not reply:
        return Verdict(None, None)
    for candidate in _OBJECT.findall(reply):
        try:
            data = json.loads(candidate.replace("'", '"'))
        except json.JSONDecodeError:
            continue
        if not isinstance(data, dict):
            continue
        said = data.get("correct", data.get("pred"))
        if isinstance(said, bool):
            said = "yes" if said else "no"
        if isinstance(said, str) and said.strip().lower() in ("yes", "no", "true", "false"):
            score = data.get("score")
            number = float(score) if isinstance(score, (int, float)) or (
                isinstance(score, str) and re.fullmatch(r"\d+(\.\d+)?", score.strip())) else None
            return Verdict(_truth(said.strip()), _clamped(number))
    correct = _CORRECT.search(reply) or _LEADING.search(reply)
    score = _SCORE.search(reply)
    return Verdict(_truth(correct.group(1)) if correct else None, _clamped(float(score.group(1))) if score else None)
