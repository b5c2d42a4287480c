"""Pieces shared by the backbone families: framed chunks, a 1-D position cursor, stop tokens, resizing.

``FramedChunk`` is the chunk record of families whose chat rendering puts text around every chunk
(Qwen3-VL: ``<t seconds><|vision_start|>`` … ``<|vision_end|>``; SmolVLM: ``\\nFrame from 00:03:``
``<fake_token_around_image><global-img>`` … ``<fake_token_around_image>``). Its ``n_tokens`` counts
those text tokens too, because it is what the chunk adds to the KV cache and what the memory ledger
(``memory.blocks.Block.n_tokens``) must record: evicting a chunk evicts its framing with it.

``LinearStreamLM`` is the common body of families with plain 1-D positions (LLaVA-OneVision,
SmolVLM): header, chunk and question tokens go through the language model at explicit positions
``cursor.next_position + arange(L)``, and answers come from :func:`models.decoding.decode_loop`.

Re-indexing (``memory.bank.MemoryBank.reindex``) moves whole chunks along the 1-D axis: a chunk's
``position`` is the position of its first token, every token of the chunk moves by the same delta,
and moving a key by ``delta`` is one more RoPE rotation (:func:`rotate_keys_1d`). A chunk occupies
``prefix + grid tokens + suffix`` positions even when token dropping (``chunk.keep``) writes fewer
tokens (survivors keep their positions), so :class:`SpanMemo` remembers, per written token count,
the largest span a chunk of that count occupied: ``min_position_gap`` answers from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from memory.streaming_cache import StreamingCache
from models.decoding import decode_loop
from models.protocol import SamplingParams, TextPiece, VisualChunk


def kept_rows(chunk: VisualChunk) -> torch.Tensor | None:
    """Grid indices of the visual tokens the chunk writes (``chunk.keep``), or None for all."""
    return getattr(chunk, "keep", None)


@dataclass
class FramedChunk(VisualChunk):
    """A visual chunk plus the text tokens the stream puts before and after its visual tokens.

    Attributes:
        prefix_ids: token ids placed right before the visual tokens (timestamp text, delimiters).
        suffix_ids: token ids placed right after them.
    """

    prefix_ids: tuple[int, ...] = ()
    suffix_ids: tuple[int, ...] = ()

    @property
    def n_visual(self) -> int:
        """Visual tokens written (all of ``embeds``, or the ``keep`` survivors of token dropping)."""
        keep = kept_rows(self)
        return int(self.embeds.shape[0]) if keep is None else int(keep.numel())

    @property
    def n_tokens(self) -> int:
        """Every token the chunk adds to the cache: prefix + visual + suffix."""
        return len(self.prefix_ids) + self.n_visual + len(self.suffix_ids)

    @property
    def span(self) -> int:
        """Positions the chunk occupies on a 1-D axis: prefix + every grid token + suffix."""
        return len(self.prefix_ids) + int(self.embeds.shape[0]) + len(self.suffix_ids)


@dataclass
class LinearCursor:
    """Per-stream position state of a 1-D RoPE model: the position of the next token."""

    next_position: int = 0

    def copy(self) -> LinearCursor:
        return LinearCursor(self.next_position)

    def take(self, n: int) -> torch.Tensor:
        """Positions ``(1, n)`` for ``n`` new tokens; advances the cursor."""
        positions = torch.arange(self.next_position, self.next_position + n, dtype=torch.long).unsqueeze(0)
        self.next_position += n
        return positions


class SpanMemo:
    """Largest span (positions occupied) seen per written token count, for ``min_position_gap``.

    A model serves many streams, so this is per model: for any token count ever written it returns
    an upper bound of the span of a chunk of that count; an unseen count returns the count itself.
    """

    def __init__(self) -> None:
        self._spans: dict[int, int] = {}

    def record(self, n_tokens: int, span: int) -> None:
        if span > self._spans.get(n_tokens, 0):
            self._spans[n_tokens] = span

    def gap(self, n_tokens: int) -> int:
        return self._spans.get(n_tokens, n_tokens)

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, list[list[int]]]]:
        """The recorded spans (see ``memory.stateful``), so a resumed stream re-indexes as before."""
        return {}, {"spans": [[n_tokens, span] for n_tokens, span in sorted(self._spans.items())]}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict[str, list[list[int]]]) -> None:
        """Add a saved stream's records (the memo is model-wide: records only ever grow)."""
        for n_tokens, span in meta["spans"]:
            self.record(int(n_tokens), int(span))


def span_memo_of(model: object) -> SpanMemo | None:
    """The model-wide :class:`SpanMemo` of families that keep one (1-D families, Qwen3-VL), else None."""
    memo = getattr(model, "_span_memo", None)
    return memo if isinstance(memo, SpanMemo) else None


def rotate_keys_1d(keys: torch.Tensor, delta: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Keys ``(H, N, D)`` rotated by ``delta`` ``(H, N)`` positions with HF's half-split RoPE layout.

    ``k' = k * cos(delta * f) + rotate_half(k) * sin(delta * f)`` with ``f = inv_freq`` repeated over the
    two halves; a uniform shift of all M-RoPE components is the same rotation. Angles are computed in
    float64 so that moves of thousands of positions add no error of their own. (No attention scaling:
    the stored key already carries it once.)
    """
    angles = delta.to(torch.float64)[..., None] * inv_freq.to(device=keys.device, dtype=torch.float64)
    angles = torch.cat([angles, angles], dim=-1)
    k = keys.to(torch.float64)
    half = k.shape[-1] // 2
    rotated_half = torch.cat([-k[..., half:], k[..., :half]], dim=-1)
    return (k * angles.cos() + rotated_half * angles.sin()).to(keys.dtype)


def stop_token_ids(tokenizer: PreTrainedTokenizerBase, generation_config: object, tokens: Sequence[str]) -> set[int]:
    """Ids that end an answer: the named tokens (when the vocabulary has them) and every eos id."""
    ids: set[int] = set()
    for token in tokens:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    eos = getattr(generation_config, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif eos:
        ids.update(eos)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def resized(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """``frame`` ``(H, W, 3)`` uint8 at ``(height, width)`` (area interpolation; no copy when equal)."""
    if frame.shape[0] == height and frame.shape[1] == width:
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def normalized_frames(
    frames: Sequence[np.ndarray], height: int, width: int, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """Frames resized to ``(height, width)`` and normalised: ``(T, 3, height, width)`` float32."""
    batch = np.stack([resized(f, height, width) for f in frames])
    video = torch.from_numpy(batch).permute(0, 3, 1, 2).float()
    return (video / 255.0 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def capture_rotated_qk(
    language_model: torch.nn.Module, run: Callable[[], None]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer ``(queries (H_q, P, D), keys (H_kv, P, D))``, rotated, of the ``P`` tokens ``run`` feeds.

    Hooks every decoder layer's attention input and recomputes its projections the way the attention
    module does (``q_norm`` / ``k_norm`` where the architecture has them, as Qwen3 does), then applies
    the layer's ``position_embeddings``. Float32 results.
    """
    captured: list[tuple[torch.Tensor, torch.Tensor]] = []

    def rotated(states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = states.shape[-1] // 2
        turned = torch.cat([-states[..., half:], states[..., :half]], dim=-1)
        return (states * cos.unsqueeze(1) + turned * sin.unsqueeze(1))[0].float()

    def capture(module, args, kwargs):  # noqa: ANN001 - torch hook signature
        hidden = args[0] if args else kwargs["hidden_states"]
        cos, sin = kwargs["position_embeddings"]
        shape = (hidden.shape[0], hidden.shape[1], -1, module.head_dim)
        q = module.q_proj(hidden).view(shape)
        k = module.k_proj(hidden).view(shape)
        if hasattr(module, "q_norm"):
            q, k = module.q_norm(q), module.k_norm(k)
        captured.append((rotated(q.transpose(1, 2), cos, sin), rotated(k.transpose(1, 2), cos, sin)))

    hooks = [layer.self_attn.register_forward_pre_hook(capture, with_kwargs=True) for layer in language_model.layers]
    try:
        with torch.inference_mode():
            run()
    finally:
        for hook in hooks:
            hook.remove()
    return captured


class LinearStreamLM:
    """Common body of 1-D position families; subclasses set the attributes below and the prompt pieces.

    Subclasses set ``model``, ``tokenizer``, ``language_model`` (the decoder without head),
    ``lm_head``, ``embed_tokens``, ``stop_token_ids``, ``_span_memo = SpanMemo()`` and implement ``header_text``,
    ``question_text`` and ``encode``; ``question_lead`` may return embeddings that precede the
    question text (LLaVA-OneVision's ``image_newline``).
    """

    tokenizer: PreTrainedTokenizerBase
    language_model: torch.nn.Module
    lm_head: torch.nn.Module
    embed_tokens: torch.nn.Module
    stop_token_ids: set[int]
    _span_memo: SpanMemo

    # ----------------------------------------------------------------------------- prompt pieces
    def header_text(self, system_prompt: str) -> str:
        raise NotImplementedError

    def question_text(self, question: str) -> str:
        raise NotImplementedError

    def question_lead(self) -> torch.Tensor | None:
        """Embeddings ``(k, hidden)`` placed before the question's text tokens (default: none)."""
        return None

    # ----------------------------------------------------------------------------------- helpers
    @property
    def device(self) -> torch.device:
        return self.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed_tokens.weight.dtype

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _embed_ids(self, ids: Sequence[int]) -> torch.Tensor:
        """``(len(ids), hidden)`` input embeddings."""
        return self.embed_tokens(torch.tensor(list(ids), dtype=torch.long, device=self.device))

    def chunk_embeds(self, chunk: VisualChunk) -> torch.Tensor:
        """``(chunk.n_tokens, hidden)``: prefix text, the written visual tokens, suffix text."""
        embeds = chunk.embeds.to(self.device, self.dtype)
        keep = kept_rows(chunk)
        if keep is not None:
            embeds = embeds.index_select(0, keep.to(embeds.device))
        if not isinstance(chunk, FramedChunk) or not (chunk.prefix_ids or chunk.suffix_ids):
            return embeds
        parts = [self._embed_ids(chunk.prefix_ids)] if chunk.prefix_ids else []
        parts.append(embeds)
        if chunk.suffix_ids:
            parts.append(self._embed_ids(chunk.suffix_ids))
        return torch.cat(parts)

    def chunk_positions(self, chunk: VisualChunk, cursor: LinearCursor) -> torch.Tensor:
        """Positions ``(1, chunk.n_tokens)`` of the written tokens; sets ``chunk.position``, advances ``cursor``.

        The chunk occupies ``span`` consecutive positions (every grid token counted); dropped tokens
        leave their positions unused, so survivors keep their original positions.
        """
        prefix = len(chunk.prefix_ids) if isinstance(chunk, FramedChunk) else 0
        suffix = len(chunk.suffix_ids) if isinstance(chunk, FramedChunk) else 0
        grid = int(chunk.embeds.shape[0])
        chunk.position = cursor.next_position
        positions = cursor.take(prefix + grid + suffix)
        keep = kept_rows(chunk)
        if keep is not None:
            end = prefix + grid
            rows = torch.cat([torch.arange(prefix), prefix + keep.cpu(), torch.arange(end, end + suffix)])
            positions = positions[:, rows]
        self._span_memo.record(chunk.n_tokens, prefix + grid + suffix)
        return positions

    def _question_embeds(self, question: str) -> torch.Tensor:
        embeds = self._embed_ids(self._ids(self.question_text(question)))
        lead = self.question_lead()
        return embeds if lead is None else torch.cat([lead.to(self.device, self.dtype), embeds])

    def _forward(
        self, embeds: torch.Tensor, cache: StreamingCache, cursor: LinearCursor, logits: bool = True
    ) -> torch.Tensor | None:
        """Run ``(L, hidden)`` embeddings at the cursor; returns the last token's ``(vocab,)`` logits."""
        return self._forward_at(embeds, cursor.take(int(embeds.shape[0])), cache, logits)

    def _forward_at(
        self, embeds: torch.Tensor, positions: torch.Tensor, cache: StreamingCache, logits: bool = True
    ) -> torch.Tensor | None:
        """Run ``(L, hidden)`` embeddings at ``positions`` ``(1, L)``."""
        out = self.language_model(
            inputs_embeds=embeds.unsqueeze(0), position_ids=positions.to(self.device), past_key_values=cache,
            use_cache=True,
        )
        if not logits:
            return None
        return self.lm_head(out.last_hidden_state[0, -1]).float()

    # ---------------------------------------------------------------------------- protocol verbs
    def new_stream_state(self) -> LinearCursor:
        return LinearCursor()

    @torch.inference_mode()
    def start(self, cache: StreamingCache, state: LinearCursor, system_prompt: str) -> int:
        ids = self._ids(self.header_text(system_prompt))
        self._forward(self._embed_ids(ids), cache, state, logits=False)
        return len(ids)

    @torch.inference_mode()
    def prefill(self, chunks: Sequence[VisualChunk], cache: StreamingCache, state: LinearCursor) -> None:
        """Append all chunks (framing text included) in one forward call at consecutive positions."""
        if not chunks:
            return
        positions = torch.cat([self.chunk_positions(c, state) for c in chunks], dim=1)
        self._forward_at(torch.cat([self.chunk_embeds(c) for c in chunks]), positions, cache, logits=False)

    def proxy_queries(self, cache: StreamingCache, state: LinearCursor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer rotated ``(queries (H_q, P, D), keys (H_kv, P, D))`` of the proxy tokens.

        The proxy is what follows every question in the chat template (for LLaVA-OneVision also the
        video's closing ``image_newline``), written at the stream's current position; the cache and
        ``state`` are left exactly as they were.
        """
        checkpoint = cache.checkpoint()
        try:
            return capture_rotated_qk(
                self.language_model, lambda: self._forward(self._question_embeds(""), cache, state.copy(), False)
            )
        finally:
            cache.rollback(checkpoint)

    # ------------------------------------------------------------------------------ re-indexing
    def next_position(self, state: LinearCursor) -> int:
        return state.next_position

    def rotate_keys(self, keys: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Keys ``(H, N, D)`` moved ``delta`` ``(H, N)`` positions along the 1-D axis."""
        return rotate_keys_1d(keys, delta, self.language_model.rotary_emb.inv_freq)

    def min_position_gap(self, n_tokens: int) -> int:
        """Positions a chunk that wrote ``n_tokens`` tokens occupies (its span, framing included)."""
        return self._span_memo.gap(n_tokens)

    def shift_stream(self, state: LinearCursor, delta: int) -> None:
        state.next_position += delta

    def count_question_tokens(self, question: str) -> int:
        lead = self.question_lead()
        return (0 if lead is None else int(lead.shape[0])) + len(self._ids(self.question_text(question)))

    def answer(
        self, question: str, cache: StreamingCache, state: LinearCursor, sampling: SamplingParams
    ) -> Iterator[TextPiece]:
        """Append the question turn and stream the answer (the caller rolls the cache back)."""
        with torch.inference_mode():
            logits = self._forward(self._question_embeds(question), cache, state)

        def step(token: int) -> torch.Tensor:
            with torch.inference_mode():
                return self._forward(self._embed_ids([token]), cache, state)

        def decode(ids: list[int]) -> str:
            return self.tokenizer.decode(ids, skip_special_tokens=True)

        yield from decode_loop(logits, step, decode, self.stop_token_ids, sampling)


def load_checkpoint(
    path: str,
    model_classes: dict[str, type],
    *,
    device: str | torch.device,
    dtype: torch.dtype,
    attn_implementation: str,
    local_files_only: bool,
) -> tuple[torch.nn.Module, object]:
    """Load ``(model, processor)`` from a hub id or folder whose ``model_type`` is a key of ``model_classes``.

    Raises:
        ValueError: the checkpoint is of another family (the message names both).
    """
    from transformers import AutoConfig, AutoProcessor

    config = AutoConfig.from_pretrained(path, local_files_only=local_files_only)
    if config.model_type not in model_classes:
        raise ValueError(f"{path} is a {config.model_type} checkpoint, not {' or '.join(model_classes)}")
    model = model_classes[config.model_type].from_pretrained(
        path, dtype=dtype, attn_implementation=attn_implementation, local_files_only=local_files_only
    )
    model.to(device).eval()
    processor = AutoProcessor.from_pretrained(path, local_files_only=local_files_only)
    return model, processor
