"""Chunked incremental prefill equals one-shot processing of the same frames (logits and greedy tokens)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoProcessor

from memory.streaming_cache import StreamingCache
from models.protocol import SamplingParams
from tests.test_positions import reference_positions

QUESTION = "What happens in the video?"
SYSTEM = "You are a helpful assistant."


def make_frames(n: int, size: tuple[int, int] = (112, 140), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


def one_shot(model, checkpoint, frames: list[np.ndarray], fps: float) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    """The whole prompt through the processor and one forward with reference positions.

    Returns ``(input_ids (L,), position_ids (3, 1, L), processor outputs)`` plus logits via closure.
    """
    processor = AutoProcessor.from_pretrained(checkpoint)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUESTION}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(
        text=[text], videos=[np.stack(frames)], return_tensors="pt",
        videos_kwargs={"do_resize": False, "do_sample_frames": False, "cap_pixels_per_frame": False},
    )
    ids = inputs["input_ids"][0].tolist()
    grid_t, grid_h, grid_w = inputs["video_grid_thw"][0].tolist()
    n_video = grid_t * grid_h * grid_w // 4
    first = ids.index(model.video_token_id)
    positions = reference_positions(
        first, grid_t, grid_h // 2, grid_w // 2, len(ids) - first - n_video, 2 / fps, model.tokens_per_second
    )
    return inputs, ids, torch.tensor(positions).T.unsqueeze(1)


def greedy_one_shot(model, inputs, positions: torch.Tensor, n_tokens: int) -> tuple[torch.Tensor, list[int]]:
    """Greedy tokens by re-running the full sequence each step (no cache at all)."""
    ids = inputs["input_ids"]
    first_logits = None
    out_tokens: list[int] = []
    with torch.inference_mode():
        for _ in range(n_tokens):
            logits = model.model(
                input_ids=ids, pixel_values_videos=inputs["pixel_values_videos"],
                video_grid_thw=inputs["video_grid_thw"], position_ids=positions,
            ).logits[0, -1]
            first_logits = logits if first_logits is None else first_logits
            token = int(logits.argmax())
            out_tokens.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
            nxt = positions[:, :, -1:] + 1
            positions = torch.cat([positions, nxt], dim=2)
    return first_logits, out_tokens


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
@pytest.mark.parametrize("n_frames,chunks_per_call", [(8, 1), (12, 2), (10, 4)])
def test_incremental_equals_one_shot(tiny_models, tiny_checkpoints, family, n_frames, chunks_per_call) -> None:
    model = tiny_models[family]
    fps = 2.0
    frames = make_frames(n_frames)
    stamps = [i / fps for i in range(n_frames)]
    inputs, ids, positions = one_shot(model, tiny_checkpoints[family], frames, fps)

    cache = StreamingCache(model.num_layers)
    cursor = model.new_stream_state()
    model.start(cache, cursor, SYSTEM)
    step = 2 * chunks_per_call
    for k in range(0, n_frames, step):
        model.prefill(model.encode(frames[k : k + step], stamps[k : k + step]), cache, cursor)
    question_ids = model._ids(model.question_text(QUESTION))
    assert cache.logical_length + len(question_ids) == len(ids)  # same token sequence length

    cache_before = cache.checkpoint()
    with torch.inference_mode():
        incremental_logits = model._forward_text(question_ids, cache, cursor.copy())
    cache.rollback(cache_before)
    reference_logits, reference_tokens = greedy_one_shot(model, inputs, positions, n_tokens=6)
    assert (incremental_logits - reference_logits).abs().max().item() <= 1e-4

    sampling = SamplingParams(max_new_tokens=6, stop=())
    model.stop_token_ids, saved = set(), model.stop_token_ids  # compare raw greedy tokens
    try:
        pieces = list(model.answer(QUESTION, cache, cursor.copy(), sampling))
    finally:
        model.stop_token_ids = saved
    tokens = [t for p in pieces for t in p.token_ids]
    assert tokens == reference_tokens
    cache.rollback(cache_before)


def test_incremental_chunks_match_processor_token_layout(tiny_models, tiny_checkpoints) -> None:
    """The streamed token sequence is the chat template's rendering, token for token."""
    model = tiny_models["qwen2_5_vl"]
    frames = make_frames(4)
    inputs, ids, _ = one_shot(model, tiny_checkpoints["qwen2_5_vl"], frames, 1.0)
    header = model._ids(model.header_text(SYSTEM))
    chunks = model.encode(frames, [0.0, 1.0, 2.0, 3.0])
    streamed = header + [model.video_token_id] * sum(c.n_tokens for c in chunks) + model._ids(
        model.question_text(QUESTION)
    )
    assert streamed == ids
