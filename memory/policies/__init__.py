"""Memory policies, by the names users type (``streamvqa policies`` lists them)."""

from __future__ import annotations

from memory.policies.base import Policy, Wrapper
from memory.policies.frame_merge import FrameMerge
from memory.policies.key_norm import KeyNorm
from memory.policies.mixed_precision import MixedPrecision
from memory.policies.proxy_attention import ProxyAttention
from memory.policies.redundancy_value_norm import RedundancyValueNorm
from memory.policies.sink_window import SinkWindow
from memory.policies.token_drop import TokenDrop
from memory.policies.uniform_frames import UniformFrames
from pipeline.errors import UserInputError

POLICIES: dict[str, type[Policy]] = {
    "sink_window": SinkWindow,
    "key_norm": KeyNorm,
    "uniform_frames": UniformFrames,
    "redundancy_value_norm": RedundancyValueNorm,
    "proxy_attention": ProxyAttention,
    "token_drop": TokenDrop,
    "frame_merge": FrameMerge,
    "mixed_precision": MixedPrecision,
}


def describe_policies() -> dict[str, str]:
    """Policy name -> the first line of its docstring."""
    return {name: (cls.__doc__ or "").strip().splitlines()[0] for name, cls in POLICIES.items()}


def build_policy(spec: str) -> Policy:
    """Instantiate a policy by name; ``+`` combines one scoring policy with any wrappers.

    Wrappers (``token_drop``, ``mixed_precision``) wrap in the order written, outermost first, around
    the one scoring policy wherever it is written: ``token_drop+proxy_attention+mixed_precision`` is
    ``TokenDrop(MixedPrecision(ProxyAttention()))``. Without a scoring policy the innermost wrapper
    keeps its default (``sink_window``).
    """
    names = [part.strip() for part in spec.split("+")]
    for name in names:
        if name not in POLICIES:
            raise UserInputError(f"unknown memory policy {name!r}; valid policies: {', '.join(POLICIES)}")
    scorers = [name for name in names if not issubclass(POLICIES[name], Wrapper)]
    if len(scorers) > 1:
        raise UserInputError(
            f"{' and '.join(map(repr, scorers))} both decide what long-term memory keeps; combine one of them "
            f"with policies that wrap another ({', '.join(wrapping_policies())}), e.g. token_drop+key_norm"
        )
    wrappers = [name for name in names if name not in scorers]
    if len(set(wrappers)) < len(wrappers):
        raise UserInputError(f"a policy appears twice in {spec!r}: name each one once")
    if scorers:
        policy = POLICIES[scorers[0]]()
    else:
        policy = POLICIES[wrappers.pop()]()
    for name in reversed(wrappers):
        policy = POLICIES[name](inner=policy)
    return policy


def wrapping_policies() -> list[str]:
    return [name for name, cls in POLICIES.items() if issubclass(cls, Wrapper)]


__all__ = [
    "FrameMerge",
    "POLICIES",
    "KeyNorm",
    "MixedPrecision",
    "Policy",
    "ProxyAttention",
    "RedundancyValueNorm",
    "SinkWindow",
    "TokenDrop",
    "UniformFrames",
    "build_policy",
    "describe_policies",
]
