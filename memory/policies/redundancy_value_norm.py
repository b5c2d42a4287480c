"""Temporal redundancy + value norm (InfiniPot-V): no attention weights needed."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memory.candidates import Candidates
from memory.policies.base import Policy, rank_normalised


@dataclass
class RedundancyValueNorm(Policy):
    """Keep tokens that differ from the same patch one chunk earlier and carry large values.

    Attributes:
        redundancy_weight: share of the score from temporal novelty (1 - cosine of a token's key to
            the same patch in the previous chunk); the rest comes from the value norm.
    """

    redundancy_weight: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.redundancy_weight <= 1.0:
            raise ValueError(f"redundancy_weight must be in [0, 1], got {self.redundancy_weight}")

    def score_layer(
        self, layer_idx: int, keys: torch.Tensor, values: torch.Tensor, origin: torch.Tensor, candidates: Candidates
    ) -> torch.Tensor:
        heads, n, _ = keys.shape
        earlier = candidates.same_patch_earlier(origin)  # (H, N) logical index or -1
        # where does that earlier token sit in this head's candidate list (if it is still there)?
        lookup = torch.full((heads, int(origin.max()) + 2), -1, dtype=torch.long, device=keys.device)
        lookup.scatter_(1, origin, torch.arange(n, device=keys.device).expand(heads, -1))
        found = lookup.gather(1, earlier.clamp(min=0)).masked_fill(earlier < 0, -1)
        unit = torch.nn.functional.normalize(keys.float(), dim=-1)
        partner = unit.gather(1, found.clamp(min=0).unsqueeze(-1).expand(-1, -1, unit.shape[-1]))
        similarity = (unit * partner).sum(-1).masked_fill(found < 0, 0.0)
        novelty = rank_normalised(-similarity)
        magnitude = rank_normalised(values.float().norm(dim=-1))
        return self.redundancy_weight * novelty + (1 - self.redundancy_weight) * magnitude
