"""The decode loop: streamed text is valid UTF-8, stop strings cut exactly, sampling is seeded."""

from __future__ import annotations

import torch

from models.decoding import IncrementalDetokenizer, StopStringFilter, decode_loop, pick_token
from models.protocol import SamplingParams


def test_detokenizer_never_emits_partial_characters(tiny_models) -> None:
    tokenizer = tiny_models["qwen2_5_vl"].tokenizer
    text = "Zeit für café: 東京 🙂 ok"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text.split())  # multi-byte characters really are split over tokens
    detok = IncrementalDetokenizer(lambda x: tokenizer.decode(x, skip_special_tokens=True))
    pieces = [detok.push(i) for i in ids]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


def test_stop_string_split_across_pieces() -> None:
    filt = StopStringFilter(("STOP",))
    shown = [filt.feed(p) for p in ["Hello S", "T", "OP and more"]]
    assert "".join(shown) == "Hello "
    assert filt.stopped


def test_stop_string_prefix_that_does_not_complete_is_released() -> None:
    filt = StopStringFilter(("STOP",))
    shown = [filt.feed(p) for p in ["a ST", "ART b"]]
    assert "".join(shown) + filt.flush() == "a START b"
    assert not filt.stopped


def _scripted_loop(sequence: list[int], sampling: SamplingParams, stop_ids: set[int]):
    vocab = 10
    step_logits = iter(sequence[1:])

    def one_hot(token: int) -> torch.Tensor:
        logits = torch.full((vocab,), -10.0)
        logits[token] = 10.0
        return logits

    def step(_: int) -> torch.Tensor:
        return one_hot(next(step_logits))

    def letters(ids: list[int]) -> str:
        return "".join(chr(97 + i) for i in ids)

    return list(decode_loop(one_hot(sequence[0]), step, letters, stop_ids, sampling))


def test_stop_token_ends_generation_and_is_not_shown() -> None:
    pieces = _scripted_loop([1, 2, 9, 3], SamplingParams(max_new_tokens=10), stop_ids={9})
    assert "".join(p.text for p in pieces) == "bc"
    assert pieces[-1].finish_reason == "stop"


def test_max_new_tokens_reports_length() -> None:
    pieces = _scripted_loop([1, 2, 3, 4, 5], SamplingParams(max_new_tokens=3), stop_ids=set())
    assert "".join(p.text for p in pieces) == "bcd"
    assert pieces[-1].finish_reason == "length"
    assert sum(len(p.token_ids) for p in pieces) == 3


def test_top_p_keeps_only_the_nucleus_and_is_seeded() -> None:
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    sampling = SamplingParams(temperature=1.0, top_p=0.7)
    generator = torch.Generator().manual_seed(0)
    draws = {pick_token(logits, sampling, generator) for _ in range(300)}
    assert draws == {0, 1}
    first = [pick_token(logits, sampling, torch.Generator().manual_seed(5)) for _ in range(5)]
    again = [pick_token(logits, sampling, torch.Generator().manual_seed(5)) for _ in range(5)]
    assert first == again


def test_greedy_picks_argmax() -> None:
    assert pick_token(torch.tensor([0.1, 3.0, -1.0]), SamplingParams(), None) == 1
