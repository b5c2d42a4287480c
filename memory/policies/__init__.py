"""Memory policies, by the names users type (``streamvqa policies`` lists them)."""

from __future__ import annotations

from memory.policies.base import Policy, Wrapper
from memory.policies.key_norm import KeyNorm
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
}


def describe_policies() -> dict[str, str]:
    """Policy name -> the first line of its docstring."""
    return {name: (cls.__doc__ or "").strip().splitlines()[0] for name, cls in POLICIES.items()}


def build_policy(spec: str) -> Policy:
    """Instantiate a policy by name; ``a+b`` wraps ``b`` in ``a`` (``token_drop+key_norm``).

    Wrapping policies (like ``token_drop``) may stand alone and then wrap ``sink_window``.
    """
    names = [part.strip() for part in spec.split("+")]
    for name in names:
        if name not in POLICIES:
            raise UserInputError(f"unknown memory policy {name!r}; valid policies: {', '.join(POLICIES)}")
    for name in names[:-1]:
        if not issubclass(POLICIES[name], Wrapper):
            raise UserInputError(
                f"{name!r} does not wrap another policy; only {', '.join(wrapping_policies())} can stand "
                f"before a '+' (e.g. token_drop+key_norm)"
            )
    policy = POLICIES[names[-1]]()
    for name in reversed(names[:-1]):
        policy = POLICIES[name](inner=policy)
    return policy


def wrapping_policies() -> list[str]:
    return [name for name, cls in POLICIES.items() if issubclass(cls, Wrapper)]


__all__ = [
    "POLICIES",
    "KeyNorm",
    "Policy",
    "ProxyAttention",
    "RedundancyValueNorm",
    "SinkWindow",
    "TokenDrop",
    "UniformFrames",
    "build_policy",
    "describe_policies",
]
