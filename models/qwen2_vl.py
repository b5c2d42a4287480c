r"""Qwen2-VL and Qwen2.5-VL behind the ``VideoLM`` protocol.

Stream layout in the language model (identical, token for token, to the chat template's rendering of
one user turn holding a video followed by the question)::

    <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n<|vision_start|>   <- start()
    <|video_pad|> x n_tokens   (one run per chunk of `temporal_patch_size` frames)      <- prefill()
    <|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n  + generated tokens <- answer()

The two generations differ in the vision tower and in the temporal position index (see
``models/mrope.py``); everything else is shared, so they live in one file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLForConditionalGeneration,
)

from memory.streaming_cache import StreamingCache
from models.decoding import decode_loop
from models.mrope import MRopeCursor, chunk_positions, text_positions
from models.protocol import SamplingParams, TextPiece, VisualChunk
from models.stream_base import load_checkpoint, stop_token_ids
from models.vision_prep import patchify_frames, smart_frame_size

logger = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
_MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {
    "qwen2_vl": Qwen2VLForConditionalGeneration,
    "qwen2_5_vl": Qwen2_5_VLForConditionalGeneration,
}


class QwenVL:
    """A loaded Qwen2-VL / Qwen2.5-VL checkpoint (weights only; no per-stream state).

    Args:
        model: the ``*ForConditionalGeneration`` module, in eval mode.
        tokenizer: its tokenizer.
        video_config: the checkpoint's video processor (for patch sizes, pixel bounds, mean/std).
        model_id: hub id or folder it came from.
        max_frame_pixels: upper bound on pixels per frame (caps the processor's own bound).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        video_config: object,
        model_id: str,
        max_frame_pixels: int | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.family: str = model.config.model_type
        inner = model.model
        self.visual = inner.visual
        self.language_model = inner.language_model
        self.lm_head = model.lm_head
        self.embed_tokens = self.language_model.embed_tokens
        text_config = model.config.text_config
        self.num_layers: int = text_config.num_hidden_layers
        self.max_positions: int = text_config.max_position_embeddings
        vision_config = model.config.vision_config
        self.frames_per_chunk: int = int(vision_config.temporal_patch_size)
        self.patch_size: int = int(vision_config.patch_size)
        self.merge_size: int = int(vision_config.spatial_merge_size)
        self.tokens_per_second: float | None = (
            float(vision_config.tokens_per_second) if self.family == "qwen2_5_vl" else None
        )
        size = getattr(video_config, "size", None) or {}
        self.min_pixels = int(size.get("shortest_edge") or 56 * 56)
        processor_max = int(size.get("longest_edge") or 28 * 28 * 768)
        self.max_pixels = min(processor_max, max_frame_pixels) if max_frame_pixels else processor_max
        self.image_mean = torch.tensor(video_config.image_mean, dtype=torch.float32)
        self.image_std = torch.tensor(video_config.image_std, dtype=torch.float32)
        self.video_token_id: int = model.config.video_token_id
        self.stop_token_ids = stop_token_ids(tokenizer, model.generation_config, ("<|im_end|>", "<|endoftext|>"))

    # ----------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(
        cls,
        path: str,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        attn_implementation: str = "sdpa",
        max_frame_pixels: int | None = None,
        local_files_only: bool = False,
    ) -> QwenVL:
        """Load tokenizer, video processor and model from a hub id or a local folder."""
        model, processor = load_checkpoint(
            path,
            _MODEL_CLASSES,
            device=device,
            dtype=dtype,
            attn_implementation=attn_implementation,
            local_files_only=local_files_only,
        )
        return cls(model, processor.tokenizer, processor.video_processor, str(path), max_frame_pixels)

    @property
    def device(self) -> torch.device:
        return self.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed_tokens.weight.dtype

    # --------------------------------------------------------------------------------- prompting
    def header_text(self, system_prompt: str) -> str:
        return f"<|im_start|>system\n{system_prompt}<|im_end|>\n<|im_start|>user\n<|vision_start|>"

    @staticmethod
    def question_text(question: str) -> str:
        return f"<|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n"

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def count_question_tokens(self, question: str) -> int:
        return len(self._ids(self.question_text(question)))

    # ----------------------------------------------------------------------------------- streams
    def new_stream_state(self) -> MRopeCursor:
        return MRopeCursor()

    def frame_size(self, height: int, width: int) -> tuple[int, int]:
        return smart_frame_size(height, width, self.patch_size * self.merge_size, self.min_pixels, self.max_pixels)

    @torch.inference_mode()
    def start(self, cache: StreamingCache, state: MRopeCursor, system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> int:
        ids = self._ids(self.header_text(system_prompt))
        self._forward_text(ids, cache, state)
        return len(ids)

    @torch.inference_mode()
    def encode(
        self, frames: Sequence[np.ndarray], timestamps: Sequence[float], size: tuple[int, int] | None = None
    ) -> list[VisualChunk]:
        """Vision tower + merger on frames ``(H, W, 3)`` uint8; returns one chunk per temporal patch.

        Frames are resized to ``size`` ``(h, w)`` (default: ``frame_size`` of the first frame) unless
        they already have it; the stream's size should be pinned by the caller.
        """
        if not frames:
            return []
        height, width = size or self.frame_size(*frames[0].shape[:2])
        batch = np.stack([_resized(f, height, width) for f in frames])
        pixels, n_chunks, grid_h, grid_w = patchify_frames(
            batch, self.image_mean, self.image_std, self.patch_size, self.merge_size, self.frames_per_chunk
        )
        grid = torch.tensor([[n_chunks, grid_h, grid_w]], device=self.device)
        out = self.visual(pixels.to(self.device, self.dtype), grid_thw=grid)
        merged = out.pooler_output  # (n_chunks * grid_h/m * grid_w/m, hidden)
        llm_hw = (grid_h // self.merge_size, grid_w // self.merge_size)
        per_chunk = llm_hw[0] * llm_hw[1]
        chunks = []
        for k in range(n_chunks):
            stamps = tuple(float(t) for t in timestamps[k * self.frames_per_chunk : (k + 1) * self.frames_per_chunk])
            chunks.append(VisualChunk(merged[k * per_chunk : (k + 1) * per_chunk], llm_hw, stamps))
        return chunks

    @torch.inference_mode()
    def prefill(self, chunks: Sequence[VisualChunk], cache: StreamingCache, state: MRopeCursor) -> None:
        """Append all chunks in one forward call; positions come from ``state``."""
        if not chunks:
            return
        per_chunk = [chunk_positions(state, c.grid_hw, c.timestamps[0], self.tokens_per_second) for c in chunks]
        for chunk, chunk_pos in zip(chunks, per_chunk):
            chunk.position = int(chunk_pos[0, 0])
        positions = torch.cat([c.kept(p, dim=1) for c, p in zip(chunks, per_chunk)], dim=1)
        embeds = torch.cat([c.kept(c.embeds) for c in chunks]).to(self.dtype).unsqueeze(0)
        self.language_model(
            inputs_embeds=embeds,
            position_ids=positions.unsqueeze(1).to(self.device),
            past_key_values=cache,
            use_cache=True,
        )

    # --------------------------------------------------------------------------------- probing
    def proxy_queries(self, cache: StreamingCache, state: MRopeCursor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer rotated ``(queries (H_q, P, D), keys (H_kv, P, D))`` of the proxy tokens.

        The proxy is what follows every question in the chat template (end of the user turn and the
        assistant header): the rows whose attention says what any answer is likely to read
        (StreamMem). The forward runs at the stream's current position; memory is left untouched.
        """
        ids = self._ids(self.question_text(""))
        captured: list[tuple[torch.Tensor, torch.Tensor]] = []

        def rotated(states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
            half = states.shape[-1] // 2
            turned = torch.cat([-states[..., half:], states[..., :half]], dim=-1)
            return (states * cos.unsqueeze(1) + turned * sin.unsqueeze(1))[0].float()

        def capture(module, args, kwargs):  # noqa: ANN001 - torch hook signature
            hidden = args[0] if args else kwargs["hidden_states"]
            cos, sin = kwargs["position_embeddings"]
            shape = (hidden.shape[0], hidden.shape[1], -1, module.head_dim)
            q = module.q_proj(hidden).view(shape).transpose(1, 2)
            k = module.k_proj(hidden).view(shape).transpose(1, 2)
            captured.append((rotated(q, cos, sin), rotated(k, cos, sin)))

        hooks = [
            layer.self_attn.register_forward_pre_hook(capture, with_kwargs=True)
            for layer in self.language_model.layers
        ]
        checkpoint = cache.checkpoint()
        try:
            with torch.inference_mode():
                self._forward_text(ids, cache, state.copy())
        finally:
            cache.rollback(checkpoint)
            for hook in hooks:
                hook.remove()
        return captured

    # ------------------------------------------------------------------------------ re-indexing
    def next_position(self, state: MRopeCursor) -> int:
        return max(state.next_text, state.video_max + 1)

    def rotate_keys(self, keys: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Rotate ``(H, N, D)`` keys by a temporal-only M-RoPE shift of ``delta`` ``(H, N)`` positions.

        Only the temporal frequency sections turn (h and w are unchanged); angles are computed in
        float64 so that moving a key by thousands of positions adds no error of its own.
        """
        rotary = self.language_model.rotary_emb
        inv_freq = rotary.inv_freq.to(device=keys.device, dtype=torch.float64)
        zeros = torch.zeros_like(delta)
        angles = torch.stack([delta, zeros, zeros]).to(torch.float64)[..., None] * inv_freq  # (3, H, N, D/2)
        cos = rotary.recomposition_frequencies(angles.cos()) * rotary.attention_scaling
        sin = rotary.recomposition_frequencies(angles.sin()) * rotary.attention_scaling
        k = keys.to(torch.float64)
        half = k.shape[-1] // 2
        rotated_half = torch.cat([-k[..., half:], k[..., :half]], dim=-1)
        return (k * cos + rotated_half * sin).to(keys.dtype)

    @staticmethod
    def min_position_gap(n_tokens: int) -> int:
        """Chunks share nothing on M-RoPE's temporal axis but their step: no minimum gap."""
        return 0

    def shift_stream(self, state: MRopeCursor, delta: int) -> None:
        from models.mrope import shift_temporal

        shift_temporal(state, delta)

    def answer(
        self, question: str, cache: StreamingCache, state: MRopeCursor, sampling: SamplingParams
    ) -> Iterator[TextPiece]:
        """Append the question turn and stream the answer (the caller rolls the cache back)."""
        with torch.inference_mode():
            logits = self._forward_text(self._ids(self.question_text(question)), cache, state)

        def step(token: int) -> torch.Tensor:
            with torch.inference_mode():
                return self._forward_text([token], cache, state)

        def decode(ids: list[int]) -> str:
            return self.tokenizer.decode(ids, skip_special_tokens=True)

        yield from decode_loop(logits, step, decode, self.stop_token_ids, sampling)

    def _forward_text(self, ids: list[int], cache: StreamingCache, state: MRopeCursor) -> torch.Tensor:
        """Run text tokens through the LM at the cursor; returns ``(vocab,)`` logits of the last one."""
        positions = text_positions(state, len(ids)).unsqueeze(1).to(self.device)
        input_ids = torch.tensor([ids], device=self.device)
        out = self.language_model(
            inputs_embeds=self.embed_tokens(input_ids),
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
        )
        return self.lm_head(out.last_hidden_state[0, -1]).float()


def _resized(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    if frame.shape[0] == height and frame.shape[1] == width:
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


_TINY_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
]
# A chat template with Qwen2-VL's rendering: default system turn, media placeholders, generation prompt.
_TINY_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# Sizes of random-weight checkpoints: "tiny" for tests (~0.2M parameters, milliseconds per forward);
# "small" (~220M parameters: a 12-layer 768-wide LM with Qwen's real 151,936-token embedding table
# tied to the head, an 8-block 512-wide vision tower) for CPU throughput benchmarks.
RANDOM_SIZES: dict[str, dict[str, dict[str, object]]] = {
    "tiny": {
        "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "mrope_section": [2, 3, 3]},
        "vision": {"depth": 2, "num_heads": 2, "width": 32, "mlp": 64},
    },
    "small": {
        "text": {"hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 12,
                 "num_key_value_heads": 2, "mrope_section": [8, 12, 12], "vocab_size": 151936,
                 "tie_word_embeddings": True},
        "vision": {"depth": 8, "num_heads": 8, "width": 512, "mlp": 1368},
    },
}


def build_tiny(out_dir: Path, family: str, size: str = "tiny") -> None:
    """Write a random-weight ``family`` checkpoint (tokenizer, processor, model) to ``out_dir``.

    Real architecture classes at toy width (see ``RANDOM_SIZES``); M-RoPE sections sum to
    head_dim / 2; special-token ids come from the tiny tokenizer and stay inside the vocabulary.
    """
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLProcessor,
        Qwen2VLConfig,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    from models.tiny_tokenizer import build_tiny_tokenizer

    if size not in RANDOM_SIZES:
        raise ValueError(f"unknown random size {size!r}; valid sizes: {', '.join(RANDOM_SIZES)}")
    dims = RANDOM_SIZES[size]
    text_dims = dict(dims["text"])
    mrope_section = text_dims.pop("mrope_section")
    tie = bool(text_dims.pop("tie_word_embeddings", False))
    vision = dims["vision"]
    tokenizer = build_tiny_tokenizer(
        _TINY_SPECIAL_TOKENS, chat_template=_TINY_CHAT_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    token_id = tokenizer.convert_tokens_to_ids
    text_config = {
        "vocab_size": len(tokenizer), "max_position_embeddings": 32768,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": mrope_section},
        "bos_token_id": None, "eos_token_id": token_id("<|im_end|>"), "pad_token_id": token_id("<|endoftext|>"),
        **text_dims,
    }
    common_vision = {"depth": vision["depth"], "num_heads": vision["num_heads"], "patch_size": 14,
                     "spatial_merge_size": 2, "temporal_patch_size": 2}
    hidden = text_config["hidden_size"]
    if family == "qwen2_5_vl":
        vision_config = {**common_vision, "hidden_size": vision["width"], "intermediate_size": vision["mlp"],
                         "out_hidden_size": hidden, "window_size": 56, "fullatt_block_indexes": [1],
                         "tokens_per_second": 2}
        config_class, processor_class = Qwen2_5_VLConfig, Qwen2_5_VLProcessor
    elif family == "qwen2_vl":
        vision_config = {**common_vision, "embed_dim": vision["width"], "hidden_size": hidden,
                         "mlp_ratio": max(1, int(vision["mlp"]) // int(vision["width"]))}
        config_class, processor_class = Qwen2VLConfig, Qwen2VLProcessor
    else:
        raise ValueError(f"build_tiny in qwen2_vl.py makes qwen2_vl or qwen2_5_vl, not {family!r}")
    config = config_class(
        text_config=text_config, vision_config=vision_config,
        image_token_id=token_id("<|image_pad|>"), video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"), vision_end_token_id=token_id("<|vision_end|>"),
        tie_word_embeddings=tie,
    )
    torch.manual_seed(0)
    model = _MODEL_CLASSES[family](config).eval()
    model.generation_config.eos_token_id = [token_id("<|im_end|>"), token_id("<|endoftext|>")]
    pixels = {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 64 if size == "tiny" else 448 * 448}
    processor = processor_class(
        image_processor=Qwen2VLImageProcessor(size=pixels),
        video_processor=Qwen2VLVideoProcessor(size=pixels),
        tokenizer=tokenizer,
        chat_template=_TINY_CHAT_TEMPLATE,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
