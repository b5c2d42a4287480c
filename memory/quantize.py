"""Per-token group quantisation of cached keys and values (int8 / int4), and its inverse.

Each token's ``head_dim`` vector is cut into groups of ``group_size`` channels; every group gets an
asymmetric affine code (``x ≈ q * scale + zero`` with ``q`` in ``[0, 2**bits - 1]``), scale and zero
stored in float16. int4 codes are packed two per byte. The worst-case round-trip error of one element
is half a step, ``scale / 2 = (max - min) / (2 * (2**bits - 1))`` of its group (plus float16 rounding
of the scale and zero).

Key smoothing: Qwen2/2.5 ``k_proj`` biases are large and constant per channel, so keys share a big
per-channel offset that would eat the quantisation range. Callers subtract a per-channel mean
(:func:`channel_mean`) before quantising and add it back after; the mean is passed through
``offset``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SUPPORTED_BITS = (4, 8)


@dataclass(frozen=True)
class QuantizedTensor:
    """A ``(..., N, D)`` tensor stored as ``bits``-bit codes per group of ``group_size`` channels.

    Attributes:
        codes: ``(..., N, D * bits / 8)`` uint8 (int4: two codes per byte, low nibble first).
        scale: ``(..., N, D / group_size)`` float16.
        zero: ``(..., N, D / group_size)`` float16 (the value of code 0).
        bits: 4 or 8.
        group_size: channels per group.
    """

    codes: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    bits: int
    group_size: int

    @property
    def num_tokens(self) -> int:
        return int(self.codes.shape[-2])

    def nbytes(self) -> int:
        """Bytes actually held: codes, scales and zeros."""
        return sum(t.numel() * t.element_size() for t in (self.codes, self.scale, self.zero))

    def select(self, index: torch.Tensor) -> QuantizedTensor:
        """Tokens at ``index``: ``(H, M)`` per head for ``(1, H, N, ·)`` storage (gathers along N)."""
        return QuantizedTensor(*(_gather_tokens(t, index) for t in (self.codes, self.scale, self.zero)),
                               self.bits, self.group_size)  # fmt: skip

    def cat(self, other: QuantizedTensor) -> QuantizedTensor:
        """This tensor's tokens followed by ``other``'s (same bits and group size)."""
        if (self.bits, self.group_size) != (other.bits, other.group_size):
            raise ValueError("cannot concatenate quantised tensors of different formats")
        parts = (torch.cat([a, b], dim=-2) for a, b in zip((self.codes, self.scale, self.zero),
                                                           (other.codes, other.scale, other.zero)))  # fmt: skip
        return QuantizedTensor(*parts, self.bits, self.group_size)


def _gather_tokens(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``t`` ``(1, H, N, C)`` gathered at ``index`` ``(H, M)`` along N."""
    gather = index.to(t.device).view(1, index.shape[0], index.shape[1], 1).expand(t.shape[0], -1, -1, t.shape[-1])
    return t.gather(-2, gather)


def quantize(x: torch.Tensor, bits: int, group_size: int) -> QuantizedTensor:
    """Quantise ``x`` ``(..., N, D)`` per token and per group of ``group_size`` channels."""
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits}")
    dim = x.shape[-1]
    if group_size < 1 or dim % group_size:
        raise ValueError(f"group_size must divide head_dim {dim}, got {group_size}")
    if bits == 4 and dim % 2:
        raise ValueError(f"int4 packing needs an even head_dim, got {dim}")
    levels = 2**bits - 1
    groups = x.float().reshape(*x.shape[:-1], dim // group_size, group_size)
    low = groups.amin(dim=-1)
    high = groups.amax(dim=-1)
    scale = ((high - low) / levels).to(torch.float16)
    zero = low.to(torch.float16)
    step = scale.float().clamp(min=torch.finfo(torch.float16).tiny)
    codes = ((groups - zero.float().unsqueeze(-1)) / step.unsqueeze(-1)).round().clamp(0, levels)
    codes = codes.to(torch.uint8).reshape(*x.shape)
    if bits == 4:
        codes = codes[..., 0::2] | (codes[..., 1::2] << 4)
    return QuantizedTensor(codes, scale, zero, bits, group_size)


def dequantize(q: QuantizedTensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``(..., N, D)`` tensor ``q`` stands for, in ``dtype``."""
    codes = q.codes
    if q.bits == 4:
        codes = torch.stack([codes & 0x0F, codes >> 4], dim=-1).flatten(-2)
    groups = codes.float().reshape(*codes.shape[:-1], q.scale.shape[-1], q.group_size)
    x = groups * q.scale.float().unsqueeze(-1) + q.zero.float().unsqueeze(-1)
    return x.flatten(-2).to(dtype)


def channel_mean(x: torch.Tensor) -> torch.Tensor:
    """``(1, H, 1, D)`` per-head, per-channel mean of ``x`` ``(1, H, N, D)`` over its tokens."""
    return x.float().mean(dim=-2, keepdim=True)


def max_round_trip_error(x: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """Per-element bound of ``|dequantize(quantize(x)) - x|``: half a step of its group, plus slack
    for float16 scale/zero rounding. Same shape as ``x``."""
    dim = x.shape[-1]
    groups = x.float().reshape(*x.shape[:-1], dim // group_size, group_size)
    low, high = groups.amin(dim=-1), groups.amax(dim=-1)
    step = (high - low) / (2**bits - 1)
    slack = 2**-10 * (high.abs() + low.abs() + step * (2**bits - 1))  # float16 relative precision
    bound = step / 2 + slack
    return bound.unsqueeze(-1).expand_as(groups).reshape(x.shape)
