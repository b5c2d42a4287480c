"""The interface every memory policy implements."""

from __future__ import annotations

from dataclasses import dataclass

from memory.blocks import Block


@dataclass
class Policy:
    """Decides which cached blocks stay resident before new tokens are written.

    Subclasses are small dataclasses with validated fields that override :meth:`blocks_to_keep`.
    """

    def blocks_to_keep(self, blocks: list[Block], incoming_tokens: int, incoming_frames: int) -> list[int]:
        """Return the indices (ascending) of ``blocks`` to keep so that the incoming write fits.

        Args:
            blocks: what the cache holds now, oldest first.
            incoming_tokens: tokens about to be appended.
            incoming_frames: real frames those tokens carry.
        """
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The snake_case name users type (``sink_window`` for ``SinkWindow``)."""
        out = []
        for i, ch in enumerate(type(self).__name__):
            if ch.isupper() and i:
                out.append("_")
            out.append(ch.lower())
        return "".join(out)
