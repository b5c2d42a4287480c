"""A byte-level BPE tokenizer trained in milliseconds, for tiny offline checkpoints.

It behaves like the real tokenizers of the supported families where it matters to the pipeline:
byte-level (any UTF-8 round-trips, multi-byte characters split across tokens), the family's special
tokens as single ids, and a chat template. It is saved and loaded through ``save_pretrained`` /
``AutoTokenizer.from_pretrained`` like any hub tokenizer.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

_CORPUS = [
    "What happens in the video? A person walks a dog across the street while cars pass by.",
    "The red ball rolls under the table; then a cat jumps on the chair and looks at the window.",
    "How many people are there? Answer with a number. Yes or no. Describe the scene briefly.",
    "Question: what color is the car? Options: A. red B. blue C. green D. white. Answer: A",
    "Zeit, café, naïve, 東京, 視頻, 🙂 — streaming video understanding with memory.",
    "0 1 2 3 4 5 6 7 8 9 10 seconds minutes hours frame frames before after during",
]


def build_tiny_tokenizer(
    special_tokens: list[str],
    *,
    chat_template: str,
    eos_token: str,
    pad_token: str,
    vocab_size: int = 512,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on a fixed small corpus and wrap it as a transformers tokenizer.

    Args:
        special_tokens: tokens that must map to single ids (ids follow the trained vocabulary in order).
        chat_template: Jinja chat template stored with the tokenizer.
        eos_token: end-of-sequence token (must be in ``special_tokens``).
        pad_token: padding token (must be in ``special_tokens``).
        vocab_size: target size of the trained vocabulary, before special tokens.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tokenizer.add_special_tokens(special_tokens)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=eos_token,
        pad_token=pad_token,
        additional_special_tokens=[t for t in special_tokens if t not in (eos_token, pad_token)],
    )
    wrapped.chat_template = chat_template
    return wrapped
