"""A tiny random-weight Qwen2 chat checkpoint, to run the judge stage offline (tests, smoke runs).

Its verdicts are noise (mostly unreadable, so counted as unparsed): it exercises the mechanics only.
``streamvqa eval make-tiny-judge OUT_DIR`` writes one.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from models.tiny_tokenizer import build_tiny_tokenizer

_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def make_tiny_judge(folder: str | Path, seed: int = 0) -> Path:
    """Write tokenizer + model (random weights) with ``save_pretrained``; returns the folder."""
    folder = Path(folder)
    tokenizer = build_tiny_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], chat_template=_CHAT_TEMPLATE,
                                     eos_token="<|im_end|>", pad_token="<|endoftext|>")
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
