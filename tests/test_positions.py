"""Our M-RoPE arithmetic against a hand-written reference of the Qwen rule, and the 5.23 discrepancy."""

from __future__ import annotations

import math

import pytest
import torch

from models.mrope import MRopeCursor, chunk_positions, text_positions


def reference_positions(
    n_before: int, grid_t: int, grid_h: int, grid_w: int, n_after: int, seconds_per_chunk: float, tps: float | None
) -> list[tuple[int, int, int]]:
    """The Qwen reference rule, written out token by token (no shared code with models/mrope.py)."""
    out = [(i, i, i) for i in range(n_before)]
    s = n_before
    largest = -1
    for t in range(grid_t):
        tpos = t if tps is None else math.floor(t * seconds_per_chunk * tps + 1e-6)
        for r in range(grid_h):
            for c in range(grid_w):
                out.append((s + tpos, s + r, s + c))
                largest = max(largest, s + tpos, s + r, s + c)
    nxt = largest + 1 if grid_t else s
    out += [(nxt + i, nxt + i, nxt + i) for i in range(n_after)]
    return out


@pytest.mark.parametrize("tps", [None, 2.0, 4.0])
@pytest.mark.parametrize("grid", [(1, 2, 2), (5, 2, 3), (12, 4, 4), (3, 9, 16)])
@pytest.mark.parametrize("fps", [0.5, 1.0, 2.0, 3.0])
def test_streamed_positions_equal_reference(tps: float | None, grid: tuple[int, int, int], fps: float) -> None:
    grid_t, grid_h, grid_w = grid
    seconds_per_chunk = 2 / fps  # two frames per temporal patch
    cursor = MRopeCursor()
    parts = [text_positions(cursor, 7)]
    for k in range(grid_t):
        parts.append(chunk_positions(cursor, (grid_h, grid_w), 10.0 + k * seconds_per_chunk, tps))
    parts.append(text_positions(cursor, 5))
    ours = torch.cat(parts, dim=1).T.tolist()
    expected = reference_positions(7, grid_t, grid_h, grid_w, 5, seconds_per_chunk, tps)
    assert [tuple(p) for p in ours] == expected


def test_positions_follow_real_timestamps_with_gaps() -> None:
    """A live stream that skipped 6 s keeps true time in the temporal component (Qwen2.5-VL)."""
    cursor = MRopeCursor()
    text_positions(cursor, 3)
    first = chunk_positions(cursor, (1, 1), 100.0, 2.0)
    second = chunk_positions(cursor, (1, 1), 101.0, 2.0)
    third = chunk_positions(cursor, (1, 1), 107.0, 2.0)
    assert [first[0, 0].item(), second[0, 0].item(), third[0, 0].item()] == [3, 5, 17]


def test_transformers_523_text_after_video_ignores_time(tiny_checkpoints: dict) -> None:
    """Documents the discrepancy: 5.23's get_rope_index resumes at start + max(h, w), not max(t, h, w) + 1."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_checkpoints["qwen2_5_vl"])
    video_id = model.config.video_token_id
    grid_t, grid_h, grid_w = 6, 4, 4  # merged grid 2x2, six temporal patches
    n_video = grid_t * (grid_h // 2) * (grid_w // 2)
    ids = torch.tensor([[1, 2] + [video_id] * n_video + [3, 4]])
    types = torch.tensor([[0, 0] + [2] * n_video + [0, 0]])
    positions, _ = model.model.get_rope_index(
        ids, mm_token_type_ids=types, video_grid_thw=torch.tensor([[grid_t, grid_h, grid_w]]),
        second_per_grid_ts=torch.tensor([1.0]),
    )
    tps = model.config.vision_config.tokens_per_second
    expected = reference_positions(2, grid_t, grid_h // 2, grid_w // 2, 2, 1.0, tps)
    theirs = [tuple(p) for p in positions[:, 0].T.tolist()]
    assert theirs[: 2 + n_video] == expected[: 2 + n_video]  # video tokens agree
    assert theirs[-2][0] == 2 + 2  # text resumes at start + max(h, w)/merge ...
    assert expected[-2][0] == 2 + (grid_t - 1) * tps + 1  # ... where the reference rule resumes after the last frame
