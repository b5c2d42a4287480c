"""Model-derived signals a policy may ask for while making room, computed once and only if asked."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from memory.streaming_cache import StreamingCache


class AttentionProbe:
    """Attention that the chat template's proxy rows would pay to every cached token.

    Args:
        cache: the stream's cache (read only).
        compute_queries: returns per layer the proxy rows' rotated ``(queries, keys)`` (the model's
            ``proxy_queries`` bound to this stream); called at most once.
    """

    def __init__(
        self, cache: StreamingCache, compute_queries: Callable[[], list[tuple[torch.Tensor, torch.Tensor]]]
    ) -> None:
        self._cache = cache
        self._compute_queries = compute_queries
        self._proxy: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def attention(self, layer_idx: int) -> torch.Tensor:
        """``(H_kv, full-precision slots)`` attention of the proxy rows to each cached slot, averaged over the rows
        and over the query heads sharing each KV head.

        Exactly the attention the model computes for those rows: softmax over every cached slot and
        the proxy tokens before each row (causal); the proxy's own columns are then left out. Slots
        are the full-precision ones (``layer.keys``); a low-precision tier, if any, takes its share
        of the softmax (dequantised, as the model sees it) but gets no column.
        """
        if self._proxy is None:
            self._proxy = self._compute_queries()
        queries, proxy_keys = self._proxy[layer_idx]  # (H_q, P, D), (H_kv, P, D)
        layer = self._cache.layers[layer_idx]
        keys = layer.keys[0].float()  # (H_kv, N, D)
        n_cached = keys.shape[1]
        if layer.quantized_segment is not None:
            low_keys = layer.quantized_segment.dequantized(torch.float32)[0][0]  # (H_kv, Q, D)
            keys = torch.cat([keys, low_keys], dim=1)
        kv_heads = keys.shape[0]
        n_query_heads, n_rows, dim = queries.shape
        group = n_query_heads // kv_heads
        grouped = queries.reshape(kv_heads, group, n_rows, dim)
        scale = 1.0 / math.sqrt(dim)
        cached = torch.einsum("kgpd,knd->kgpn", grouped, keys) * scale  # (H_kv, group, P, N + Q)
        own = torch.einsum("kgpd,kqd->kgpq", grouped, proxy_keys) * scale  # (H_kv, group, P, P)
        own = own.masked_fill(~torch.ones(n_rows, n_rows, dtype=torch.bool, device=own.device).tril(), float("-inf"))
        weights = torch.cat([cached, own], dim=-1).softmax(dim=-1)[..., :n_cached]
        return weights.mean(dim=(1, 2))
