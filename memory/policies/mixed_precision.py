"""Keep evicted long-term tokens at int8/int4 instead of dropping them (MiKV).

The inner policy decides which long-term tokens stay at full precision; the ones it would evict move
to each layer's low-precision tier (``StreamingLayer.quantized_segment``): per-token groups of
``group_size`` channels with a float16 scale and zero, keys smoothed by a per-channel offset. Answers
and later chunks attend to them, dequantised on the fly. The first and last ``full_precision_edge_layers``
decoder layers keep these tokens at full precision: Qwen2/2.5's large ``k_proj`` biases in those
layers make int4 KV there destroy answers. When the tier is over its own budget, its oldest tokens
are dropped first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from memory.policies.base import Policy, Wrapper
from memory.policies.sink_window import SinkWindow
from memory.quantize import SUPPORTED_BITS


@dataclass
class MixedPrecision(Wrapper):
    """Evicted long-term tokens stay at int4/int8 (first and last layers at full precision).

    Attributes:
        bits: 4 or 8.
        group_size: channels per quantisation group (capped at head_dim; must divide it).
        full_precision_edge_layers: layers at each end of the decoder kept at full precision.
        budget_tokens: low-precision tokens kept per layer and KV head (None: no token cap).
        budget_bytes: bytes of the low-precision tier over all layers (None: no byte cap).
        inner: decides which long-term tokens stay at full precision (default: none, ``sink_window``).
    """

    bits: int = 4
    group_size: int = 32
    full_precision_edge_layers: int = 1
    budget_tokens: int | None = 32768
    budget_bytes: int | None = None
    inner: Policy = field(default_factory=SinkWindow)

    def __post_init__(self) -> None:
        if self.bits not in SUPPORTED_BITS:
            raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {self.bits}")
        if self.group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {self.group_size}")
        if self.full_precision_edge_layers < 0:
            raise ValueError(f"full_precision_edge_layers must be >= 0, got {self.full_precision_edge_layers}")
        for name in ("budget_tokens", "budget_bytes"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 or None, got {value}")

    def demotion(self) -> Policy | None:
        return self

    def layer_bits(self, layer_idx: int, num_layers: int) -> int | None:
        """Bits the low-precision tier uses in this layer (None: full precision, an edge layer)."""
        edge = self.full_precision_edge_layers
        return None if layer_idx < edge or layer_idx >= num_layers - edge else self.bits

    def group_for(self, head_dim: int) -> int:
        """Quantisation group size for ``head_dim`` channels."""
        group = min(self.group_size, head_dim)
        if head_dim % group:
            raise ValueError(f"group_size {self.group_size} does not divide head_dim {head_dim}: pick a divisor")
        return group

    def token_cap(self, tokens: int, nbytes: int, fixed_nbytes: int) -> int | None:
        """Low-precision tokens (per layer and head) allowed, given the tier now holds ``tokens``
        taking ``nbytes`` of which ``fixed_nbytes`` do not depend on the count (key offsets);
        None: unbounded. Bytes per token are measured on the tier itself (the same for every token)."""
        caps = [] if self.budget_tokens is None else [self.budget_tokens]
        if self.budget_bytes is not None and tokens:
            caps.append(max(0, (self.budget_bytes - fixed_nbytes) * tokens // (nbytes - fixed_nbytes)))
        return min(caps) if caps else None
