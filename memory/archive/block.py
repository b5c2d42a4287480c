"""One archived frame block: its K/V at full precision plus what is needed to put it back."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ArchivedBlock:
    """A frame block kept off the device.

    Attributes:
        block_id: the chunk's running index in the stream (unique, increasing with time).
        timestamps: media times (s) of its real frames.
        position: its place on the re-indexed position axis when archived; ``keys`` are rotated for it.
        logical: ``(n,)`` long, the original logical index of each token.
        keys: ``(L, H, n, D)`` rotated keys, every layer and KV head.
        values: ``(L, H, n, D)`` values.
        vectors: retrieval vectors by retriever kind (``visual``, ``internal``), each ``(dim,)`` float32.
    """

    block_id: int
    timestamps: tuple[float, ...]
    position: int | None
    logical: torch.Tensor
    keys: torch.Tensor
    values: torch.Tensor
    vectors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return int(self.keys.shape[2])

    @property
    def nbytes(self) -> int:
        """Bytes of the tensors (K/V, logical indices, vectors)."""
        tensors = [self.keys, self.values, self.logical, *self.vectors.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def meta(self) -> dict[str, object]:
        """JSON-friendly description (the journal's entry for this block)."""
        return {
            "id": self.block_id,
            "timestamps": list(self.timestamps),
            "position": self.position,
            "n_tokens": self.n_tokens,
            "logical_start": int(self.logical[0]) if self.logical.numel() else None,
            "logical_end": int(self.logical[-1]) + 1 if self.logical.numel() else None,
        }

    def tensors(self) -> dict[str, torch.Tensor]:
        """Named CPU tensors for a safetensors shard."""
        prefix = f"b{self.block_id}"
        out = {f"{prefix}.keys": self.keys, f"{prefix}.values": self.values, f"{prefix}.logical": self.logical}
        for kind, vector in self.vectors.items():
            out[f"{prefix}.vector.{kind}"] = vector
        return {name: t.detach().to("cpu").contiguous() for name, t in out.items()}
