"""Drop visual tokens that repeat the same patch of the previous chunk, before the LLM (TimeChat-Online).

Static regions of a video produce nearly the same vision features chunk after chunk; writing them
again costs prefill compute and memory and adds nothing. Survivors keep their original positions, so
the model still knows where and when each one is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from memory.policies.base import Policy, Wrapper
from memory.policies.sink_window import SinkWindow


@dataclass
class TokenDrop(Wrapper):
    """Before the LLM, drop tokens whose feature repeats the same patch one chunk earlier.

    Attributes:
        threshold: cosine similarity above which a token counts as a repeat.
        min_keep: tokens kept per chunk at least (the most changed ones), so every chunk stays visible.
        inner: the policy that keeps the memory bounded afterwards.
    """

    threshold: float = 0.9
    min_keep: int = 1
    inner: Policy = field(default_factory=SinkWindow)

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {self.threshold}")
        if self.min_keep < 1:
            raise ValueError(f"min_keep must be >= 1, got {self.min_keep}")

    def filter_chunk(self, features: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor | None:
        if previous is None or previous.shape != features.shape:
            return self.inner.filter_chunk(features, previous)
        similarity = torch.nn.functional.cosine_similarity(features.float(), previous.float(), dim=-1)  # (n,)
        keep = (similarity <= self.threshold).nonzero().squeeze(1)
        if keep.numel() < self.min_keep:
            keep = similarity.topk(min(self.min_keep, similarity.numel()), largest=False).indices.sort().values
        return keep
