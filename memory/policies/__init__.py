"""Memory policies, by the names users type (``streamvqa policies`` lists them)."""

from __future__ import annotations

from memory.policies.base import Policy
from memory.policies.key_norm import KeyNorm
from memory.policies.redundancy_value_norm import RedundancyValueNorm
from memory.policies.sink_window import SinkWindow
from memory.policies.uniform_frames import UniformFrames
from pipeline.errors import UserInputError

POLICIES: dict[str, type[Policy]] = {
    "sink_window": SinkWindow,
    "key_norm": KeyNorm,
    "uniform_frames": UniformFrames,
    "redundancy_value_norm": RedundancyValueNorm,
}


def describe_policies() -> dict[str, str]:
    """Policy name -> the first line of its docstring."""
    return {name: (cls.__doc__ or "").strip().splitlines()[0] for name, cls in POLICIES.items()}


def build_policy(name: str) -> Policy:
    """Instantiate the policy called ``name`` with its default settings."""
    if name not in POLICIES:
        raise UserInputError(f"unknown memory policy {name!r}; valid policies: {', '.join(POLICIES)}")
    return POLICIES[name]()


__all__ = [
    "POLICIES",
    "KeyNorm",
    "Policy",
    "RedundancyValueNorm",
    "SinkWindow",
    "UniformFrames",
    "build_policy",
    "describe_policies",
]
