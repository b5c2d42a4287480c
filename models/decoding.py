"""Our own decode loop: greedy or temperature/top-p sampling, stop tokens and strings, streamed text.

We do not use ``generate()``: it derives positions from the cache length (wrong for M-RoPE streams
and for caches that evicted tokens) and slices ``input_ids`` by ``get_seq_length()``. A decode loop
with explicit positions is short and gives full control.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from models.protocol import SamplingParams, TextPiece


def pick_token(logits: torch.Tensor, sampling: SamplingParams, generator: torch.Generator | None) -> int:
    """Choose the next token from ``(vocab,)`` logits."""
    if sampling.temperature == 0:
        return int(torch.argmax(logits).item())
    probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        # keep the smallest prefix whose mass reaches top_p (always at least the best token)
        drop = cumulative - sorted_probs >= sampling.top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        choice = torch.multinomial(sorted_probs / sorted_probs.sum(), 1, generator=generator)
        return int(order[choice].item())
    return int(torch.multinomial(probs, 1, generator=generator).item())


class IncrementalDetokenizer:
    """Turns a growing list of token ids into text pieces that are always valid UTF-8.

    Byte-level tokenizers split multi-byte characters over tokens; decoding a partial character gives
    U+FFFD. We re-decode a short window of recent tokens and emit only text that is complete.
    """

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode = decode
        self.token_ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0

    def push(self, token_id: int) -> str:
        """Add one token; return the newly completed text (possibly empty)."""
        self.token_ids.append(token_id)
        prefix_text = self._decode(self.token_ids[self._prefix_offset : self._read_offset])
        full_text = self._decode(self.token_ids[self._prefix_offset :])
        if len(full_text) > len(prefix_text) and not full_text.endswith("\ufffd"):
            new_text = full_text[len(prefix_text) :]
            self._prefix_offset = self._read_offset
            self._read_offset = len(self.token_ids)
            return new_text
        return ""


class StopStringFilter:
    """Holds back text that might be the start of a stop string; reports when one is complete."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Add text; return what can be shown now (text before a completed stop string, if any)."""
        if not self._stops:
            return text
        self._held += text
        cut = min((i for i in (self._held.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self._held = self._held[:cut], ""
            return out
        keep = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(self._held)), 0, -1):
                if self._held.endswith(stop[:k]):
                    keep = max(keep, k)
                    break
        out = self._held[: len(self._held) - keep]
        self._held = self._held[len(self._held) - keep :]
        return out

    def flush(self) -> str:
        out, self._held = self._held, ""
        return out


def decode_loop(
    first_logits: torch.Tensor,
    step: Callable[[int], torch.Tensor],
    decode: Callable[[list[int]], str],
    stop_token_ids: set[int],
    sampling: SamplingParams,
) -> Iterator[TextPiece]:
    """Generate tokens and stream their text.

    Args:
        first_logits: ``(vocab,)`` logits after the prompt's last token.
        step: feeds one token at the next position and returns the following ``(vocab,)`` logits.
        decode: token ids -> text (the tokenizer's decode, special tokens skipped).
        stop_token_ids: generation ends when one of these is produced (it is not shown).
        sampling: how to choose tokens.

    Yields:
        TextPiece per produced token that completes text; the last piece has ``finish_reason``.
    """
    generator = None
    if sampling.seed is not None:
        generator = torch.Generator(device="cpu").manual_seed(sampling.seed)
    detok = IncrementalDetokenizer(decode)
    stop_filter = StopStringFilter(sampling.stop)
    logits = first_logits
    for produced in range(1, sampling.max_new_tokens + 1):
        token = pick_token(logits.cpu() if generator is not None else logits, sampling, generator)
        if token in stop_token_ids:
            yield TextPiece(stop_filter.flush(), [], finish_reason="stop")
            return
        text = stop_filter.feed(detok.push(token))
        if stop_filter.stopped:
            yield TextPiece(text, [token], finish_reason="stop")
            return
        if produced == sampling.max_new_tokens:
            yield TextPiece(text + stop_filter.flush(), [token], finish_reason="length")
            return
        yield TextPiece(text, [token])
        logits = step(token)
