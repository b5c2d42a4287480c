r"""Qwen3-VL behind the ``VideoLM`` protocol: timestamp text per chunk, deepstack, explicit M-RoPE.

Stream layout in the language model, token for token the rendering of transformers 5.23's
``Qwen3VLProcessor`` applied to Qwen3-VL's chat template (a user turn holding one video, then the
question)::

    [<|im_start|>system\n{system}<|im_end|>\n]<|im_start|>user\n<|vision_start|>           <- start()
    <{t:.1f} seconds><|vision_start|> <|video_pad|> x n <|vision_end|>   (one per chunk)     <- prefill()
    <|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n  + generated tokens          <- answer()

The outer ``<|vision_start|>`` / ``<|vision_end|>`` pair comes from the chat template; 5.23's
processor replaces only the inner ``<|video_pad|>`` and keeps it (transformers 4.57 replaced the
whole wrapper instead; vLLM issue #46817 documents the difference). We follow 5.23, which is what
the one-shot reference of the conformance suite renders. The system turn is omitted when the system
prompt is empty, as Qwen3-VL's template has no default system prompt.

``t`` is the mean of the media times of the first and last real frame of the chunk (the processor
averages the two frames of a temporal patch, repeating the last frame of an odd tail).

Positions: every chunk is its own visual segment with one temporal index (see
``models.mrope.frame_positions``); timestamps and delimiters are text and advance all three
components by one. Deepstack: the vision tower returns, for each ``deepstack_visual_indexes`` level,
features of the same merged tokens; the text model adds level ``k`` to the hidden states of the
visual tokens after decoder layer ``k``. During incremental prefill we pass ``visual_pos_masks``
(which rows of this forward call are visual) and ``deepstack_visual_embeds`` (those rows' features)
for exactly the chunks of the call, so each chunk gets the same additions as in one-shot processing.

Re-indexing (streams longer than the position range): a chunk is moved as a whole, all three
components by the same delta, which is a plain RoPE rotation of its keys (see ``Qwen3VL.rotate_keys``).

Frame size: fixed per stream (the session pins it from the first frame). The processor's own budget
depends on how many frames one call holds, so frames are resized by us and the processor is never
asked to resize (``do_resize=False`` in the reference). Per frame: multiples of 32 (patch 16 x merge
2), at least ``shortest_edge / temporal_patch_size`` pixels, at most the smallest of
``max_video_tokens`` (768) merged tokens, ``longest_edge / temporal_patch_size`` and
``max_frame_pixels``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen3VLForConditionalGeneration,
)

from memory.streaming_cache import StreamingCache
from models.mrope import MRopeCursor, frame_positions, text_positions
from models.protocol import VisualChunk
from models.qwen2_vl import QwenVL
from models.stream_base import (
    FramedChunk,
    SpanMemo,
    capture_rotated_qk,
    kept_rows,
    load_checkpoint,
    resized,
    rotate_keys_1d,
)
from models.vision_prep import patchify_frames

logger = logging.getLogger(__name__)

MAX_VIDEO_TOKENS_PER_FRAME = 768  # qwen-vl-utils' VIDEO_MAX_TOKEN_NUM: merged tokens per frame


@dataclass
class Qwen3Chunk(FramedChunk):
    """A Qwen3-VL chunk: framed visual tokens plus their deepstack features.

    Attributes:
        deepstack: one ``(n_visual, hidden)`` tensor per ``deepstack_visual_indexes`` level.
    """

    deepstack: tuple[torch.Tensor, ...] = field(default_factory=tuple)


class Qwen3VL(QwenVL):
    """A loaded Qwen3-VL checkpoint (weights only; no per-stream state).

    Args:
        model: ``Qwen3VLForConditionalGeneration`` in eval mode.
        tokenizer: its tokenizer.
        video_config: its video processor (patch sizes, pixel bounds, mean/std).
        model_id: hub id or folder it came from.
        max_frame_pixels: upper bound on pixels per frame.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        video_config: object,
        model_id: str,
        max_frame_pixels: int | None = None,
    ) -> None:
        super().__init__(model, tokenizer, video_config, model_id, max_frame_pixels)
        per_chunk = self.frames_per_chunk
        size = getattr(video_config, "size", None) or {}
        factor = self.patch_size * self.merge_size
        self.min_pixels = max(factor * factor, int(size.get("shortest_edge") or 128 * factor * factor) // per_chunk)
        cap = MAX_VIDEO_TOKENS_PER_FRAME * factor * factor
        longest = size.get("longest_edge")
        if longest:
            cap = min(cap, int(longest) // per_chunk)
        self.max_pixels = min(cap, max_frame_pixels) if max_frame_pixels else cap
        self.max_pixels = max(self.max_pixels, self.min_pixels)
        self.vision_start_id: int = model.config.vision_start_token_id
        self.vision_end_id: int = model.config.vision_end_token_id
        self._span_memo = SpanMemo()

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
    ) -> Qwen3VL:
        """Load tokenizer, video processor and model from a hub id or a local folder."""
        model, processor = load_checkpoint(
            path,
            {"qwen3_vl": Qwen3VLForConditionalGeneration},
            device=device,
            dtype=dtype,
            attn_implementation=attn_implementation,
            local_files_only=local_files_only,
        )
        return cls(model, processor.tokenizer, processor.video_processor, str(path), max_frame_pixels)

    # --------------------------------------------------------------------------------- prompting
    def header_text(self, system_prompt: str) -> str:
        system = f"<|im_start|>system\n{system_prompt}<|im_end|>\n" if system_prompt else ""
        return f"{system}<|im_start|>user\n<|vision_start|>"

    @staticmethod
    def timestamp_text(seconds: float) -> str:
        """The text before a chunk's visual tokens, e.g. ``<12.5 seconds><|vision_start|>``."""
        return f"<{seconds:.1f} seconds><|vision_start|>"

    def chunk_prefix_ids(self, timestamps: Sequence[float]) -> list[int]:
        """Token ids before a chunk whose real frames have ``timestamps``."""
        return self._ids(self.timestamp_text((timestamps[0] + timestamps[-1]) / 2))

    # ----------------------------------------------------------------------------------- streams
    @torch.inference_mode()
    def encode(
        self, frames: Sequence[np.ndarray], timestamps: Sequence[float], size: tuple[int, int] | None = None
    ) -> list[VisualChunk]:
        """Vision tower + mergers on ``(H, W, 3)`` uint8 frames; one :class:`Qwen3Chunk` per temporal patch."""
        if not frames:
            return []
        height, width = size or self.frame_size(*frames[0].shape[:2])
        batch = np.stack([resized(f, height, width) for f in frames])
        pixels, n_chunks, grid_h, grid_w = patchify_frames(
            batch, self.image_mean, self.image_std, self.patch_size, self.merge_size, self.frames_per_chunk
        )
        grid = torch.tensor([[n_chunks, grid_h, grid_w]], device=self.device)
        out = self.visual(pixels.to(self.device, self.dtype), grid_thw=grid)
        merged = out.pooler_output  # (n_chunks * per_chunk, hidden)
        deepstack = out.deepstack_features  # levels x (n_chunks * per_chunk, hidden)
        llm_hw = (grid_h // self.merge_size, grid_w // self.merge_size)
        per_chunk = llm_hw[0] * llm_hw[1]
        chunks: list[VisualChunk] = []
        for k in range(n_chunks):
            rows = slice(k * per_chunk, (k + 1) * per_chunk)
            stamps = tuple(float(t) for t in timestamps[k * self.frames_per_chunk : (k + 1) * self.frames_per_chunk])
            chunks.append(
                Qwen3Chunk(
                    merged[rows], llm_hw, stamps,
                    prefix_ids=tuple(self.chunk_prefix_ids(stamps)),
                    suffix_ids=(self.vision_end_id,),
                    deepstack=tuple(level[rows] for level in deepstack),
                )
            )
        return chunks

    @torch.inference_mode()
    def prefill(self, chunks: Sequence[VisualChunk], cache: StreamingCache, state: MRopeCursor) -> None:
        """Append all chunks (timestamp text, visual tokens, ``<|vision_end|>``) in one forward call.

        Sets each chunk's ``position`` to the position of its first token. With token dropping
        (``chunk.keep``) only the surviving visual tokens are written, at their original positions.
        """
        if not chunks:
            return
        embeds: list[torch.Tensor] = []
        positions: list[torch.Tensor] = []
        visual: list[torch.Tensor] = []
        levels: list[list[torch.Tensor]] = []
        for chunk in chunks:
            if not isinstance(chunk, Qwen3Chunk):
                raise TypeError("Qwen3VL.prefill takes the chunks made by Qwen3VL.encode")
            keep = kept_rows(chunk)

            def kept(per_token: torch.Tensor, dim: int = 0, keep: torch.Tensor | None = keep) -> torch.Tensor:
                return per_token if keep is None else per_token.index_select(dim, keep.to(per_token.device))

            chunk.position = self.next_position(state)
            prefix = torch.tensor(chunk.prefix_ids, dtype=torch.long, device=self.device)
            suffix = torch.tensor(chunk.suffix_ids, dtype=torch.long, device=self.device)
            embeds += [self.embed_tokens(prefix), kept(chunk.embeds).to(self.dtype), self.embed_tokens(suffix)]
            positions += [
                text_positions(state, len(chunk.prefix_ids)),
                kept(frame_positions(state, chunk.grid_hw), dim=1),
                text_positions(state, len(chunk.suffix_ids)),
            ]
            self._span_memo.record(chunk.n_tokens, self.next_position(state) - chunk.position)
            visual += [
                torch.zeros(len(chunk.prefix_ids), dtype=torch.bool),
                torch.ones(chunk.n_visual, dtype=torch.bool),
                torch.zeros(len(chunk.suffix_ids), dtype=torch.bool),
            ]
            if not levels:
                levels = [[] for _ in chunk.deepstack]
            for level, feature in zip(levels, chunk.deepstack):
                level.append(kept(feature))
        self.language_model(
            inputs_embeds=torch.cat(embeds).unsqueeze(0),
            position_ids=torch.cat(positions, dim=1).unsqueeze(1).to(self.device),
            past_key_values=cache,
            use_cache=True,
            visual_pos_masks=torch.cat(visual).unsqueeze(0).to(self.device),
            deepstack_visual_embeds=[torch.cat(level).to(self.dtype) for level in levels] or None,
        )

    def proxy_queries(self, cache: StreamingCache, state: MRopeCursor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer rotated ``(queries (H_q, P, D), keys (H_kv, P, D))`` of the proxy tokens.

        As for Qwen2-VL (the end of the user turn and the assistant header, written at the stream's
        current position), with Qwen3's per-head ``q_norm`` / ``k_norm`` applied before the rotation.
        """
        ids = self._ids(self.question_text(""))
        checkpoint = cache.checkpoint()
        try:
            return capture_rotated_qk(self.language_model, lambda: self._forward_text(ids, cache, state.copy()))
        finally:
            cache.rollback(checkpoint)

    # ------------------------------------------------------------------------------ re-indexing
    # Every Qwen3-VL chunk is a segment of its own whose three components all start at the same text
    # position, so re-indexing moves a whole chunk (timestamp text and delimiters included) by the
    # same delta on t, h and w: a plain 1-D rotation, and the chunk's ``position`` is its first token.
    def rotate_keys(self, keys: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Keys ``(H, N, D)`` moved ``delta`` ``(H, N)`` positions on all three M-RoPE components."""
        return rotate_keys_1d(keys, delta, self.language_model.rotary_emb.inv_freq)

    def min_position_gap(self, n_tokens: int) -> int:
        """Positions a chunk that wrote ``n_tokens`` tokens spans: prefix + max(h, w) + suffix."""
        return self._span_memo.gap(n_tokens)

    def shift_stream(self, state: MRopeCursor, delta: int) -> None:
        if state.video_start is not None:
            raise RuntimeError("a Qwen3-VL stream never leaves a video segment open")
        state.next_text += delta


# ------------------------------------------------------------------------------ tiny checkpoints
_TINY_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
]
# Qwen3-VL-Instruct's chat template, reduced to what a stream uses: no default system turn, media
# rendered as <|vision_start|><|…_pad|><|vision_end|>, generation prompt without a think block.
_TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# "tiny": tests (milliseconds per forward); "small": CPU throughput runs (a 12-layer 768-wide LM with
# the real 151,936-token table tied to the head, an 8-block 512-wide vision tower, 3 deepstack levels).
RANDOM_SIZES: dict[str, dict[str, dict[str, object]]] = {
    "tiny": {
        "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "head_dim": 16, "mrope_section": [2, 3, 3]},
        "vision": {"depth": 2, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64,
                   "num_position_embeddings": 64, "deepstack_visual_indexes": [0, 1]},
        "pixels": {"shortest_edge": 2 * 32 * 32, "longest_edge": 2 * 32 * 32 * 16},
    },
    "small": {
        "text": {"hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 12,
                 "num_key_value_heads": 2, "head_dim": 64, "mrope_section": [12, 10, 10], "vocab_size": 151936,
                 "tie_word_embeddings": True},
        "vision": {"depth": 8, "hidden_size": 512, "num_heads": 8, "intermediate_size": 1368,
                   "num_position_embeddings": 2304, "deepstack_visual_indexes": [1, 3, 5]},
        "pixels": {"shortest_edge": 2 * 32 * 32 * 4, "longest_edge": 2 * 448 * 448},
    },
}


def tiny_tokenizer() -> PreTrainedTokenizerBase:
    """The byte-level tiny tokenizer with Qwen3-VL's special tokens and chat template."""
    from models.tiny_tokenizer import build_tiny_tokenizer

    return build_tiny_tokenizer(
        _TINY_SPECIAL_TOKENS, chat_template=_TINY_CHAT_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )


def make_config(tokenizer: PreTrainedTokenizerBase, text: dict, vision: dict, max_positions: int = 32768):
    """A ``Qwen3VLConfig`` with special-token ids from ``tokenizer`` (kept inside the vocabulary).

    ``text`` may hold ``mrope_section`` (must sum to ``head_dim / 2``), ``vocab_size``,
    ``tie_word_embeddings`` and any ``Qwen3VLTextConfig`` field; ``vision`` any ``Qwen3VLVisionConfig``
    field (``deepstack_visual_indexes`` must be < ``depth``).
    """
    from transformers import Qwen3VLConfig

    text = dict(text)
    mrope_section = text.pop("mrope_section")
    tie = bool(text.pop("tie_word_embeddings", False))
    if sum(mrope_section) * 2 != text["head_dim"]:
        raise ValueError(f"mrope_section {mrope_section} must sum to head_dim / 2 = {text['head_dim'] // 2}")
    vision = dict(vision)
    if max(vision.get("deepstack_visual_indexes", [0])) >= vision["depth"]:
        raise ValueError("deepstack_visual_indexes must be < vision depth")
    token_id = tokenizer.convert_tokens_to_ids
    text_config = {
        "vocab_size": len(tokenizer), "max_position_embeddings": max_positions,
        "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": mrope_section,
                            "mrope_interleaved": True},
        "bos_token_id": None, "eos_token_id": token_id("<|im_end|>"), "pad_token_id": token_id("<|endoftext|>"),
        **text,
    }
    vision_config = {"patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
                     "out_hidden_size": text_config["hidden_size"], **vision}
    return Qwen3VLConfig(
        text_config=text_config, vision_config=vision_config,
        image_token_id=token_id("<|image_pad|>"), video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"), vision_end_token_id=token_id("<|vision_end|>"),
        tie_word_embeddings=tie,
    )


def make_processors(pixels: dict[str, int]) -> tuple[object, object]:
    """``(image_processor, video_processor)`` with Qwen3-VL's patching and the given pixel bounds."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLVideoProcessor

    mean_std = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    image = Qwen2VLImageProcessor(size=pixels, patch_size=16, merge_size=2, temporal_patch_size=2, **mean_std)
    video = Qwen3VLVideoProcessor(size=pixels, patch_size=16, merge_size=2, temporal_patch_size=2, **mean_std)
    return image, video


def build_tiny(out_dir: Path, family: str = "qwen3_vl", size: str = "tiny") -> None:
    """Write a random-weight Qwen3-VL checkpoint (tokenizer, processor, model) to ``out_dir``."""
    from transformers import Qwen3VLProcessor

    if family != "qwen3_vl":
        raise ValueError(f"build_tiny in qwen3_vl.py makes qwen3_vl, not {family!r}")
    if size not in RANDOM_SIZES:
        raise ValueError(f"unknown random size {size!r}; valid sizes: {', '.join(RANDOM_SIZES)}")
    dims = RANDOM_SIZES[size]
    tokenizer = tiny_tokenizer()
    config = make_config(tokenizer, dims["text"], dims["vision"])
    torch.manual_seed(0)
    model = Qwen3VLForConditionalGeneration(config).eval()
    token_id = tokenizer.convert_tokens_to_ids
    model.generation_config.eos_token_id = [token_id("<|im_end|>"), token_id("<|endoftext|>")]
    image_processor, video_processor = make_processors(dims["pixels"])
    processor = Qwen3VLProcessor(
        image_processor=image_processor, video_processor=video_processor, tokenizer=tokenizer,
        chat_template=_TINY_CHAT_TEMPLATE,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
