"""The vectors the retrievers index and query with.

* visual: the vision encoder's pooled embedding of a frame block, the mean of its visual tokens after
  the projector, ``(hidden,)``; a query image is encoded the same way (a chunk of copies of it);
* internal (ReKV): the model's own keys. A block's representative is the mean of its keys after
  de-rotation to a common origin on the re-indexed position axis (the rotation by ``-position``, so
  the block's time drops out), one ``(H_kv * D,)`` vector per layer, each L2-normalised. A question's
  query is the mean of its query states (grouped to KV heads, GQA), de-rotated the same way.
  ``per_layer=True`` concatenates the layers (divided by ``sqrt(L)``): the inner product is then the
  mean over layers of the per-layer cosines; ``per_layer=False`` (default) averages the layers into
  one shared ``(H_kv * D,)`` vector (L times smaller index). For M-RoPE models only the temporal
  sections are de-rotated; the spatial sections keep a rotation that is the same for every frame of
  the stream, so the ranking between frames is unaffected.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

RotateKeys = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def pooled_embedding(embeds: torch.Tensor) -> torch.Tensor:
    """``(hidden,)`` float32 unit vector: the mean of ``embeds`` ``(n_tokens, hidden)``."""
    return F.normalize(embeds.detach().float().mean(dim=0), dim=0).cpu()


def _combine(per_layer_vectors: list[torch.Tensor], per_layer: bool) -> torch.Tensor:
    units = [F.normalize(v.reshape(-1).float(), dim=0) for v in per_layer_vectors]
    if per_layer:
        return (torch.cat(units) / len(units) ** 0.5).cpu()
    return F.normalize(torch.stack(units).mean(dim=0), dim=0).cpu()


def block_key_vector(
    keys: torch.Tensor, position: int | None, rotate_keys: RotateKeys, per_layer: bool
) -> torch.Tensor:
    """Representative of a block from its keys ``(L, H, n, D)`` rotated for ``position``."""
    layers = []
    for layer_keys in keys:
        if position:
            delta = torch.full(layer_keys.shape[:2], -int(position), dtype=torch.long, device=layer_keys.device)
            layer_keys = rotate_keys(layer_keys, delta)
        layers.append(layer_keys.float().mean(dim=1))  # (H, D)
    return _combine(layers, per_layer)


def question_query_vector(
    queries: list[torch.Tensor], first_position: int, kv_heads: int, rotate_keys: RotateKeys, per_layer: bool
) -> torch.Tensor:
    """Query of a question from per-layer rotated query states ``(H_q, P, D)`` at positions ``first_position + p``."""
    layers = []
    for layer_queries in queries:
        heads, length, dim = layer_queries.shape
        delta = -(first_position + torch.arange(length, device=layer_queries.device)).expand(heads, -1)
        plain = rotate_keys(layer_queries, delta)  # a query turns like a key: one rotation per position
        layers.append(plain.float().reshape(kv_heads, heads // kv_heads, length, dim).mean(dim=(1, 2)))
    return _combine(layers, per_layer)
