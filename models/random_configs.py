"""Real-size random-weight models for benchmarking without downloads: ``--model random:<name>``.

Each entry has the published dimensions of a released checkpoint, so a throughput or memory figure
measured with it is the real model's (speed does not depend on weight values). Weights are random,
initialised directly in the target dtype on the target device (no float32 copy on the CPU first),
and the tokenizer is the family's tiny byte-level one (its ids stay inside the real vocabulary):
answers are noise. Such a model says "random weights" in its ``model_id`` and logs a WARNING when
loaded, so it is labelled wherever it appears (CLI JSON, benchmark JSON, logs).

Where the numbers come from (transformers config class defaults are *not* relied on where they
differ from the release: 5.23's ``Qwen2_5_VLVisionConfig`` defaults ``hidden_size`` to 3584, the
release uses 1280):

* Qwen2.5-VL-3B/7B: the releases' ``config.json`` (hidden 2048/3584, intermediate 11008/18944,
  36/28 layers, 16/28 heads, 2/4 KV heads, vocab 151936/152064, tied/untied head, M-RoPE
  [16, 24, 24]); the vision tower fields the releases leave to the config class (depth 32, width
  1280, MLP 3420, 16 heads, window 112, full-attention blocks 7/15/23/31) are the class defaults
  of transformers 4.49 (``Qwen2_5_VLVisionConfig``), as mirrored in e.g. huggingface.co
  zyoNoob/Qwen2.5-VL-3B-Instruct-AWQ/config.json. Published sizes: 3.75B and 8.29B parameters (the
  model pages' safetensors counts).
* Qwen3-VL-2B/8B: the releases' ``config.json`` (text 2048/4096 wide, 28/36 layers, 16/32 heads,
  8 KV heads, head_dim 128, intermediate 6144/12288, M-RoPE [24, 20, 20] interleaved, vocab 151936,
  tied/untied; vision depth 24/27, width 1024/1152, MLP 4096/4304, 16 heads, 2304 position
  embeddings, deepstack [5, 11, 17] / [8, 16, 24]), e.g. huggingface.co Steinate/Cortex/config.json
  (an 8B fine-tune) and the 2B config quoted in xorbitsai/inference issue #4592. Published sizes:
  2.13B and 8.77B.
* LLaVA-OneVision-0.5B/7B (llava-hf): text = Qwen2-0.5B / Qwen2-7B (``config.json``: 896/3584 wide,
  24/28 layers, 14/28 heads, 2/4 KV heads, intermediate 4864/18944, tied/untied), vision = the
  SigLIP-so400m tower of ``LlavaOnevisionConfig``'s defaults (1152 wide, MLP 4304, 26 layers,
  16 heads, 384 px, patch 14). Published sizes: 0.89B and 8.03B.
* SmolVLM2-2.2B: text = SmolLM2-1.7B (``config.json``: 2048 wide, MLP 8192, 24 layers, 32 heads,
  32 KV heads) with the VLM's 49,280-token vocabulary (its ``generation_config`` eos id is 49279)
  and an untied head; vision = SigLIP-so400m (1152, 4304, 27 layers, 16 heads, 384 px, patch 14),
  pixel shuffle 3 (81 tokens per frame). Published size: 2.25B.

``tests/test_conformance.py::test_random_configs_have_the_published_size`` builds every entry on the ``meta``
device and checks the parameter count against the published size (5%).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.protocol import VideoLM

logger = logging.getLogger(__name__)

RANDOM_PREFIX = "random:"


@dataclass(frozen=True)
class RandomSpec:
    """One real-size random-weight configuration.

    Attributes:
        family: transformers ``model_type`` of the architecture.
        text: text-model fields (family-specific keys, see each family's ``make_config``).
        vision: vision-tower fields.
        published_params_b: parameter count of the released checkpoint, in billions.
        extra: other family-specific settings (``scale_factor``, ``max_positions``, processor bounds).
    """

    family: str
    text: dict
    vision: dict
    published_params_b: float
    extra: dict = field(default_factory=dict)


_QWEN25_VISION = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                  "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2}
_SIGLIP_SO400M = {"hidden_size": 1152, "intermediate_size": 4304, "num_attention_heads": 16, "image_size": 384,
                  "patch_size": 14, "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6}

RANDOM_CONFIGS: dict[str, RandomSpec] = {
    "qwen2.5-vl-3b": RandomSpec(
        "qwen2_5_vl",
        {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
         "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True},
        _QWEN25_VISION, 3.75, {"max_positions": 128000},
    ),
    "qwen2.5-vl-7b": RandomSpec(
        "qwen2_5_vl",
        {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
         "num_key_value_heads": 4, "vocab_size": 152064, "tie_word_embeddings": False},
        _QWEN25_VISION, 8.29, {"max_positions": 128000},
    ),
    "qwen3-vl-2b": RandomSpec(
        "qwen3_vl",
        {"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28, "num_attention_heads": 16,
         "num_key_value_heads": 8, "head_dim": 128, "mrope_section": [24, 20, 20], "vocab_size": 151936,
         "tie_word_embeddings": True},
        {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16,
         "num_position_embeddings": 2304, "deepstack_visual_indexes": [5, 11, 17]},
        2.13, {"max_positions": 262144},
    ),
    "qwen3-vl-8b": RandomSpec(
        "qwen3_vl",
        {"hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36, "num_attention_heads": 32,
         "num_key_value_heads": 8, "head_dim": 128, "mrope_section": [24, 20, 20], "vocab_size": 151936,
         "tie_word_embeddings": False},
        {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16,
         "num_position_embeddings": 2304, "deepstack_visual_indexes": [8, 16, 24]},
        8.77, {"max_positions": 262144},
    ),
    "llava-onevision-0.5b": RandomSpec(
        "llava_onevision",
        {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
         "num_key_value_heads": 2, "vocab_size": 152000, "tie_word_embeddings": True},
        {**_SIGLIP_SO400M, "num_hidden_layers": 26}, 0.894, {"max_positions": 32768},
    ),
    "llava-onevision-7b": RandomSpec(
        "llava_onevision",
        {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
         "num_key_value_heads": 4, "vocab_size": 152128, "tie_word_embeddings": False},
        {**_SIGLIP_SO400M, "num_hidden_layers": 26}, 8.03, {"max_positions": 32768},
    ),
    "smolvlm2-2.2b": RandomSpec(
        "smolvlm",
        {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24, "num_attention_heads": 32,
         "num_key_value_heads": 32, "vocab_size": 49280, "tie_word_embeddings": False},
        {**_SIGLIP_SO400M, "num_hidden_layers": 27}, 2.25, {"max_positions": 16384, "scale_factor": 3},
    ),
}


def spec(name: str) -> RandomSpec:
    """The entry ``name``; an unknown name raises ``KeyError`` listing the valid ones."""
    try:
        return RANDOM_CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown random config {name!r}; valid: {', '.join(RANDOM_CONFIGS)}") from None


def components(name: str) -> tuple[type[PreTrainedModel], object, PreTrainedTokenizerBase, object, type]:
    """``(model_class, config, tokenizer, video_processor, wrapper_class)`` for entry ``name``."""
    entry = spec(name)
    max_positions = int(entry.extra.get("max_positions", 32768))
    if entry.family in ("qwen2_vl", "qwen2_5_vl"):
        return _qwen25_components(entry, max_positions)
    if entry.family == "qwen3_vl":
        from transformers import Qwen3VLForConditionalGeneration

        from models import qwen3_vl

        tokenizer = qwen3_vl.tiny_tokenizer()
        config = qwen3_vl.make_config(tokenizer, entry.text, entry.vision, max_positions)
        _, video = qwen3_vl.make_processors({"shortest_edge": 4096, "longest_edge": 25165824})
        return Qwen3VLForConditionalGeneration, config, tokenizer, video, qwen3_vl.Qwen3VL
    if entry.family == "llava_onevision":
        from transformers import LlavaOnevisionForConditionalGeneration

        from models import llava_onevision

        tokenizer = llava_onevision.tiny_tokenizer()
        config = llava_onevision.make_config(tokenizer, entry.text, entry.vision, max_positions)
        _, video = llava_onevision.make_processors(int(entry.vision["image_size"]))
        return LlavaOnevisionForConditionalGeneration, config, tokenizer, video, llava_onevision.LlavaOneVision
    if entry.family == "smolvlm":
        from transformers import SmolVLMForConditionalGeneration

        from models import smolvlm

        tokenizer = smolvlm.tiny_tokenizer()
        config = smolvlm.make_config(tokenizer, entry.text, entry.vision, int(entry.extra["scale_factor"]),
                                     max_positions)
        _, video = smolvlm.make_processors(int(entry.vision["image_size"]))
        return SmolVLMForConditionalGeneration, config, tokenizer, video, smolvlm.SmolVLM
    raise ValueError(f"random config {name!r} has unsupported family {entry.family!r}")


def _qwen25_components(entry: RandomSpec, max_positions: int):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLVideoProcessor

    from models import qwen2_vl
    from models.tiny_tokenizer import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(
        qwen2_vl._TINY_SPECIAL_TOKENS, chat_template=qwen2_vl._TINY_CHAT_TEMPLATE, eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    token_id = tokenizer.convert_tokens_to_ids
    text = dict(entry.text)
    tie = bool(text.pop("tie_word_embeddings", False))
    text_config = {
        "max_position_embeddings": max_positions,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
        "bos_token_id": None, "eos_token_id": token_id("<|im_end|>"), "pad_token_id": token_id("<|endoftext|>"),
        **text,
    }
    vision_config = {**entry.vision, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                     "out_hidden_size": text["hidden_size"]}
    config = Qwen2_5_VLConfig(
        text_config=text_config, vision_config=vision_config,
        image_token_id=token_id("<|image_pad|>"), video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"), vision_end_token_id=token_id("<|vision_end|>"),
        tie_word_embeddings=tie,
    )
    video = Qwen2VLVideoProcessor(size={"shortest_edge": 3136, "longest_edge": 12845056})
    return Qwen2_5_VLForConditionalGeneration, config, tokenizer, video, qwen2_vl.QwenVL


def count_parameters(name: str) -> int:
    """Parameters of entry ``name``, counted on the ``meta`` device (no memory is allocated)."""
    model_class, config, *_ = components(name)
    with torch.device("meta"):
        model = model_class(config)
    return sum(p.numel() for p in model.parameters())


def load_random(
    name: str,
    *,
    device: torch.device,
    dtype: torch.dtype,
    attn_implementation: str = "sdpa",
    max_frame_pixels: int | None = None,
) -> VideoLM:
    """Instantiate entry ``name`` with random weights in ``dtype`` on ``device``, wrapped as a ``VideoLM``."""
    model_class, config, tokenizer, video, wrapper = components(name)
    model_id = f"{RANDOM_PREFIX}{name} (random weights)"
    logger.warning(
        "%s: real-size %s architecture with RANDOM WEIGHTS and a tiny tokenizer: for speed and memory "
        "measurements only, its answers are noise", model_id, spec(name).family,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = model_class._from_config(config, dtype=dtype, attn_implementation=attn_implementation)
    model.eval()
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    model.generation_config.eos_token_id = eos
    return wrapper(model, tokenizer, video, model_id, max_frame_pixels)
