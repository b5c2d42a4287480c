"""Sinks plus a recent window of frames (StreamingLLM / StreamingVLM): the bounded baseline."""

from __future__ import annotations

from dataclasses import dataclass

from memory.policies.base import Policy


@dataclass
class SinkWindow(Policy):
    """Sinks + the most recent frames; nothing older is kept (no long-term memory)."""

    def long_term_budget(self, budget_tokens: int | None) -> int | None:
        return 0
