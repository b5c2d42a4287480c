"""Merge the most similar adjacent frames of long-term memory (MovieChat-style consolidation).

While the long-term tier is over budget, the adjacent pair of chunks whose matched tokens (the same
patch of the grid, present in both) have the most similar keys is merged: each matched pair of tokens
becomes one token whose key and value are the plain mean of the two (MovieChat averages pairwise;
a chunk merged again counts as one frame). The later chunk's unmatched tokens stay as they are.

Positions: a merged token *keeps the earlier frame's slot*: its logical index, hence its place in
masks, eviction bookkeeping and re-indexing (it moves with the earlier chunk). Its key is the mean of
two keys rotated at their own positions (the earlier and the later frame's temporal position), so no
position is rewritten: the averaged key is what attention sees, as in MovieChat's merged memory.

Decisions are made once per eviction from layer-0 keys (the projected vision features before any
attention, averaged over KV heads) and applied to every layer and head alike, so every layer keeps
the same tokens. If no adjacent pair shares a patch (e.g. after heavy token dropping) and the tier
is still over budget, the oldest long-term chunk is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memory.candidates import Candidates
from memory.policies.base import Policy, Selection


@dataclass
class _Plan:
    """The merge decided for one eviction: kept long-term token indices, and merged groups."""

    keep: torch.Tensor  # (M,) ascending indices into the long-term tokens
    groups: list[list[int]]  # per kept token: the long-term indices averaged into it (pairwise, in order)


@dataclass
class FrameMerge(Policy):
    """Merge the most similar adjacent long-term frames (matched tokens averaged) until within budget."""

    def select_layer(
        self,
        layer_idx: int,
        keys: torch.Tensor,
        values: torch.Tensor,
        origin: torch.Tensor,
        candidates: Candidates,
        budget: int,
    ) -> Selection:
        plan = candidates.shared.get("frame_merge")
        if plan is None:  # first layer of this eviction: decide for every layer
            plan = candidates.shared["frame_merge"] = _plan_merges(keys, origin, candidates, budget)
        merged_keys, merged_values = keys[:, plan.keep].clone(), values[:, plan.keep].clone()
        for slot, group in enumerate(plan.groups):
            if len(group) > 1:
                merged_keys[:, slot] = _pairwise_mean(keys, group)
                merged_values[:, slot] = _pairwise_mean(values, group)
        heads = keys.shape[0]
        return Selection(plan.keep.expand(heads, -1), merged_keys, merged_values)

    def score_layer(self, layer_idx, keys, values, origin, candidates) -> torch.Tensor:  # noqa: ANN001
        raise NotImplementedError("frame_merge merges tokens instead of scoring them (see select_layer)")


def _pairwise_mean(states: torch.Tensor, group: list[int]) -> torch.Tensor:
    """``(H, D)``: the group's states averaged pairwise in merge order (MovieChat's running average)."""
    merged = states[:, group[0]]
    for index in group[1:]:
        merged = (merged + states[:, index]) / 2
    return merged


def _plan_merges(keys: torch.Tensor, origin: torch.Tensor, candidates: Candidates, budget: int) -> _Plan:
    """Greedy merging on layer-0 keys ``(H, N, D)``; tokens are the same in every head (``origin[0]``)."""
    if not torch.equal(origin, origin[:1].expand_as(origin)):
        raise RuntimeError("frame_merge needs the same long-term tokens in every head: do not combine it with "
                           "a per-head scoring policy")  # fmt: skip
    tokens = origin[0]
    span = candidates.span_of(tokens).tolist()
    patch = candidates.patch_of(tokens).tolist()
    unit = torch.nn.functional.normalize(keys.float(), dim=-1)  # (H, N, D)
    # chunks in time order, each a dict patch -> group of token indices merged into its slot
    chunks: list[dict[int, list[int]]] = []
    for index, (s, p) in enumerate(zip(span, patch)):
        if not chunks or span[index - 1] != s:
            chunks.append({})
        chunks[-1][p] = [index]
    total = len(tokens)

    def similarity(a: dict[int, list[int]], b: dict[int, list[int]]) -> float:
        shared = [p for p in a if p in b]
        if not shared:
            return float("-inf")
        left = torch.tensor([a[p][0] for p in shared])
        right = torch.tensor([b[p][0] for p in shared])
        return float((unit[:, left] * unit[:, right]).sum(-1).mean())

    scores = [similarity(chunks[i], chunks[i + 1]) for i in range(len(chunks) - 1)]
    while total > budget and chunks:
        best = max(range(len(scores)), key=scores.__getitem__) if scores else None
        if best is None or scores[best] == float("-inf"):  # nothing left to merge: drop the oldest chunk
            total -= len(chunks.pop(0))
            scores = scores[1:]
            continue
        earlier, later = chunks[best], chunks.pop(best + 1)
        for p, group in later.items():
            if p in earlier:
                earlier[p] = earlier[p] + group
                total -= 1
            else:
                earlier[p] = group
        scores.pop(best)
        if best < len(scores):
            scores[best] = similarity(earlier, chunks[best + 1])
        if best > 0:
            scores[best - 1] = similarity(chunks[best - 1], earlier)
    groups = sorted((group for chunk in chunks for group in chunk.values()), key=lambda g: g[0])
    keep = torch.tensor([g[0] for g in groups], dtype=torch.long, device=keys.device)
    return _Plan(keep, groups)
