"""Memory policies, by the names users type (``streamvqa policies`` lists them)."""

from __future__ import annotations

from typing import Any

from memory.policies.base import Policy
from memory.policies.sink_window import SinkWindow
from pipeline.errors import UserInputError

POLICIES: dict[str, type[Policy]] = {
    "sink_window": SinkWindow,
}


def describe_policies() -> dict[str, str]:
    """Policy name -> the first line of its docstring."""
    return {name: (cls.__doc__ or "").strip().splitlines()[0] for name, cls in POLICIES.items()}


def build_policy(memory_config: Any) -> Policy:
    """Instantiate the policy named by ``memory_config.policy`` with the budgets it understands."""
    name = memory_config.policy
    if name not in POLICIES:
        raise UserInputError(f"unknown memory policy {name!r}; valid policies: {', '.join(POLICIES)}")
    try:
        return POLICIES[name](window_frames=memory_config.window_frames, window_tokens=memory_config.window_tokens)
    except ValueError as error:
        raise UserInputError(f"memory policy {name}: {error}") from error


__all__ = ["POLICIES", "Policy", "SinkWindow", "build_policy", "describe_policies"]
