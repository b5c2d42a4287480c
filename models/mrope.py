"""M-RoPE position arithmetic for Qwen-VL streams, owned by us rather than the model.

Rule followed (the Qwen reference rule, also transformers 4.x): text tokens advance all three
components (t, h, w) together by one; a video that starts at position ``s`` gives the token of chunk
``k`` at grid cell ``(i, j)`` the position ``(s + tpos_k, s + i, s + j)``; the first text token after
the video is at ``max(all positions of the video) + 1``.

``tpos_k`` is the temporal index of chunk ``k``:

* Qwen2-VL: ``k`` (one step per temporal patch);
* Qwen2.5-VL: ``floor(tau_k * tokens_per_second)``, where ``tau_k`` is the media time of the chunk's
  first frame since the first frame of the stream. With uniform sampling at ``fps`` this equals the
  one-shot rule ``floor(k * temporal_patch_size / fps * tokens_per_second)``; with real timestamps
  it follows the clock (a live source with jitter or drops keeps true time). A 1e-6 tolerance
  absorbs float error before the floor (the reference computes in float32 and can floor 4.0 to 3).

transformers 5.23 differs (measured): its ``get_rope_index`` resumes text after a video at
``s + max(h, w)`` and ignores the temporal extent, so for any video longer than its spatial grid the
text positions overlap the video's. We never let the model derive positions; every forward gets
explicit ``position_ids`` of shape ``(3, 1, L)`` from this module.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch


@dataclass
class MRopeCursor:
    """Per-stream position state.

    Attributes:
        next_text: position of the next text token (all three components).
        video_start: ``s`` of the open video segment (None before the first chunk).
        video_max: largest position component used by the open video so far.
        t0: media time of the stream's first frame (None before the first chunk).
        chunks: visual chunks placed so far.
        t_shift: added to every temporal index (re-indexing moves old chunks back; new ones follow).
        last_grid: ``(h, w)`` token grid of the newest chunk.
    """

    next_text: int = 0
    video_start: int | None = None
    video_max: int = -1
    t0: float | None = None
    chunks: int = 0
    t_shift: int = 0
    last_grid: tuple[int, int] = (1, 1)

    def copy(self) -> MRopeCursor:
        return dataclasses.replace(self)


def text_positions(cursor: MRopeCursor, n: int) -> torch.Tensor:
    """Positions ``(3, n)`` for ``n`` text tokens; advances the cursor (closes any open video)."""
    start = cursor.next_text
    if cursor.video_start is not None:
        start = max(start, cursor.video_max + 1)
        cursor.video_start = None
        cursor.video_max = -1
    pos = torch.arange(start, start + n, dtype=torch.long).unsqueeze(0).expand(3, n)
    cursor.next_text = start + n
    return pos


def temporal_index(cursor: MRopeCursor, first_timestamp: float, tokens_per_second: float | None) -> int:
    """``tpos`` of the next chunk: chunk count (Qwen2-VL) or scaled media time (Qwen2.5-VL)."""
    if tokens_per_second is None:
        return cursor.chunks
    if cursor.t0 is None:
        cursor.t0 = first_timestamp
    return math.floor((first_timestamp - cursor.t0) * tokens_per_second + 1e-6)


def chunk_positions(
    cursor: MRopeCursor, grid_hw: tuple[int, int], first_timestamp: float, tokens_per_second: float | None
) -> torch.Tensor:
    """Positions ``(3, h*w)`` of one visual chunk (row-major grid); advances the cursor."""
    if cursor.video_start is None:
        cursor.video_start = cursor.next_text
    if cursor.t0 is None:
        cursor.t0 = first_timestamp
    s = cursor.video_start
    h, w = grid_hw
    tpos = temporal_index(cursor, first_timestamp, tokens_per_second) + cursor.t_shift
    rows = torch.arange(h, dtype=torch.long).repeat_interleave(w)
    cols = torch.arange(w, dtype=torch.long).repeat(h)
    pos = torch.stack([torch.full((h * w,), tpos, dtype=torch.long), rows, cols]) + s
    cursor.video_max = max(cursor.video_max, s + max(tpos, h - 1, w - 1))
    cursor.chunks += 1
    cursor.last_grid = grid_hw
    return pos


def shift_temporal(cursor: MRopeCursor, delta: int) -> None:
    """After every resident chunk's temporal index moved by ``delta``, move the cursor with them."""
    if cursor.video_start is None:
        raise RuntimeError("re-indexing needs an open video segment")
    cursor.t_shift += delta
    newest_t = cursor.video_max - cursor.video_start  # upper bound before the move
    h, w = cursor.last_grid
    cursor.video_max = cursor.video_start + max(newest_t + delta, h - 1, w - 1)


def frame_positions(cursor: MRopeCursor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """Positions ``(3, h*w)`` of a visual segment with a single temporal index; advances the cursor.

    This is the Qwen3-VL rule: its video is rendered as one ``<t seconds><|vision_start|>`` …
    ``<|vision_end|>`` segment per temporal patch, so every chunk is a segment of its own that starts
    at the current text position ``s``: token ``(i, j)`` gets ``(s, s + i, s + j)`` and the next text
    token is at ``s + max(h, w)`` (= the segment's largest component + 1). Time is carried by the
    timestamp text, never by the temporal component. transformers 5.23's Qwen3-VL ``get_rope_index``
    splits ``video_grid_thw`` into ``(1, h, w)`` rows and gives the same numbers (checked in
    ``tests/test_conformance.py``).
    """
    start = cursor.next_text
    if cursor.video_start is not None:  # close an open multi-chunk video first
        start = max(start, cursor.video_max + 1)
        cursor.video_start = None
        cursor.video_max = -1
    h, w = grid_hw
    rows = torch.arange(h, dtype=torch.long).repeat_interleave(w)
    cols = torch.arange(w, dtype=torch.long).repeat(h)
    pos = torch.stack([torch.zeros(h * w, dtype=torch.long), rows, cols]) + start
    cursor.next_text = start + max(h, w)
    cursor.chunks += 1
    return pos
