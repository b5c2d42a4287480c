"""Query-agnostic scoring by the attention of chat-template proxy rows, plus one prototype per frame (StreamMem).

Scores: the attention that the rows every answer starts with (end of the user turn and the assistant
header) pay to each cached token, recomputed for those rows only (``memory/probe.py``).

Prototypes: when a chunk is compressed for the first time (it has just left the short-term window,
all its tokens still there), the tokens of it that lose their place are not simply dropped: they are
merged into one prototype key/value, their attention-weighted mean, which takes the slot of the
best-scored of them (its logical index and position). One slot per such chunk is reserved inside the
budget in every head, so every head and layer keeps the same number of tokens; if a head keeps the
whole chunk anyway, that slot goes to its next best token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memory.candidates import Candidates
from memory.policies.base import Policy, Selection


@dataclass
class ProxyAttention(Policy):
    """Keep the long-term tokens the answer-prefix rows attend to most, plus one merged prototype per frame.

    Attributes:
        prototypes: merge each compressed chunk's evicted tokens into one prototype (StreamMem).
    """

    prototypes: bool = True

    def score_layer(
        self, layer_idx: int, keys: torch.Tensor, values: torch.Tensor, origin: torch.Tensor, candidates: Candidates
    ) -> torch.Tensor:
        if candidates.probe is None:
            raise RuntimeError("proxy_attention needs an attention probe: make_room(..., probe=...)")
        attention = candidates.probe.attention(layer_idx)  # (H_kv, physical)
        return attention[:, candidates.layer_slots[layer_idx]]

    def select_layer(
        self,
        layer_idx: int,
        keys: torch.Tensor,
        values: torch.Tensor,
        origin: torch.Tensor,
        candidates: Candidates,
        budget: int,
    ) -> Selection:
        scores = self.score_layer(layer_idx, keys, values, origin, candidates)  # (H, N)
        heads, n = scores.shape
        fresh = _fresh_chunks(origin, candidates)[-budget:] if self.prototypes and budget < n else []
        if not fresh:
            return Selection(scores.topk(min(budget, n), dim=-1).indices.sort(dim=-1).values)
        span = candidates.span_of(origin)  # (H, N)
        kept_keys, kept_values, keep_rows = [], [], []
        for head in range(heads):
            chosen = torch.zeros(n, dtype=torch.bool, device=scores.device)
            chosen[scores[head].topk(budget - len(fresh)).indices] = True
            proto_keys, proto_values = keys[head].clone(), values[head].clone()
            for chunk in fresh:
                evicted = ((span[head] == chunk) & ~chosen).nonzero().squeeze(1)
                if evicted.numel() == 0:
                    continue
                weights = scores[head, evicted].double() + 1e-12  # attention: >= 0
                weights = weights / weights.sum()
                slot = evicted[scores[head, evicted].argmax()]
                proto_keys[slot] = (weights[:, None] * keys[head, evicted].double()).sum(0).to(keys.dtype)
                proto_values[slot] = (weights[:, None] * values[head, evicted].double()).sum(0).to(values.dtype)
                chosen[slot] = True
            short = budget - int(chosen.sum())  # heads that kept a whole chunk: next best tokens
            if short > 0:
                chosen[scores[head].masked_fill(chosen, float("-inf")).topk(short).indices] = True
            rows = chosen.nonzero().squeeze(1)
            keep_rows.append(rows)
            kept_keys.append(proto_keys[rows])
            kept_values.append(proto_values[rows])
        return Selection(torch.stack(keep_rows), torch.stack(kept_keys), torch.stack(kept_values))


def _fresh_chunks(origin: torch.Tensor, candidates: Candidates) -> list[int]:
    """Indices (into ``candidates.spans``) of long-term chunks that still have every token in every head."""
    span = candidates.span_of(origin)  # (H, N)
    counts = torch.stack([torch.bincount(row, minlength=len(candidates.spans)) for row in span])  # (H, S)
    full = (counts == candidates.lengths.to(counts.device)).all(dim=0)
    return full.nonzero().squeeze(1).tolist()
