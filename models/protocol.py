"""The protocol every backbone family implements, and the records that cross it.

A ``VideoLM`` holds weights only. Everything that belongs to one stream (the KV cache, the position
cursor, the dialogue) lives in the session and is passed in; so one loaded model serves any number of
streams.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from memory.streaming_cache import StreamingCache


@dataclass
class VisualChunk:
    """The LLM-ready tokens of one temporal patch of frames.

    Attributes:
        embeds: ``(n_tokens, hidden)`` visual tokens after the projector, model dtype and device.
        grid_hw: ``(h, w)`` of the token grid after spatial merging (``n_tokens == h * w``).
        timestamps: media times (s) of the real frames in the chunk (padding duplicates excluded).
        position: after prefill, the position the chunk was written at along the axis that
            re-indexing moves (M-RoPE: the temporal component; 1-D RoPE: its first token).
        keep: grid indices that survive pre-LLM token dropping; survivors keep their original
            positions (the prefill computes the full grid's positions and selects these).
    """

    embeds: torch.Tensor
    grid_hw: tuple[int, int]
    timestamps: tuple[float, ...]
    position: int | None = None  # set by prefill: the chunk's temporal position (t component / 1-D start)
    keep: torch.Tensor | None = None  # (n_kept,) ascending grid indices to write; None: all of them

    @property
    def n_tokens(self) -> int:
        """Tokens this chunk writes into the cache (after any pre-LLM token dropping)."""
        return int(self.embeds.shape[0]) if self.keep is None else int(self.keep.numel())

    def kept(self, per_token: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """``per_token`` (one entry per grid token along ``dim``) restricted to the kept tokens."""
        return per_token if self.keep is None else per_token.index_select(dim, self.keep.to(per_token.device))


@dataclass
class SamplingParams:
    """How to pick answer tokens.

    Attributes:
        max_new_tokens: most tokens generated per answer.
        temperature: 0 means greedy; otherwise logits are divided by it before sampling.
        top_p: nucleus sampling mass (1.0 keeps the whole distribution).
        stop: extra stop strings; generation ends before the first occurrence.
        seed: seed of the sampling generator (None: nondeterministic).
    """

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass
class TextPiece:
    """A piece of answer text as it streams out, with the token ids that produced it."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None  # "stop", "length" or None while generating


@runtime_checkable
class VideoLM(Protocol):
    """A vision-language model that can ingest video incrementally into a KV cache."""

    family: str
    model_id: str
    frames_per_chunk: int
    num_layers: int
    max_positions: int

    def frame_size(self, height: int, width: int) -> tuple[int, int]:
        """The ``(height, width)`` every frame of a stream with this native size is resized to."""
        ...

    def new_stream_state(self) -> Any:
        """A fresh per-stream position cursor (family-specific, copyable)."""
        ...

    def start(self, cache: StreamingCache, state: Any, system_prompt: str) -> int:
        """Prefill the stream header (system prompt, start of the user turn); returns its token count."""
        ...

    def encode(
        self, frames: Sequence[np.ndarray], timestamps: Sequence[float], size: tuple[int, int] | None = None
    ) -> list[VisualChunk]:
        """Vision tower + projector on ``(H, W, 3)`` uint8 frames, resized to ``size`` ``(h, w)``.

        ``len(frames)`` may be any positive number; the last chunk is padded by repeating its last
        frame (the padding's timestamps are not reported).
        """
        ...

    def prefill(self, chunks: Sequence[VisualChunk], cache: StreamingCache, state: Any) -> None:
        """Append the chunks' tokens to ``cache`` with exact positions; advances ``state``."""
        ...

    def proxy_queries(self, cache: StreamingCache, state: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer rotated ``(queries (H_q, P, D), keys (H_kv, P, D))`` of the chat template's
        answer-prefix tokens at the stream's current position; the cache is left exactly as it was."""
        ...

    def next_position(self, state: Any) -> int:
        """The largest position the next text token would use (for the position budget)."""
        ...

    def rotate_keys(self, keys: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Keys ``(H, N, D)`` re-rotated as if written ``delta`` ``(H, N)`` positions later along the
        re-indexed axis (RoPE is a rotation, so moving a key is one more rotation)."""
        ...

    def min_position_gap(self, n_tokens: int) -> int:
        """Positions a chunk of ``n_tokens`` occupies on the re-indexed axis (M-RoPE: 0; 1-D: n_tokens)."""
        ...

    def shift_stream(self, state: Any, delta: int) -> None:
        """Move the cursor's re-indexed axis by ``delta`` (negative: back), after a re-index."""
        ...

    def count_question_tokens(self, question: str) -> int:
        """Tokens the question (with its chat-template wrapping) adds to the context."""
        ...

    def answer(
        self, question: str, cache: StreamingCache, state: Any, sampling: SamplingParams
    ) -> Iterator[TextPiece]:
        """Append the question and generate; the caller rolls the cache back afterwards."""
        ...
