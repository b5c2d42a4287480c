r"""LLaVA-OneVision behind the ``VideoLM`` protocol: SigLIP per frame, 2x2 pooling, one newline, 1-D positions.

Stream layout in the language model, token for token the rendering of transformers 5.23's
``LlavaOnevisionProcessor`` applied to the llava-hf chat template (a user turn holding one video, then
the question)::

    [<|im_start|>system \n{system}<|im_end|>]<|im_start|>user                    <- start()
    <video> x (frames * pooled_h * pooled_w)   (one run per frame)                  <- prefill()
    <video>(= image_newline) \n{question}<|im_end|><|im_start|>assistant\n          <- answer()

The model appends one learned ``image_newline`` after the *whole* video (``get_video_features``), so
in a stream it belongs to the question suffix, like ``<|vision_end|>`` for Qwen: it is fed with every
question and rolled back with it. The llava-hf template writes ``system `` / ``user `` with a space and
no newline after ``<|im_end|>``; we follow it because the processor does.

Frames: each frame is resized to the tower's square input (``image_size``, 384 for the released
checkpoints), run through SigLIP independently, projected, and bilinearly pooled to
``ceil(P/2) x ceil(P/2)`` tokens (``P = image_size / patch_size``: 27 -> 14 x 14 = 196), exactly what
``LlavaOnevisionModel.get_video_features`` does; a chunk is one frame. Positions are plain 1-D and
passed explicitly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import (
    LlavaOnevisionForConditionalGeneration,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from models.protocol import VisualChunk
from models.stream_base import LinearStreamLM, SpanMemo, load_checkpoint, normalized_frames, stop_token_ids

logger = logging.getLogger(__name__)


class LlavaOneVision(LinearStreamLM):
    """A loaded LLaVA-OneVision checkpoint (weights only; no per-stream state).

    Args:
        model: ``LlavaOnevisionForConditionalGeneration`` in eval mode.
        tokenizer: its tokenizer.
        video_config: its video processor (mean/std).
        model_id: hub id or folder it came from.
        max_frame_pixels: ignored (the tower's input size is fixed); accepted for a uniform loader.
    """

    family = "llava_onevision"
    frames_per_chunk = 1

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
        self.inner = model.model
        self.language_model = self.inner.language_model
        self.lm_head = model.lm_head
        self.embed_tokens = self.language_model.embed_tokens
        text_config = model.config.text_config
        self.num_layers: int = text_config.num_hidden_layers
        self.max_positions: int = text_config.max_position_embeddings
        vision_config = model.config.vision_config
        self.image_size: int = int(vision_config.image_size)
        patches = self.image_size // int(vision_config.patch_size)
        self.grid_hw: tuple[int, int] = (math.ceil(patches / 2), math.ceil(patches / 2))
        self.image_mean = torch.tensor(video_config.image_mean, dtype=torch.float32)
        self.image_std = torch.tensor(video_config.image_std, dtype=torch.float32)
        self.video_token_id: int = model.config.video_token_id
        self.stop_token_ids = stop_token_ids(tokenizer, model.generation_config, ("<|im_end|>", "<|endoftext|>"))
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
    ) -> LlavaOneVision:
        """Load tokenizer, video processor and model from a hub id or a local folder."""
        model, processor = load_checkpoint(
            path,
            {"llava_onevision": LlavaOnevisionForConditionalGeneration},
            device=device,
            dtype=dtype,
            attn_implementation=attn_implementation,
            local_files_only=local_files_only,
        )
        return cls(model, processor.tokenizer, processor.video_processor, str(path), max_frame_pixels)

    # --------------------------------------------------------------------------------- prompting
    def header_text(self, system_prompt: str) -> str:
        system = f"<|im_start|>system \n{system_prompt}<|im_end|>" if system_prompt else ""
        return f"{system}<|im_start|>user "

    @staticmethod
    def question_text(question: str) -> str:
        return f"\n{question}<|im_end|><|im_start|>assistant\n"

    def question_lead(self) -> torch.Tensor:
        """The video's closing ``image_newline``: ``(1, hidden)``."""
        return self.inner.image_newline.unsqueeze(0)

    # ----------------------------------------------------------------------------------- streams
    def frame_size(self, height: int, width: int) -> tuple[int, int]:
        return self.image_size, self.image_size

    @torch.inference_mode()
    def encode(
        self, frames: Sequence[np.ndarray], timestamps: Sequence[float], size: tuple[int, int] | None = None
    ) -> list[VisualChunk]:
        """SigLIP + projector + pooling on ``(H, W, 3)`` uint8 frames; one chunk of ``h*w`` tokens per frame.

        ``size`` is ignored: the tower takes ``(image_size, image_size)`` frames only.
        """
        if not frames:
            return []
        pixels = normalized_frames(frames, self.image_size, self.image_size, self.image_mean, self.image_std)
        out = self.inner.get_video_features(pixels.unsqueeze(0).to(self.device, self.dtype))
        features = out.pooler_output[0, :-1]  # (frames * h * w, hidden): the closing newline is dropped
        per_frame = self.grid_hw[0] * self.grid_hw[1]
        return [
            VisualChunk(features[k * per_frame : (k + 1) * per_frame], self.grid_hw, (float(timestamps[k]),))
            for k in range(len(frames))
        ]


# ------------------------------------------------------------------------------ tiny checkpoints
_TINY_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
# The llava-hf chat template of the released LLaVA-OneVision checkpoints (media first, then text).
_TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + ' '}}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\\n' + content['text'] }}"
    "{% endfor %}{{'<|im_end|>'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# "tiny": tests; "small": CPU throughput runs (a 12-layer 768-wide Qwen2 LM with the real 151,936-token
# table tied to the head, an 8-layer 512-wide SigLIP at 384 px: 27 x 27 patches pooled to 196 tokens).
RANDOM_SIZES: dict[str, dict[str, dict[str, object]]] = {
    "tiny": {
        "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2},
        "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                   "image_size": 42, "patch_size": 14},
    },
    "small": {
        "text": {"hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 12,
                 "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True},
        "vision": {"hidden_size": 512, "intermediate_size": 1368, "num_hidden_layers": 8, "num_attention_heads": 8,
                   "image_size": 384, "patch_size": 14},
    },
}


def tiny_tokenizer() -> PreTrainedTokenizerBase:
    """The byte-level tiny tokenizer with LLaVA-OneVision's special tokens and chat template."""
    from models.tiny_tokenizer import build_tiny_tokenizer

    return build_tiny_tokenizer(
        _TINY_SPECIAL_TOKENS, chat_template=_TINY_CHAT_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )


def make_config(tokenizer: PreTrainedTokenizerBase, text: dict, vision: dict, max_positions: int = 32768):
    """A ``LlavaOnevisionConfig`` (Qwen2 text model, SigLIP tower) with token ids from ``tokenizer``."""
    from transformers import LlavaOnevisionConfig

    text = dict(text)
    tie = bool(text.pop("tie_word_embeddings", False))
    token_id = tokenizer.convert_tokens_to_ids
    text_config = {
        "model_type": "qwen2", "vocab_size": len(tokenizer), "max_position_embeddings": max_positions,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
        "bos_token_id": None, "eos_token_id": token_id("<|im_end|>"), "pad_token_id": token_id("<|endoftext|>"),
        "tie_word_embeddings": tie, **text,
    }
    vision_config = {"model_type": "siglip_vision_model", "vision_use_head": False, **vision}
    return LlavaOnevisionConfig(
        text_config=text_config, vision_config=vision_config,
        image_token_index=token_id("<image>"), video_token_index=token_id("<video>"),
        vision_feature_select_strategy="full", vision_feature_layer=-1, tie_word_embeddings=tie,
    )


def make_processors(image_size: int) -> tuple[object, object]:
    """``(image_processor, video_processor)`` for square ``image_size`` frames, SigLIP normalisation."""
    from transformers import LlavaOnevisionImageProcessor, LlavaOnevisionVideoProcessor

    mean_std = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    square = {"height": image_size, "width": image_size}
    image = LlavaOnevisionImageProcessor(size=square, image_grid_pinpoints=[[image_size, image_size]], **mean_std)
    video = LlavaOnevisionVideoProcessor(size=square, **mean_std)
    return image, video


def build_tiny(out_dir: Path, family: str = "llava_onevision", size: str = "tiny") -> None:
    """Write a random-weight LLaVA-OneVision checkpoint (tokenizer, processor, model) to ``out_dir``."""
    from transformers import LlavaOnevisionProcessor

    if family != "llava_onevision":
        raise ValueError(f"build_tiny in llava_onevision.py makes llava_onevision, not {family!r}")
    if size not in RANDOM_SIZES:
        raise ValueError(f"unknown random size {size!r}; valid sizes: {', '.join(RANDOM_SIZES)}")
    dims = RANDOM_SIZES[size]
    tokenizer = tiny_tokenizer()
    config = make_config(tokenizer, dims["text"], dims["vision"])
    torch.manual_seed(0)
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    token_id = tokenizer.convert_tokens_to_ids
    model.generation_config.eos_token_id = [token_id("<|im_end|>"), token_id("<|endoftext|>")]
    image_size = int(dims["vision"]["image_size"])
    patches = image_size // int(dims["vision"]["patch_size"])
    image_processor, video_processor = make_processors(image_size)
    processor = LlavaOnevisionProcessor(
        image_processor=image_processor, video_processor=video_processor, tokenizer=tokenizer,
        num_image_tokens=patches * patches, vision_feature_select_strategy="full",
        chat_template=_TINY_CHAT_TEMPLATE,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
