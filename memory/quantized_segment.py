"""The low-precision tier of one cache layer: tokens kept at int8/int4 instead of being dropped.

A :class:`QuantizedSegment` is immutable: every change returns a new segment, so a forked cache (the
engine's copy-on-write answer views) can share it safely. Tokens are ordered by logical index within
each head. Keys are smoothed before quantising: a per-head, per-channel offset (the mean of the first
keys the segment ever received; Qwen2/2.5 ``k_proj`` biases make it large) is subtracted and kept in
full precision. Layers the policy keeps at full precision (MiKV: first and last) store plain tensors
here (``bits is None``) so that every layer holds the same tokens.

Shapes: keys/values ``(1, H, Q, D)``; origin ``(H, Q)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from memory.quantize import QuantizedTensor, channel_mean, dequantize, quantize


@dataclass(frozen=True)
class QuantizedSegment:
    """Evicted tokens of one layer kept at low precision (or at full precision, ``bits=None``).

    Attributes:
        origin: ``(H, Q)`` logical index of every token, ascending per head.
        keys: quantised ``(1, H, Q, D)`` keys minus ``key_offset``, or the plain tensor.
        values: quantised ``(1, H, Q, Dv)`` values, or the plain tensor.
        key_offset: ``(1, H, 1, D)`` float32 channel means subtracted from keys (None for plain).
        bits: 8 or 4, or None for full precision.
    """

    origin: torch.Tensor
    keys: QuantizedTensor | torch.Tensor
    values: QuantizedTensor | torch.Tensor
    key_offset: torch.Tensor | None
    bits: int | None

    @property
    def num_tokens(self) -> int:
        return int(self.origin.shape[1])

    @staticmethod
    def build(
        keys: torch.Tensor, values: torch.Tensor, origin: torch.Tensor, bits: int | None, group_size: int,
        key_offset: torch.Tensor | None = None,
    ) -> QuantizedSegment:
        """A segment of ``keys``/``values`` ``(1, H, M, D)`` at ``origin`` ``(H, M)`` (ascending per head)."""
        if bits is None:
            return QuantizedSegment(origin, keys, values, None, None)
        offset = channel_mean(keys) if key_offset is None else key_offset
        return QuantizedSegment(
            origin, quantize(keys.float() - offset, bits, group_size), quantize(values, bits, group_size), offset, bits
        )

    def dequantized(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``(keys, values)`` ``(1, H, Q, D)`` in ``dtype``, as attention should see them."""
        if self.bits is None:
            return self.keys.to(dtype), self.values.to(dtype)
        keys = (dequantize(self.keys) + self.key_offset).to(dtype)
        return keys, dequantize(self.values, dtype)

    @property
    def group_size(self) -> int:
        return self.keys.group_size if isinstance(self.keys, QuantizedTensor) else 1

    def added(self, keys: torch.Tensor, values: torch.Tensor, origin: torch.Tensor) -> QuantizedSegment:
        """This segment plus new tokens (quantised with this segment's format and key offset)."""
        new = QuantizedSegment.build(keys, values, origin, self.bits, self.group_size, self.key_offset)
        merged_origin = torch.cat([self.origin, new.origin], dim=1)
        order = merged_origin.argsort(dim=1, stable=True)
        return QuantizedSegment(
            merged_origin.gather(1, order),
            _select(_cat(self.keys, new.keys), order),
            _select(_cat(self.values, new.values), order),
            self.key_offset,
            self.bits,
        )

    def selected(self, index: torch.Tensor) -> QuantizedSegment:
        """Tokens at ``index`` ``(H, M)`` (ascending per head)."""
        index = index.to(self.origin.device)
        keys, values = _select(self.keys, index), _select(self.values, index)
        return QuantizedSegment(self.origin.gather(1, index), keys, values, self.key_offset, self.bits)

    def with_keys(self, keys: torch.Tensor) -> QuantizedSegment:
        """The same tokens with new full-precision ``keys`` ``(1, H, Q, D)`` (re-quantised; re-indexing)."""
        if self.bits is None:
            return QuantizedSegment(self.origin, keys, self.values, None, None)
        return QuantizedSegment(
            self.origin, quantize(keys.float() - self.key_offset, self.bits, self.group_size), self.values,
            self.key_offset, self.bits,
        )  # fmt: skip

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors (``origin``, ``keys.*``/``values.*``, ``key_offset``) and format (see ``memory.stateful``)."""
        tensors = {"origin": self.origin}
        for name, part in (("keys", self.keys), ("values", self.values)):
            if isinstance(part, QuantizedTensor):
                tensors.update({f"{name}.codes": part.codes, f"{name}.scale": part.scale, f"{name}.zero": part.zero})
            else:
                tensors[name] = part
        if self.key_offset is not None:
            tensors["key_offset"] = self.key_offset
        return tensors, {"bits": self.bits, "group_size": self.group_size}

    @staticmethod
    def from_state_dict(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> QuantizedSegment:
        """The segment :meth:`state_dict` described."""
        bits, group_size = meta["bits"], int(meta["group_size"])

        def part(name: str) -> QuantizedTensor | torch.Tensor:
            if bits is None:
                return tensors[name]
            codes, scale, zero = (tensors[f"{name}.{field}"] for field in ("codes", "scale", "zero"))
            return QuantizedTensor(codes, scale, zero, int(bits), group_size)

        return QuantizedSegment(tensors["origin"], part("keys"), part("values"), tensors.get("key_offset"), bits)

    def fixed_nbytes(self) -> int:
        """Bytes that do not grow with the token count (the key offset)."""
        return 0 if self.key_offset is None else self.key_offset.numel() * self.key_offset.element_size()

    def nbytes(self) -> int:
        """Bytes held: codes, scales, zeros and the key offset (or the plain tensors)."""
        total = 0
        for part in (self.keys, self.values, self.key_offset):
            if isinstance(part, QuantizedTensor):
                total += part.nbytes()
            elif part is not None:
                total += part.numel() * part.element_size()
        return total


def _cat(a: QuantizedTensor | torch.Tensor, b: QuantizedTensor | torch.Tensor) -> QuantizedTensor | torch.Tensor:
    return a.cat(b) if isinstance(a, QuantizedTensor) else torch.cat([a, b], dim=-2)


def _select(t: QuantizedTensor | torch.Tensor, index: torch.Tensor) -> QuantizedTensor | torch.Tensor:
    if isinstance(t, QuantizedTensor):
        return t.select(index)
    gather = index.view(1, index.shape[0], index.shape[1], 1).expand(t.shape[0], -1, -1, t.shape[-1])
    return t.gather(-2, gather)
