"""Multi-turn context: the previous questions and answers of a stream, bounded, as question text.

Earlier turns are never written into the stream's memory (answers never change memory); instead each
new question carries the last ``max_turns`` finished turns as text ahead of it, oldest dropped first
when the text exceeds ``max_chars`` or the model's question-token limit.
"""

from __future__ import annotations

import collections
from collections.abc import Callable


class Dialogue:
    """The finished turns of one stream.

    Args:
        max_turns: turns remembered (0 disables multi-turn context).
        max_chars: characters of history text at most.
    """

    def __init__(self, max_turns: int = 4, max_chars: int = 2000) -> None:
        self.max_turns = max_turns
        self.max_chars = max_chars
        self._turns: collections.deque[tuple[str, str]] = collections.deque(maxlen=max(max_turns, 1))

    def add(self, question: str, answer: str) -> None:
        """Remember a finished turn."""
        if self.max_turns:
            self._turns.append((question, answer.strip()))

    def __len__(self) -> int:
        return len(self._turns) if self.max_turns else 0

    def prompt(self, question: str, fits: Callable[[str], bool] | None = None) -> tuple[str, int]:
        """``(text, turns_used)``: ``question`` preceded by as many recent turns as fit.

        Args:
            question: the new question.
            fits: whether a candidate text is short enough for the model (e.g. its token limit).
        """
        turns = list(self._turns) if self.max_turns else []
        while turns:
            history = "\n".join(f"Q: {q}\nA: {a}" for q, a in turns)
            text = f"Earlier in this conversation:\n{history}\n\nNow answer: {question}"
            if len(history) <= self.max_chars and (fits is None or fits(text)):
                return text, len(turns)
            turns = turns[1:]
        return question, 0
