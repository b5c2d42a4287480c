"""The plain-transformers way of answering a question about a stream: re-encode sampled frames.

A user of plain transformers has no streaming memory: at each question they take ``N`` frames
uniformly sampled from everything seen so far, build the chat prompt with the model's processor, run
one forward over ``[prompt + N frames + question]`` inside ``model.generate`` and decode greedily.
This module does exactly that with the *same* weights as the streaming model (the Hugging Face
module inside our :class:`~models.qwen2_vl.QwenVL`) and the *same* decoded frames, and times it.

Timing: the clock starts before the processor call (sampling, patchify, tokenising are part of what
the user pays); the time to first token is when ``generate`` hands its first new token to the
streamer; the total is when it returns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers.generation.streamers import BaseStreamer


class TokenClock(BaseStreamer):
    """A ``generate`` streamer that only records when each batch of ids arrives (the first is the prompt)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value: torch.Tensor) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


@dataclass(frozen=True)
class BaselineTiming:
    """One answer by the re-encoding baseline.

    Attributes:
        ttft_s: seconds from the question to the first generated token.
        total_s: seconds from the question to the end of generation.
        num_tokens: generated tokens.
        prompt_tokens: tokens of the single forward over prompt + frames + question.
    """

    ttft_s: float
    total_s: float
    num_tokens: int
    prompt_tokens: int


def uniform_indices(seen: int, n: int) -> np.ndarray:
    """``n`` frame indices uniformly spread over ``[0, seen)`` (repeats when ``seen < n``)."""
    return np.linspace(0, max(seen - 1, 0), n).round().astype(np.int64)


class ReencodeBaseline:
    """Answers by re-encoding ``N`` sampled frames with the Hugging Face model and ``generate``.

    Args:
        hf_model: a ``Qwen2_5_VLForConditionalGeneration`` (or any image-text-to-text model whose
            processor takes ``videos``), in eval mode.
        processor: its processor (chat template, tokenizer, video processor).
    """

    def __init__(self, hf_model: torch.nn.Module, processor: object) -> None:
        self.model = hf_model
        self.processor = processor

    def prompt(self, question: str) -> str:
        """The chat-template text of one user turn holding a video and the question."""
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    @torch.inference_mode()
    def answer(
        self, frames: Sequence[np.ndarray], seconds_seen: float, question: str, max_new_tokens: int
    ) -> BaselineTiming:
        """Answer ``question`` from ``frames`` ``(H, W, 3)`` uint8 (already sampled) with greedy ``generate``.

        ``seconds_seen`` (stream time the frames span) sets the video's frame rate in the metadata, so
        temporal positions follow the stream clock as they would for a user passing sampled frames.
        """
        clock = TokenClock()
        start = time.perf_counter()
        video = np.stack(list(frames))
        fps = len(video) / max(seconds_seen, 1e-3)
        inputs = self.processor(
            text=[self.prompt(question)],
            videos=[video],
            video_metadata=[{"fps": fps, "total_num_frames": len(video)}],
            do_sample_frames=False,
            cap_pixels_per_frame=False,  # frames are already at the model's size: no cap applies
            return_tensors="pt",
        )
        inputs = inputs.to(self.model.device)
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, streamer=clock)
        end = time.perf_counter()
        prompt_tokens = int(inputs["input_ids"].shape[1])
        first = clock.times[1] if len(clock.times) > 1 else end
        return BaselineTiming(first - start, end - start, int(out.shape[1]) - prompt_tokens, prompt_tokens)
