"""Pixel preparation for Qwen-style vision towers: frame size choice and patch flattening.

Done in torch on whole batches (no PIL, no per-frame Python) because it sits on the per-frame hot
path. ``tests/test_vision_prep.py`` checks it against the transformers video processor.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def smart_frame_size(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """``(h, w)`` closest to the input aspect ratio, multiples of ``factor``, pixels within bounds.

    Same contract as Qwen's ``smart_resize``: round each side to the nearest multiple, then scale down
    (or up) by the square root of the pixel ratio when the area leaves ``[min_pixels, max_pixels]``.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio of a {width}x{height} frame is over 200: crop the video first")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def patchify_frames(
    frames: np.ndarray,
    mean: torch.Tensor,
    std: torch.Tensor,
    patch_size: int,
    merge_size: int,
    temporal_patch_size: int,
) -> tuple[torch.Tensor, int, int, int]:
    """Normalise and flatten frames into the vision tower's patch layout.

    Args:
        frames: ``(T, H, W, 3)`` uint8, ``H`` and ``W`` multiples of ``patch_size * merge_size``.
        mean, std: per-channel ``(3,)`` normalisation of pixels scaled to [0, 1].

    Returns:
        ``(patches, grid_t, grid_h, grid_w)`` with patches ``(grid_t * grid_h * grid_w,
        3 * temporal_patch_size * patch_size**2)`` float32, ordered (t, h-block, w-block, h-in-block,
        w-in-block) so that each ``merge_size**2`` run of rows is one merged token. ``T`` is padded to a
        multiple of ``temporal_patch_size`` by repeating the last frame.
    """
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    video = (video / 255.0 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    if pad := -video.shape[0] % temporal_patch_size:
        video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)])
    n, channels, height, width = video.shape
    grid_t, grid_h, grid_w = n // temporal_patch_size, height // patch_size, width // patch_size
    m, p = merge_size, patch_size
    blocks = video.view(grid_t, temporal_patch_size, channels, grid_h // m, m, p, grid_w // m, m, p)
    # -> (t, h-block, w-block, h-in-block, w-in-block, channel, frame-in-patch, py, px)
    blocks = blocks.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    patches = blocks.reshape(grid_t * grid_h * grid_w, channels * temporal_patch_size * p * p)
    return patches, grid_t, grid_h, grid_w
