"""Query-agnostic scoring by the attention of chat-template proxy rows (StreamMem)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memory.candidates import Candidates
from memory.policies.base import Policy


@dataclass
class ProxyAttention(Policy):
    """Keep the long-term tokens the answer-prefix rows attend to most (q·K for those rows only)."""

    def score_layer(
        self, layer_idx: int, keys: torch.Tensor, values: torch.Tensor, origin: torch.Tensor, candidates: Candidates
    ) -> torch.Tensor:
        if candidates.probe is None:
            raise RuntimeError("proxy_attention needs an attention probe: make_room(..., probe=...)")
        attention = candidates.probe.attention(layer_idx)  # (H_kv, physical)
        return attention[:, candidates.layer_slots[layer_idx]]
