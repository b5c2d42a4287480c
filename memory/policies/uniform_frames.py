"""Keep whole frames evenly spread over the past (uniform temporal subsampling baseline)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memory.candidates import Candidates
from memory.policies.base import Policy


@dataclass
class UniformFrames(Policy):
    """Long-term memory as whole chunks at evenly spaced times; the same choice in every head.

    Every chunk gets a score from its place in a recursive halving of the long-term span (first,
    last, middle, quarters, ...), so any budget keeps a near-uniform subset of whole chunks.
    """

    def score_layer(
        self, layer_idx: int, keys: torch.Tensor, values: torch.Tensor, origin: torch.Tensor, candidates: Candidates
    ) -> torch.Tensor:
        span = candidates.span_of(origin)  # (H, N)
        present = span[0].unique()  # chunks that still have long-term tokens, in time order
        priority = torch.empty(len(present))
        priority[_halving_order(len(present))] = torch.arange(len(present), 0, -1, dtype=torch.float)
        by_span = torch.zeros(int(span.max()) + 1)
        by_span[present] = priority
        return by_span.to(keys.device)[span]


def _halving_order(n: int) -> torch.Tensor:
    """Indices 0..n-1 ordered so that every prefix is spread evenly (ends first, then midpoints)."""
    if n <= 2:
        return torch.arange(n)
    order = [0, n - 1]
    seen = {0, n - 1}
    intervals = [(0, n - 1)]
    while intervals:
        next_intervals = []
        for lo, hi in intervals:
            mid = (lo + hi) // 2
            if mid not in seen:
                seen.add(mid)
                order.append(mid)
            if mid - lo > 1:
                next_intervals.append((lo, mid))
            if hi - mid > 1:
                next_intervals.append((mid, hi))
        intervals = next_intervals
    return torch.tensor(order)
