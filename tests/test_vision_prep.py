"""Our batched pixel preparation equals the transformers Qwen2-VL video processor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoProcessor
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

from models.vision_prep import patchify_frames, smart_frame_size


@pytest.mark.parametrize("n_frames", [2, 3, 6])
def test_patchify_equals_processor(tiny_checkpoints, n_frames: int) -> None:
    processor = AutoProcessor.from_pretrained(tiny_checkpoints["qwen2_5_vl"]).video_processor
    frames = np.random.default_rng(1).integers(0, 256, (n_frames, 56, 84, 3), dtype=np.uint8)
    expected = processor(
        videos=[frames], return_tensors="pt", do_resize=False, do_sample_frames=False, cap_pixels_per_frame=False
    )
    mean = torch.tensor(processor.image_mean)
    std = torch.tensor(processor.image_std)
    patches, grid_t, grid_h, grid_w = patchify_frames(frames, mean, std, 14, 2, 2)
    assert [grid_t, grid_h, grid_w] == expected["video_grid_thw"][0].tolist()
    assert (patches - expected["pixel_values_videos"]).abs().max().item() < 1e-5


@pytest.mark.parametrize("size", [(240, 320), (1080, 1920), (100, 100), (30, 500), (2000, 90)])
def test_frame_size_equals_smart_resize(size: tuple[int, int]) -> None:
    bounds = {"factor": 28, "min_pixels": 56 * 56, "max_pixels": 448 * 448}
    assert smart_frame_size(*size, **bounds) == smart_resize(*size, **bounds)


def test_extreme_aspect_ratio_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_frame_size(10, 5000, 28, 56 * 56, 448 * 448)
