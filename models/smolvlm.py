r"""SmolVLM2 (``model_type`` "smolvlm") behind the ``VideoLM`` protocol: frames as images, 1-D positions.

Stream layout in the language model, token for token the rendering of transformers 5.23's
``SmolVLMProcessor`` for a user turn holding one video, then the question (the processor switches to
its own ``DEFAULT_CHAT_TEMPLATE`` whenever a conversation holds a video)::

    <|im_start|>[System: {system}<end_of_utterance>\n]User: {intro}                          <- start()
    \nFrame from MM:SS:<fake_token_around_image><global-img><image> x n<fake_token_around_image>  <- prefill()
    \n\n{question}<end_of_utterance>\nAssistant:  + generated tokens                        <- answer()

Every frame is a separate image of ``image_seq_len`` tokens (SigLIP on the square
``max_image_size`` frame, pixel shuffle by ``scale_factor``, linear projection), never split into
tiles: the video processor resizes video frames to one square image, as here. The timestamp is the
frame's media time in whole minutes and seconds, as the processor prints it.

The one difference from the processor's rendering is the intro. The processor writes
``You are provided the following series of {N in words} frames from a {H:MM:SS} [H:MM:SS] video.\n``;
a stream does not know N or the duration when the intro is written, so the default ``video_intro``
keeps the sentence without them. Pass ``video_intro`` (the conformance suite passes the processor's
sentence for its clip and then matches the processor token for token).

Tokenization note: the intro ends with ``\n`` and the first frame's text starts with ``\n``; they are
tokenized separately here and together by the processor. A GPT-2-style byte-level pre-tokenizer (the
tiny tokenizer, SmolLM2's) splits ``\n\nFrame`` into ``\n``, ``\n``, ``Frame`` either way, so the ids
agree; every other boundary is a special token.

We run the vision tower and connector ourselves rather than ``get_image_features``, which drops any
frame whose normalised pixels are all exactly 0 as "padding" (a uniformly mid-grey frame would lose
its tokens and desynchronise the stream).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    SmolVLMForConditionalGeneration,
)

from models.protocol import VisualChunk
from models.stream_base import FramedChunk, LinearStreamLM, SpanMemo, load_checkpoint, normalized_frames, stop_token_ids

logger = logging.getLogger(__name__)

FAKE_IMAGE_TOKEN = "<fake_token_around_image>"
GLOBAL_IMAGE_TOKEN = "<global-img>"
END_OF_UTTERANCE = "<end_of_utterance>"
STREAM_VIDEO_INTRO = "You are provided the following series of frames from a video.\n"


def frame_text(seconds: float) -> str:
    """The text before a frame's image tokens, e.g. ``\\nFrame from 01:05:`` (whole minutes, unbounded)."""
    return f"\nFrame from {int(seconds // 60):02d}:{int(seconds % 60):02d}:"


class SmolVLM(LinearStreamLM):
    """A loaded SmolVLM2 checkpoint (weights only; no per-stream state).

    Args:
        model: ``SmolVLMForConditionalGeneration`` in eval mode.
        tokenizer: its tokenizer.
        video_config: its video processor (``max_image_size``, mean/std).
        model_id: hub id or folder it came from.
        max_frame_pixels: ignored (frames are one square tower input); accepted for a uniform loader.
        video_intro: the text between ``User: `` and the first frame.
    """

    family = "smolvlm"
    frames_per_chunk = 1

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        video_config: object,
        model_id: str,
        max_frame_pixels: int | None = None,
        video_intro: str = STREAM_VIDEO_INTRO,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.video_intro = video_intro
        self.inner = model.model
        self.language_model = self.inner.text_model
        self.lm_head = model.lm_head
        self.embed_tokens = self.language_model.embed_tokens
        text_config = model.config.text_config
        self.num_layers: int = text_config.num_hidden_layers
        self.max_positions: int = text_config.max_position_embeddings
        vision_config = model.config.vision_config
        self.patch_size = int(vision_config.patch_size)
        max_size = getattr(video_config, "max_image_size", None) or {}
        self.image_size = int(max_size.get("longest_edge") or vision_config.image_size)
        side = self.image_size // self.patch_size // int(model.config.scale_factor)
        self.grid_hw: tuple[int, int] = (side, side)
        self.image_mean = torch.tensor(video_config.image_mean, dtype=torch.float32)
        self.image_std = torch.tensor(video_config.image_std, dtype=torch.float32)
        self.image_token_id: int = model.config.image_token_id
        token_id = tokenizer.convert_tokens_to_ids
        self.image_open_ids: tuple[int, ...] = (token_id(FAKE_IMAGE_TOKEN), token_id(GLOBAL_IMAGE_TOKEN))
        self.image_close_ids: tuple[int, ...] = (token_id(FAKE_IMAGE_TOKEN),)
        self.stop_token_ids = stop_token_ids(tokenizer, model.generation_config, (END_OF_UTTERANCE,))
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
    ) -> SmolVLM:
        """Load tokenizer, video processor and model from a hub id or a local folder."""
        model, processor = load_checkpoint(
            path,
            {"smolvlm": SmolVLMForConditionalGeneration},
            device=device,
            dtype=dtype,
            attn_implementation=attn_implementation,
            local_files_only=local_files_only,
        )
        return cls(model, processor.tokenizer, processor.video_processor, str(path), max_frame_pixels)

    # --------------------------------------------------------------------------------- prompting
    def header_text(self, system_prompt: str) -> str:
        system = f"System: {system_prompt}{END_OF_UTTERANCE}\n" if system_prompt else ""
        return f"<|im_start|>{system}User: {self.video_intro}"

    @staticmethod
    def question_text(question: str) -> str:
        return f"\n\n{question}{END_OF_UTTERANCE}\nAssistant:"

    def frame_prefix_ids(self, seconds: float) -> tuple[int, ...]:
        """Token ids before a frame's image tokens: its timestamp text and the image opening."""
        return tuple(self._ids(frame_text(seconds))) + self.image_open_ids

    # ----------------------------------------------------------------------------------- streams
    def frame_size(self, height: int, width: int) -> tuple[int, int]:
        return self.image_size, self.image_size

    @torch.inference_mode()
    def encode(
        self, frames: Sequence[np.ndarray], timestamps: Sequence[float], size: tuple[int, int] | None = None
    ) -> list[VisualChunk]:
        """SigLIP + pixel shuffle + projection per frame; one framed chunk of ``image_seq_len`` tokens each.

        ``size`` is ignored: frames become one square ``(image_size, image_size)`` image each.
        """
        if not frames:
            return []
        pixels = normalized_frames(frames, self.image_size, self.image_size, self.image_mean, self.image_std)
        pixels = pixels.to(self.device, self.dtype)
        side = self.image_size // self.patch_size
        patch_mask = torch.ones((len(frames), side, side), dtype=torch.bool, device=self.device)
        hidden = self.inner.vision_model(pixel_values=pixels, patch_attention_mask=patch_mask).last_hidden_state
        features = self.inner.connector(hidden)  # (frames, image_seq_len, hidden)
        return [
            FramedChunk(
                features[k], self.grid_hw, (float(timestamps[k]),),
                prefix_ids=self.frame_prefix_ids(float(timestamps[k])), suffix_ids=self.image_close_ids,
            )
            for k in range(len(frames))
        ]


# ------------------------------------------------------------------------------ tiny checkpoints
_TINY_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", END_OF_UTTERANCE, FAKE_IMAGE_TOKEN, GLOBAL_IMAGE_TOKEN, "<image>", "<video>",
]
# SmolVLM2's chat template for images and text (the processor uses its DEFAULT_CHAT_TEMPLATE for video).
_TINY_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

# "tiny": tests; "small": CPU throughput runs (a 12-layer 768-wide Llama LM with SmolVLM2's 49,280-token
# table, an 8-layer 512-wide SigLIP at 384 px: 27 x 27 patches shuffled by 3 into 81 tokens per frame).
RANDOM_SIZES: dict[str, dict[str, dict[str, object]]] = {
    "tiny": {
        "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2},
        "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                   "image_size": 56, "patch_size": 14},
        "scale_factor": {"value": 2},
    },
    "small": {
        "text": {"hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 12,
                 "num_key_value_heads": 12, "vocab_size": 49280},
        "vision": {"hidden_size": 512, "intermediate_size": 1368, "num_hidden_layers": 8, "num_attention_heads": 8,
                   "image_size": 384, "patch_size": 14},
        "scale_factor": {"value": 3},
    },
}


def tiny_tokenizer() -> PreTrainedTokenizerBase:
    """The byte-level tiny tokenizer with SmolVLM2's special tokens and chat template."""
    from models.tiny_tokenizer import build_tiny_tokenizer

    return build_tiny_tokenizer(
        _TINY_SPECIAL_TOKENS, chat_template=_TINY_CHAT_TEMPLATE, eos_token=END_OF_UTTERANCE, pad_token="<|endoftext|>"
    )


def make_config(
    tokenizer: PreTrainedTokenizerBase, text: dict, vision: dict, scale_factor: int, max_positions: int = 8192
):
    """A ``SmolVLMConfig`` (Llama text model, SigLIP-style tower) with token ids from ``tokenizer``."""
    from transformers import SmolVLMConfig

    text = dict(text)
    tie = bool(text.pop("tie_word_embeddings", False))
    token_id = tokenizer.convert_tokens_to_ids
    text_config = {
        "model_type": "llama", "vocab_size": len(tokenizer), "max_position_embeddings": max_positions,
        "rope_parameters": {"rope_type": "default", "rope_theta": 273768.0}, "rms_norm_eps": 1e-5,
        "bos_token_id": token_id("<|im_start|>"), "eos_token_id": token_id(END_OF_UTTERANCE),
        "pad_token_id": token_id("<|endoftext|>"), "tie_word_embeddings": tie, **text,
    }
    return SmolVLMConfig(
        text_config=text_config, vision_config=dict(vision), scale_factor=scale_factor,
        image_token_id=token_id("<image>"), tie_word_embeddings=tie, pad_token_id=token_id("<|endoftext|>"),
    )


def make_processors(image_size: int) -> tuple[object, object]:
    """``(image_processor, video_processor)`` for ``image_size`` square tiles, SigLIP normalisation."""
    from transformers import SmolVLMImageProcessor, SmolVLMVideoProcessor

    mean_std = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    edge = {"longest_edge": image_size}
    image = SmolVLMImageProcessor(size={"longest_edge": 4 * image_size}, max_image_size=edge, **mean_std)
    video = SmolVLMVideoProcessor(size=edge, max_image_size=edge, **mean_std)
    return image, video


def build_tiny(out_dir: Path, family: str = "smolvlm", size: str = "tiny") -> None:
    """Write a random-weight SmolVLM2 checkpoint (tokenizer, processor, model) to ``out_dir``.

    The processor needs the ``num2words`` package (transformers' SmolVLM processor imports it).
    """
    from transformers import SmolVLMProcessor

    if family != "smolvlm":
        raise ValueError(f"build_tiny in smolvlm.py makes smolvlm, not {family!r}")
    if size not in RANDOM_SIZES:
        raise ValueError(f"unknown random size {size!r}; valid sizes: {', '.join(RANDOM_SIZES)}")
    dims = RANDOM_SIZES[size]
    scale = int(dims["scale_factor"]["value"])
    tokenizer = tiny_tokenizer()
    config = make_config(tokenizer, dims["text"], dims["vision"], scale)
    torch.manual_seed(0)
    model = SmolVLMForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = [tokenizer.convert_tokens_to_ids(END_OF_UTTERANCE)]
    image_size = int(dims["vision"]["image_size"])
    side = image_size // int(dims["vision"]["patch_size"])
    image_processor, video_processor = make_processors(image_size)
    processor = SmolVLMProcessor(
        image_processor=image_processor, video_processor=video_processor, tokenizer=tokenizer,
        image_seq_len=side * side // (scale * scale), chat_template=_TINY_CHAT_TEMPLATE,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
