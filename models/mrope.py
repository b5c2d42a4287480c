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
    """

    next_text: int = 0
    video_start: int | None = None
    video_max: int = -1
    t0: float | None = None
    chunks: int = 0

    def copy(self) -> MRopeCursor:
        return MRopeCursor(self.next_text, self.video_start, self.video_max, self.t0, self.chunks)


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
    tpos = temporal_index(cursor, first_timestamp, tokens_per_second)
    rows = torch.arange(h, dtype=torch.long).repeat_interleave(w)
    cols = torch.arange(w, dtype=torch.long).repeat(h)
    pos = torch.stack([torch.full((h * w,), tpos, dtype=torch.long), rows, cols]) + s
    cursor.video_max = max(cursor.video_max, s + max(tpos, h - 1, w - 1))
    cursor.chunks += 1
    return pos
