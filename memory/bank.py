"""The per-stream memory: sinks, a short-term window at full precision, a budgeted long-term store.

Tiers, by logical token index (the order tokens were seen):

* **sinks**: the stream header (system prompt, start of the user turn); never evicted;
* **short-term**: the tokens of the most recent ``window_frames`` frames; never compressed;
* **long-term**: tokens of older frames, kept within ``budget_tokens`` per KV head and layer by the
  policy's scores (a policy with no long-term memory, like ``sink_window``, keeps none).

The model writes tokens into ``bank.cache`` during a forward call and tells the bank with
:meth:`record`; the bank frees space with :meth:`make_room` *before* the next write, never during a
forward call. Long-term selection may differ per layer and per KV head; the number kept is the same
in every head and layer (masks are built from layer 0).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from memory.blocks import Block, BlockKind
from memory.candidates import Candidates
from memory.evicted import EvictedFrame, frame_kv
from memory.policies.base import Policy
from memory.probe import AttentionProbe
from memory.stateful import Stateful, load_parts, merge_states
from memory.streaming_cache import StreamingCache

logger = logging.getLogger(__name__)


@dataclass
class FrameSpan:
    """One visual chunk's place in the logical sequence and what is left of it.

    Attributes:
        block: the chunk as recorded (timestamps, token count at write time).
        start: logical index of its first token (``start + block.n_tokens`` is one past its last).
        kept: tokens still resident, averaged over layers and KV heads.
    """

    block: Block
    start: int
    kept: float

    @property
    def end(self) -> int:
        return self.start + self.block.n_tokens


@dataclass(frozen=True)
class MemoryStats:
    """What the memory holds now and what it has let go (JSON-friendly via ``as_dict``).

    Token counts are per KV head and layer (the same everywhere); bytes cover all layers and heads.
    ``device_tokens`` counts what attention sees (the low-precision tier included);
    ``long_term_tokens`` counts the full-precision long-term tier only; ``device_bytes`` is the sum of
    the four ``*_bytes`` tiers.
    """

    device_tokens: int
    device_bytes: int
    sink_bytes: int
    short_term_bytes: int
    long_term_bytes: int
    quantized_tokens: int
    quantized_bytes: int
    logical_tokens: int
    sink_tokens: int
    short_term_tokens: int
    short_term_frames: int
    long_term_tokens: int
    long_term_frames: int
    resident_frames: int
    evicted_frames: int
    evicted_tokens: int
    compression_ratio: float
    policy: str
    window_frames: int | None
    budget_tokens: int | None
    budget_bytes: int | None

    def as_dict(self) -> dict[str, int | float | str | None]:
        return dict(self.__dict__)


class MemoryBank:
    """Owns one stream's :class:`StreamingCache` and keeps it within the policy's bounds.

    Args:
        num_layers: decoder layers of the language model.
        policy: scores long-term tokens (see ``memory/policies``).
        window_frames: frames in the short-term window (None: unbounded, nothing is ever evicted).
        budget_tokens: long-term tokens kept per KV head and layer (None: unbounded).
        budget_bytes: bytes the full-precision long-term tier may take over all layers and heads
            (None: unbounded); with ``budget_tokens`` too, the tighter one wins. A policy's
            low-precision tier (``mixed_precision``) has a budget of its own.
    """

    def __init__(
        self,
        num_layers: int,
        policy: Policy,
        window_frames: int | None = None,
        budget_tokens: int | None = None,
        budget_bytes: int | None = None,
    ) -> None:
        if window_frames is not None and window_frames < 1:
            raise ValueError(f"window_frames must be >= 1 or None, got {window_frames}")
        if budget_tokens is not None and budget_tokens < 0:
            raise ValueError(f"budget_tokens must be >= 0 or None, got {budget_tokens}")
        if budget_bytes is not None and budget_bytes < 0:
            raise ValueError(f"budget_bytes must be >= 0 or None, got {budget_bytes}")
        self.cache = StreamingCache(num_layers)
        self.policy = policy
        self.window_frames = window_frames
        self.budget_tokens = policy.long_term_budget(budget_tokens)
        self.budget_bytes = budget_bytes
        self.sink_tokens = 0
        self.spans: list[FrameSpan] = []  # resident chunks, oldest first
        self._recorded_end = 0  # logical index just past the last recorded block
        self._visual_tokens_seen = 0
        self._evicted_frames = 0
        self._frames_seen = 0
        # called once per chunk as it leaves the short-term window, before any compression (archive tier)
        self.on_evict: Callable[[EvictedFrame], None] | None = None
        self._handed_off = 0  # logical index below which chunks were handed to on_evict

    @property
    def blocks(self) -> list[Block]:
        """Resident chunks' blocks, oldest first (sinks excluded)."""
        return [span.block for span in self.spans]

    def record(self, block: Block) -> None:
        """Register the next ``block.n_tokens`` tokens written to the cache (blocks in write order)."""
        start = self._recorded_end
        self._recorded_end += block.n_tokens
        if self._recorded_end > self.cache.logical_length:
            raise RuntimeError("recorded more tokens than the cache has seen")
        if block.kind is BlockKind.SINK:
            if self._visual_tokens_seen:
                raise RuntimeError("sink tokens must come before every frame")
            self.sink_tokens += block.n_tokens
            return
        self.spans.append(FrameSpan(block, start, float(block.n_tokens)))
        self._visual_tokens_seen += block.n_tokens
        self._frames_seen += block.n_frames

    # ----------------------------------------------------------------------------------- eviction
    def make_room(self, incoming_tokens: int, incoming_frames: int, probe: AttentionProbe | None = None) -> None:
        """Evict so that after writing ``incoming_frames`` new frames the tiers are within bounds.

        ``probe`` supplies model-derived attention to policies that score with it (computed lazily).
        """
        budget = self.long_term_cap()
        if self.window_frames is None or not self.spans:
            return
        boundary = self._short_term_start(self.window_frames - incoming_frames)
        if self.on_evict is not None:
            self._hand_off(boundary)
        if budget is None:
            return
        origin0 = self.cache.layers[0].origin()[0]
        is_long = (origin0 >= self.sink_tokens) & (origin0 < boundary)
        if int(is_long.sum()) <= budget:
            return
        demotion = self.policy.demotion()
        if budget == 0:  # no full-precision long-term memory: one index for every layer and head
            if demotion is not None:
                long_index = is_long.nonzero().squeeze(1)
                self._demote([long_index.expand(layer.keys.shape[1], -1) for layer in self.cache.layers])
            self.cache.keep((~is_long).nonzero().squeeze(1))
        else:
            self._keep_best(boundary, budget, probe)
        if demotion is not None:
            self._trim_quantized()
        self._refresh_spans()

    def _hand_off(self, boundary: int) -> None:
        """Give ``on_evict`` every chunk that starts before ``boundary`` and was not handed off yet."""
        for span in self.spans:
            if span.start >= boundary:
                break
            if span.start >= self._handed_off:
                keys, values, logical = frame_kv(self.cache, span.start, span.end)
                block = span.block
                frame = EvictedFrame(block.chunk_index, block.frame_timestamps, block.position, logical, keys, values)
                self.on_evict(frame)
                self._handed_off = span.end

    def long_term_cap(self) -> int | None:
        """Full-precision long-term tokens allowed per layer and KV head now (None: unbounded):
        ``budget_tokens`` and ``budget_bytes`` (converted with the cache's bytes per token), the tighter."""
        caps = [] if self.budget_tokens is None else [self.budget_tokens]
        if self.budget_bytes is not None and self.cache.layers[0].is_initialized:
            caps.append(self.budget_bytes // self.full_precision_bytes_per_token())
        return min(caps) if caps else None

    def full_precision_bytes_per_token(self) -> int:
        """Bytes one token takes at full precision over all layers and KV heads (0 before any write)."""
        total = 0
        for layer in self.cache.layers:
            if layer.is_initialized:
                for t in (layer.keys, layer.values):
                    total += t.shape[0] * t.shape[1] * t.shape[-1] * t.element_size()
        return total

    def _demote(self, indices: list[torch.Tensor]) -> None:
        """Move ``indices[l]`` ``(H, M)`` of layer ``l`` to its low-precision tier (they are then dropped
        from full precision by the caller)."""
        demotion = self.policy.demotion()
        for layer_idx, (layer, index) in enumerate(zip(self.cache.layers, indices)):
            bits = demotion.layer_bits(layer_idx, len(self.cache.layers))
            layer.demote(index, bits, demotion.group_for(layer.keys.shape[-1]))

    def _trim_quantized(self) -> None:
        """Drop the oldest low-precision tokens until the tier is within the policy's budget."""
        held = self.cache.quantized_length
        segments = [layer.quantized_segment for layer in self.cache.layers if layer.quantized_segment is not None]
        fixed = sum(segment.fixed_nbytes() for segment in segments)
        cap = self.policy.demotion().token_cap(held, self.cache.quantized_nbytes(), fixed)
        if cap is None or held <= cap:
            return
        for layer in self.cache.layers:
            segment = layer.quantized_segment
            keep = torch.arange(held - cap, held, device=segment.origin.device).expand(segment.origin.shape[0], -1)
            layer.quantized_segment = segment.selected(keep) if cap else None

    def _short_term_start(self, frames_in_window: int) -> int:
        """Logical index where the short-term window starts if it holds ``frames_in_window`` frames."""
        frames = 0
        start = self.cache.logical_length
        for span in reversed(self.spans):
            if frames + span.block.n_frames > max(frames_in_window, 0):
                break
            frames += span.block.n_frames
            start = span.start
        return start

    def _keep_best(self, boundary: int, budget: int, probe: AttentionProbe | None) -> None:
        """Per layer and head: sinks + the ``budget`` best-scored long-term tokens + the window."""
        candidates = Candidates(self.spans, self.sink_tokens, boundary, probe)
        indices, demoted, selections = [], [], []
        for layer_idx, layer in enumerate(self.cache.layers):
            origin = layer.origin()  # (H, N)
            is_long = (origin >= self.sink_tokens) & (origin < boundary)
            n_sink = int((origin[0] < self.sink_tokens).sum())
            n_long = int(is_long[0].sum())
            long_slice = slice(n_sink, n_sink + n_long)  # long-term slots are contiguous in every head
            candidates.layer_slots[layer_idx] = long_slice
            keys = layer.keys[0, :, long_slice]
            values = layer.values[0, :, long_slice]
            selection = self.policy.select_layer(layer_idx, keys, values, origin[:, long_slice], candidates, budget)
            selections.append(selection)
            best = selection.keep + n_sink
            heads = origin.shape[0]
            if self.policy.demotion() is not None:
                evicted = torch.ones(heads, origin.shape[1], dtype=torch.bool, device=best.device)
                evicted[:, : n_sink].fill_(False)
                evicted[:, n_sink + n_long :].fill_(False)
                evicted.scatter_(1, best, False)
                demoted.append(evicted.nonzero()[:, 1].view(heads, -1))
            sinks = torch.arange(n_sink, device=best.device).expand(heads, -1)
            window = torch.arange(n_sink + n_long, origin.shape[1], device=best.device).expand(heads, -1)
            indices.append(torch.cat([sinks, best, window], dim=1))
        if demoted:
            self._demote(demoted)
        self.cache.keep_per_layer(indices)
        for layer, selection in zip(self.cache.layers, selections):  # merged tokens replace kept ones
            if selection.keys is not None:
                layer.replace_slots(n_sink, selection.keys.unsqueeze(0), selection.values.unsqueeze(0))

    def _refresh_spans(self) -> None:
        """Recount what is left of each span (mean over layers and heads); forget empty spans."""
        starts = torch.tensor([span.start for span in self.spans])
        counts = torch.zeros(len(self.spans))
        slots = 0
        for layer in self.cache.layers:
            origin = layer.origin()
            if layer.quantized_segment is not None:
                origin = torch.cat([origin, layer.quantized_segment.origin.to(origin.device)], dim=1)
            slots += origin.shape[0]
            visual = origin[origin >= self.sink_tokens].cpu()
            span_index = torch.searchsorted(starts, visual, right=True) - 1
            counts += torch.bincount(span_index, minlength=len(self.spans)).float()
        kept_spans = []
        for span, count in zip(self.spans, (counts / slots).tolist()):
            span.kept = count
            if count > 0:
                kept_spans.append(span)
            else:
                self._evicted_frames += span.block.n_frames
        self.spans = kept_spans

    # --------------------------------------------------------------------------------- positions
    def reindex(self, rotate_keys, start: int, min_gap=lambda n_tokens: 0) -> int:
        """Move resident chunks to compact positions starting at ``start``; returns the newest chunk's move.

        Chunks keep their order. In the short-term window the gap between neighbours becomes
        ``min(old gap, newest gap)`` (the recent rhythm is kept); long-term chunks are one position
        apart, so evicted stretches of the stream stop costing positions. Keys
        are re-rotated in place (RoPE: moving a key is one more rotation), per token, every layer.

        Args:
            rotate_keys: ``(keys (H, N, D), delta (H, N)) -> keys``, the model's re-rotation.
            start: position of the first resident chunk after the move.
            min_gap: positions a chunk of ``n_tokens`` occupies on the moved axis (M-RoPE's temporal
                axis: 0, chunks may share a step; 1-D RoPE: ``n_tokens``).
        """
        if not self.spans:
            return 0
        old = [span.block.position for span in self.spans]
        if any(p is None for p in old):
            raise RuntimeError("re-indexing needs every chunk's position (set by the model's prefill)")
        rhythm = old[-1] - old[-2] if len(old) > 1 else 1
        window_start = self._short_term_start(self.window_frames) if self.window_frames else 0
        new = [start]
        for k in range(1, len(old)):
            # the short-term window keeps its rhythm; long-term chunks keep only their order
            floor = min_gap(self.spans[k - 1].block.n_tokens)
            cap = rhythm if self.spans[k].start >= window_start else max(1, floor)
            new.append(new[-1] + max(floor, min(old[k] - old[k - 1], cap)))
        span_delta = torch.tensor([n - o for n, o in zip(new, old)] + [0])  # last entry: sinks
        starts = torch.tensor([span.start for span in self.spans])
        for layer in self.cache.layers:
            origin = layer.origin()
            span_index = torch.searchsorted(starts.to(origin.device), origin, right=True) - 1
            span_index = span_index.masked_fill(origin < self.sink_tokens, len(self.spans))
            delta = span_delta.to(origin.device)[span_index]
            layer.keys = rotate_keys(layer.keys[0], delta).unsqueeze(0)
            segment = layer.quantized_segment
            if segment is not None:  # low precision: dequantise, rotate, quantise again
                index = torch.searchsorted(starts.to(origin.device), segment.origin, right=True) - 1
                low_keys = segment.dequantized(layer.keys.dtype)[0][0]
                layer.quantized_segment = segment.with_keys(rotate_keys(low_keys, span_delta[index]).unsqueeze(0))
        for span, position in zip(self.spans, new):
            span.block.position = position
        logger.info("re-indexed %d chunks: positions %d..%d -> %d..%d", len(old), old[0], old[-1], new[0], new[-1])
        return new[-1] - old[-1]

    # ------------------------------------------------------------------------------------- views
    @property
    def resident_frame_timestamps(self) -> list[float]:
        """Timestamps of the frames that still have tokens in memory, oldest first."""
        return [t for span in self.spans for t in span.block.frame_timestamps]

    def kept_per_frame(self) -> list[tuple[float, float]]:
        """``(first timestamp of the chunk, fraction of its tokens still resident)`` per resident chunk."""
        return [(span.block.frame_timestamps[0], span.kept / span.block.n_tokens) for span in self.spans]

    def stats(self) -> MemoryStats:
        window_start = self._short_term_start(self.window_frames) if self.window_frames else 0
        short = [s for s in self.spans if s.start >= window_start]
        long = [s for s in self.spans if s.start < window_start]
        device_tokens = self.cache.physical_length
        quantized_tokens = self.cache.quantized_length
        short_tokens = sum(s.block.n_tokens for s in short)
        full_visual = max(0, self.cache.layers[0].full_precision_length - self.sink_tokens)
        long_tokens = max(0, full_visual - short_tokens)
        per_token = self.full_precision_bytes_per_token()
        return MemoryStats(
            device_tokens=device_tokens,
            device_bytes=self.cache.nbytes(),
            sink_bytes=self.sink_tokens * per_token,
            short_term_bytes=short_tokens * per_token,
            long_term_bytes=long_tokens * per_token,
            quantized_tokens=quantized_tokens,
            quantized_bytes=self.cache.quantized_nbytes(),
            logical_tokens=self.cache.logical_length,
            sink_tokens=self.sink_tokens,
            short_term_tokens=short_tokens,
            short_term_frames=sum(s.block.n_frames for s in short),
            long_term_tokens=long_tokens,
            long_term_frames=sum(s.block.n_frames for s in long),
            resident_frames=sum(s.block.n_frames for s in self.spans),
            evicted_frames=self._evicted_frames,
            evicted_tokens=self._visual_tokens_seen - full_visual - quantized_tokens,
            compression_ratio=round(self.cache.logical_length / device_tokens, 3) if device_tokens else 1.0,
            policy=self.policy.name,
            window_frames=self.window_frames,
            budget_tokens=self.budget_tokens,
            budget_bytes=self.budget_bytes,
        )

    # ------------------------------------------------------------------------------- persistence
    def stateful_parts(self) -> dict[str, Stateful]:
        """The components saved with the bank, by name (add new tiers here; see ``memory.stateful``)."""
        return {"cache": self.cache, "policy": self.policy}

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Ledger (sinks, spans with timestamps and positions, counters, bounds) plus every part's state."""
        spans = [
            {
                "kind": span.block.kind.value,
                "n_tokens": span.block.n_tokens,
                "frame_timestamps": list(span.block.frame_timestamps),
                "chunk_index": span.block.chunk_index,
                "position": span.block.position,
                "start": span.start,
                "kept": span.kept,
            }
            for span in self.spans
        ]
        ledger = {
            "window_frames": self.window_frames,
            "budget_tokens": self.budget_tokens,
            "budget_bytes": self.budget_bytes,
            "sink_tokens": self.sink_tokens,
            "spans": spans,
            "recorded_end": self._recorded_end,
            "visual_tokens_seen": self._visual_tokens_seen,
            "evicted_frames": self._evicted_frames,
            "frames_seen": self._frames_seen,
            "handed_off": self._handed_off,
        }
        return merge_states(self.stateful_parts(), ledger)

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Restore a saved bank into this one (built with the same policy, window and budget)."""
        for bound in ("window_frames", "budget_tokens", "budget_bytes"):
            if meta.get(bound) != getattr(self, bound):
                raise ValueError(f"the saved memory has {bound}={meta[bound]}; this one has {getattr(self, bound)}")
        load_parts(self.stateful_parts(), tensors, meta)
        self.sink_tokens = int(meta["sink_tokens"])
        self.spans = [
            FrameSpan(
                Block(
                    BlockKind(span["kind"]),
                    int(span["n_tokens"]),
                    tuple(float(t) for t in span["frame_timestamps"]),
                    int(span["chunk_index"]),
                    span["position"],
                ),
                int(span["start"]),
                float(span["kept"]),
            )
            for span in meta["spans"]
        ]
        self._recorded_end = int(meta["recorded_end"])
        self._visual_tokens_seen = int(meta["visual_tokens_seen"])
        self._evicted_frames = int(meta["evicted_frames"])
        self._frames_seen = int(meta["frames_seen"])
        self._handed_off = int(meta.get("handed_off", 0))
