"""The interface every memory policy implements."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from memory.candidates import Candidates


@dataclass
class Selection:
    """What one layer keeps of its long-term tokens.

    Attributes:
        keep: ``(H, M)`` ascending indices into the layer's long-term tokens (``M`` <= budget, the
            same in every layer).
        keys: ``(H, M, D)`` new contents for the kept slots (merged prototypes/frames), or None to
            keep the cached keys as they are.
        values: ``(H, M, Dv)`` likewise.
    """

    keep: torch.Tensor
    keys: torch.Tensor | None = None
    values: torch.Tensor | None = None


@dataclass
class Policy:
    """Scores long-term tokens; the bank keeps the best ``budget_tokens`` per layer and KV head.

    Subclasses are small dataclasses with validated fields that override :meth:`score_layer`
    (and :meth:`long_term_budget` when they keep no long-term memory at all).
    """

    def long_term_budget(self, budget_tokens: int | None) -> int | None:
        """The long-term budget this policy works with, given the configured one."""
        return budget_tokens

    def score_layer(
        self,
        layer_idx: int,
        keys: torch.Tensor,
        values: torch.Tensor,
        origin: torch.Tensor,
        candidates: Candidates,
    ) -> torch.Tensor:
        """Importance of each long-term token of one layer (higher is kept first).

        Args:
            layer_idx: decoder layer.
            keys: ``(H, N, D)`` cached (rotated) keys of the long-term tokens, per KV head.
            values: ``(H, N, Dv)`` their values.
            origin: ``(H, N)`` logical index of each token (its place in the stream).
            candidates: frame/patch lookup for ``origin``.

        Returns:
            ``(H, N)`` scores.
        """
        raise NotImplementedError

    def select_layer(
        self,
        layer_idx: int,
        keys: torch.Tensor,
        values: torch.Tensor,
        origin: torch.Tensor,
        candidates: Candidates,
        budget: int,
    ) -> Selection:
        """Which long-term tokens of one layer to keep (same arguments as :meth:`score_layer`):
        by default the ``budget`` best scored per head. Policies that merge tokens override this."""
        scores = self.score_layer(layer_idx, keys, values, origin, candidates)
        return Selection(scores.topk(min(budget, scores.shape[-1]), dim=-1).indices.sort(dim=-1).values)

    def filter_chunk(self, features: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor | None:
        """Before the language model: grid indices of a chunk's tokens worth writing (None: all).

        Args:
            features: ``(n, hidden)`` the chunk's visual tokens (LLM-ready), in grid order.
            previous: ``(n', hidden)`` the previous chunk's tokens (before any dropping), or None.
        """
        return None

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Name and parameters (wrapped policies nested), see ``memory.stateful``; no tensors."""
        params: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            params[field.name] = value.state_dict()[1] if isinstance(value, Policy) else value
        return {}, {"name": self.name, "params": params}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Take the saved parameters; the saved policy must be this one (same name)."""
        if meta["name"] != self.name:
            raise ValueError(f"the saved memory policy is {meta['name']!r}, not {self.name!r}")
        for name, value in meta["params"].items():
            current = getattr(self, name)
            if isinstance(current, Policy):
                current.load_state_dict({}, value)
            else:
                setattr(self, name, value)

    def demotion(self) -> Policy | None:
        """The policy that keeps evicted long-term tokens at low precision (see ``MixedPrecision``),
        or None when evicted tokens are dropped."""
        return None

    @property
    def name(self) -> str:
        """The snake_case name users type (``sink_window`` for ``SinkWindow``)."""
        out = []
        for i, ch in enumerate(type(self).__name__):
            if ch.isupper() and i:
                out.append("_")
            out.append(ch.lower())
        return "".join(out)


def rank_normalised(scores: torch.Tensor) -> torch.Tensor:
    """Ranks of ``(H, N)`` scores along the last axis, scaled to [0, 1] (robust to scale)."""
    n = scores.shape[-1]
    ranks = scores.argsort(dim=-1).argsort(dim=-1).float()
    return ranks / max(n - 1, 1)


@dataclass
class Wrapper(Policy):
    """A policy that adds one behaviour to an ``inner`` policy and delegates everything else.

    ``TokenDrop(inner=KeyNorm())`` drops repeated tokens before the LLM *and* keeps the long-term
    memory by key norm; users type ``token_drop+key_norm``.
    """

    inner: Policy = None  # type: ignore[assignment]  # set by subclasses' defaults or the caller

    def long_term_budget(self, budget_tokens: int | None) -> int | None:
        return self.inner.long_term_budget(budget_tokens)

    def score_layer(self, layer_idx, keys, values, origin, candidates) -> torch.Tensor:  # noqa: ANN001
        return self.inner.score_layer(layer_idx, keys, values, origin, candidates)

    def select_layer(self, layer_idx, keys, values, origin, candidates, budget) -> Selection:  # noqa: ANN001
        return self.inner.select_layer(layer_idx, keys, values, origin, candidates, budget)

    def filter_chunk(self, features: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor | None:
        return self.inner.filter_chunk(features, previous)

    def demotion(self) -> Policy | None:
        return self.inner.demotion()

    @property
    def name(self) -> str:
        return f"{super().name}+{self.inner.name}"
