"""Keep the long-term tokens with the smallest key norm (the L2-norm baseline of KV compression)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memory.candidates import Candidates
from memory.policies.base import Policy


@dataclass
class KeyNorm(Policy):
    """Long-term tokens ranked by low key L2 norm, per layer and KV head (no attention needed)."""

    def score_layer(
        self, layer_idx: int, keys: torch.Tensor, values: torch.Tensor, origin: torch.Tensor, candidates: Candidates
    ) -> torch.Tensor:
        return -keys.float().norm(dim=-1)
