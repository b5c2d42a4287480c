"""A transformers ``Cache`` whose layers keep a logical length apart from their physical tensors.

A language model sees positions through two numbers: the RoPE position ids we pass explicitly, and the
*sequence* offset the attention mask is built from. ``DynamicCache`` ties the second to the physical
length of its tensors, so dropping a token shifts every later token's mask index. Here each layer
remembers how many tokens it has ever seen (``logical_length``) separately from how many it still
holds, and reports ``kv_offset = logical - physical`` to the mask builder, exactly as
``DynamicSlidingWindowLayer`` does. Eviction therefore never moves a position.

Rules the caller must follow (measured on transformers 5.23; see DESIGN.md):

* evict only *between* forward calls, never inside ``update`` (the mask is fixed before the update);
* keep the same tokens in every layer and head so all layers share one mask (the mask is built from
  layer 0); per-head selection is a later policy's business and must keep counts equal.

Shapes: keys and values are ``(batch, kv_heads, physical_len, head_dim)``.

A layer may also hold a low-precision tier, ``quantized_segment`` (see
:mod:`memory.quantized_segment`): tokens a policy evicted but keeps at int8/int4. Attention sees them
dequantised in front of the full-precision tokens (the order of cached tokens does not matter to
attention: every cached token is visible to every new query), and they count in the physical length
the mask is built from. ``keys``/``values``/``origin()`` describe the full-precision tokens only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

from memory.quantized_segment import QuantizedSegment


class StreamingLayer(CacheLayerMixin):
    """One layer of a :class:`StreamingCache`: appended K/V plus a logical token counter."""

    is_sliding = False
    is_compileable = False
    is_croppable = True

    def __init__(self) -> None:
        super().__init__()
        self.logical_length = 0
        # Logical index of each physical slot, per KV head, for the slots up to the last compaction.
        # Slots appended since then are contiguous and implicit (no work on the per-token hot path).
        self._compacted_origin: torch.Tensor | None = None  # (H, P) long
        self.quantized_segment: QuantizedSegment | None = None  # evicted tokens kept at low precision

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        batch, heads, _, dim = key_states.shape
        self.keys = key_states.new_zeros((batch, heads, 0, dim))
        self.values = value_states.new_zeros((batch, heads, 0, value_states.shape[-1]))
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``(B, H, q, D)`` states; returns the full physical ``(B, H, physical + q, D)``."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        self.keys = torch.cat([self.keys, key_states], dim=-2)
        self.values = torch.cat([self.values, value_states], dim=-2)
        self.logical_length += key_states.shape[-2]
        if self.quantized_segment is None:
            return self.keys, self.values
        low_keys, low_values = self.quantized_segment.dequantized(self.keys.dtype)  # transient, this layer only
        return torch.cat([low_keys, self.keys], dim=-2), torch.cat([low_values, self.values], dim=-2)

    @property
    def full_precision_length(self) -> int:
        """Tokens held in ``keys``/``values``."""
        return 0 if self.keys is None else int(self.keys.shape[-2])

    @property
    def quantized_length(self) -> int:
        """Tokens held in the low-precision tier."""
        return 0 if self.quantized_segment is None else self.quantized_segment.num_tokens

    @property
    def physical_length(self) -> int:
        """Tokens attention sees: full precision plus low precision."""
        return self.full_precision_length + self.quantized_length

    def get_seq_length(self) -> int:
        return self.logical_length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.physical_length + query_length, self.logical_length - self.physical_length

    def get_max_length(self) -> int:
        return -1

    def origin(self) -> torch.Tensor:
        """``(H, physical)`` long: the logical index of every physical slot, per KV head."""
        if not self.is_initialized:
            return torch.zeros((0, 0), dtype=torch.long)
        heads, physical = self.keys.shape[1], self.full_precision_length
        prefix = self._compacted_origin
        done = 0 if prefix is None else prefix.shape[1]
        tail = torch.arange(self.logical_length - (physical - done), self.logical_length, device=self.keys.device)
        tail = tail.unsqueeze(0).expand(heads, -1)
        return tail if prefix is None else torch.cat([prefix, tail], dim=1)

    def keep(self, index: torch.Tensor) -> None:
        """Keep the physical slots at ``index``: 1-D ``(N,)`` for every head, or ``(H, N)`` per head.

        Indices must be ascending within each head so that logical order is preserved.
        """
        if not self.is_initialized:
            return
        index = index.to(self.keys.device)
        origin = self.origin()
        if index.ndim == 1:
            self.keys = self.keys.index_select(-2, index)
            self.values = self.values.index_select(-2, index)
            self._compacted_origin = origin.index_select(1, index)
            return
        batch, heads, _, dim = self.keys.shape
        gather = index.view(1, heads, -1, 1)
        self.keys = self.keys.gather(-2, gather.expand(batch, -1, -1, dim))
        self.values = self.values.gather(-2, gather.expand(batch, -1, -1, self.values.shape[-1]))
        self._compacted_origin = origin.gather(1, index)

    def replace_slots(self, start: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """New contents ``(B, H, M, D)`` for the full-precision slots ``start .. start + M`` (new
        tensors: never written in place, so forked caches stay private)."""
        end = start + keys.shape[-2]
        self.keys = torch.cat([self.keys[..., :start, :], keys.to(self.keys.dtype), self.keys[..., end:, :]], dim=-2)
        self.values = torch.cat(
            [self.values[..., :start, :], values.to(self.values.dtype), self.values[..., end:, :]], dim=-2
        )

    def demote(self, index: torch.Tensor, bits: int | None, group_size: int) -> None:
        """Copy the full-precision slots at ``index`` ``(H, M)`` (ascending) into the low-precision tier
        (``bits=None``: kept at full precision there). The caller removes them with :meth:`keep`."""
        if not self.is_initialized or index.shape[-1] == 0:
            return
        index = index.to(self.keys.device)
        gather = index.view(1, index.shape[0], -1, 1)
        keys = self.keys.gather(-2, gather.expand(self.keys.shape[0], -1, -1, self.keys.shape[-1]))
        values = self.values.gather(-2, gather.expand(self.values.shape[0], -1, -1, self.values.shape[-1]))
        origin = self.origin().gather(1, index)
        if self.quantized_segment is None:
            self.quantized_segment = QuantizedSegment.build(keys, values, origin, bits, group_size)
        else:
            self.quantized_segment = self.quantized_segment.added(keys, values, origin)

    def truncate(self, physical_length: int, logical_length: int) -> None:
        """Drop every token appended after a checkpoint (used to roll back an answer)."""
        if self.is_initialized:
            full = physical_length - self.quantized_length  # the low-precision tier is never appended to
            self.keys = self.keys[..., :full, :]
            self.values = self.values[..., :full, :]
            if self._compacted_origin is not None and self._compacted_origin.shape[1] > full:
                raise RuntimeError("cannot truncate into the compacted part of the cache")
        self.logical_length = logical_length

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError("StreamingLayer.crop takes a negative count of tokens to remove")
        if tokens_to_remove:
            self.truncate(self.physical_length + tokens_to_remove, self.logical_length + tokens_to_remove)

    def reset(self) -> None:
        self.keys = self.values = None
        self.is_initialized = False
        self.logical_length = 0
        self._compacted_origin = None
        self.quantized_segment = None

    def nbytes(self) -> int:
        """Bytes of full-precision keys and values plus the low-precision tier."""
        if not self.is_initialized:
            return 0
        total = self.keys.numel() * self.keys.element_size() + self.values.numel() * self.values.element_size()
        return total + (0 if self.quantized_segment is None else self.quantized_segment.nbytes())

    # ----------------------------------------------------------------------------- persistence
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Keys/values ``(B, H, P, D)``, the compacted origin ``(H, P')``, the low-precision tier if any,
        and the logical length."""
        meta: dict[str, Any] = {"logical_length": self.logical_length, "initialized": bool(self.is_initialized)}
        if not self.is_initialized:
            return {}, meta
        tensors = {"keys": self.keys, "values": self.values}
        if self._compacted_origin is not None:
            tensors["compacted_origin"] = self._compacted_origin
        if self.quantized_segment is not None:
            segment_tensors, meta["quantized_segment"] = self.quantized_segment.state_dict()
            tensors.update({f"quantized_segment.{key}": value for key, value in segment_tensors.items()})
        return tensors, meta

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Restore a saved layer (tensors already on the target device)."""
        self.reset()
        self.logical_length = int(meta["logical_length"])
        if not meta["initialized"]:
            return
        keys, values = tensors["keys"], tensors["values"]
        if keys.dim() != 4 or keys.shape[:3] != values.shape[:3]:
            raise ValueError(f"saved keys {tuple(keys.shape)} and values {tuple(values.shape)} do not match")
        self.keys, self.values = keys, values
        self.dtype, self.device = keys.dtype, keys.device
        self._compacted_origin = tensors.get("compacted_origin")
        if "quantized_segment" in meta:
            prefix = "quantized_segment."
            segment = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            self.quantized_segment = QuantizedSegment.from_state_dict(segment, meta["quantized_segment"])
        self.is_initialized = True


@dataclass(frozen=True)
class CacheCheckpoint:
    """Lengths of a cache at one moment; :meth:`StreamingCache.rollback` returns to them."""

    physical_length: int
    logical_length: int


class StreamingCache(Cache):
    """KV cache for unbounded streams: append anywhere, evict between forward calls, roll back answers.

    Args:
        num_layers: number of decoder layers of the language model.
    """

    def __init__(self, num_layers: int) -> None:
        super().__init__(layers=[StreamingLayer() for _ in range(num_layers)])

    @property
    def physical_length(self) -> int:
        """Tokens held now (identical in every layer)."""
        return self.layers[0].physical_length

    @property
    def logical_length(self) -> int:
        """Tokens ever appended (the sequence offset of the next token)."""
        return self.layers[0].logical_length

    def checkpoint(self) -> CacheCheckpoint:
        return CacheCheckpoint(self.physical_length, self.logical_length)

    def rollback(self, checkpoint: CacheCheckpoint) -> None:
        """Forget everything appended since ``checkpoint``; earlier tokens are untouched."""
        if self.physical_length < checkpoint.physical_length:
            raise RuntimeError("cannot roll back: tokens were evicted after the checkpoint was taken")
        for layer in self.layers:
            layer.truncate(checkpoint.physical_length, checkpoint.logical_length)

    def keep(self, index: torch.Tensor) -> None:
        """Keep the physical tokens at ``index`` (1-D sorted long tensor) in every layer and head."""
        for layer in self.layers:
            layer.keep(index)

    def keep_per_layer(self, indices: list[torch.Tensor]) -> None:
        """Keep ``indices[l]`` ``(H, N)`` in layer ``l`` (N equal across layers: masks come from layer 0)."""
        if len({int(i.shape[-1]) for i in indices}) > 1:
            raise ValueError("every layer must keep the same number of tokens per head")
        for layer, index in zip(self.layers, indices):
            layer.keep(index)

    @property
    def quantized_length(self) -> int:
        """Tokens held in the low-precision tier (identical in every layer)."""
        return self.layers[0].quantized_length

    def nbytes(self) -> int:
        """Bytes held by keys and values of all layers, low-precision tier included."""
        return sum(layer.nbytes() for layer in self.layers)

    # ----------------------------------------------------------------------------- persistence
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Every layer's state (see ``memory.stateful``): tensors ``layers.<i>.<key>``."""
        tensors: dict[str, torch.Tensor] = {}
        layers = []
        for index, layer in enumerate(self.layers):
            layer_tensors, layer_meta = layer.state_dict()
            tensors.update({f"layers.{index}.{key}": value for key, value in layer_tensors.items()})
            layers.append(layer_meta)
        return tensors, {"num_layers": len(self.layers), "layers": layers}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Restore a saved cache into this one (same number of layers)."""
        if meta["num_layers"] != len(self.layers):
            raise ValueError(f"the saved cache has {meta['num_layers']} layers; this model has {len(self.layers)}")
        for index, (layer, layer_meta) in enumerate(zip(self.layers, meta["layers"])):
            prefix = f"layers.{index}."
            layer_tensors = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            layer.load_state_dict(layer_tensors, layer_meta)

    def quantized_nbytes(self) -> int:
        """Bytes held by the low-precision tier of all layers."""
        return sum(0 if layer.quantized_segment is None else layer.quantized_segment.nbytes() for layer in self.layers)
