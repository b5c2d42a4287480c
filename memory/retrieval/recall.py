"""The archive as a session sees it: blocks go in as they leave the short-term window, and answers
pull the relevant ones back.

* ``note_chunk`` keeps each chunk's pooled visual embedding until the chunk leaves the window;
* ``on_evict`` (the memory bank's hook) archives the block with its retrieval vectors and indexes it;
* ``attach`` (inside an answer, after its checkpoint) picks the query (the question's own query
  states for the internal retriever, the attached image for the visual one), searches, loads the
  blocks and appends them re-rotated to contiguous positions (``placement.py``).

An answer attends to sinks + retrieved blocks + resident long-term + short-term window + question.
No token is attended twice: only blocks with no token resident on the device are retrieved (blocks
partly kept by the long-term policy stay in their compressed form).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import torch

from memory.archive import Archive, ArchivedBlock
from memory.bank import MemoryBank
from memory.evicted import EvictedFrame
from memory.retrieval.embeddings import block_key_vector, pooled_embedding, question_query_vector
from memory.retrieval.placement import append_blocks, contiguous_targets
from memory.retrieval.vector_index import RunIndex
from memory.streaming_cache import StreamingCache
from models.protocol import SamplingParams
from models.stream_base import capture_rotated_qk

logger = logging.getLogger(__name__)

RETRIEVERS = ("auto", "internal", "visual")


@dataclass
class RetrievalSettings:
    """How answers search the archive.

    Attributes:
        retriever: ``auto`` (an image question uses the visual index, a text question the internal
            one), ``internal`` (always the model's keys), ``visual`` (only image questions retrieve).
        top_k: frame blocks retrieved per answer.
        run_blocks: consecutive blocks scored and retrieved together (temporal chunking, b).
        per_layer: internal vectors per layer (concatenated) instead of one shared vector.
        recency_correction: subtract each time bucket's mean similarity.
    """

    retriever: str = "auto"
    top_k: int = 8
    run_blocks: int = 1
    per_layer: bool = False
    recency_correction: bool = True

    def __post_init__(self) -> None:
        if self.retriever not in RETRIEVERS:
            raise ValueError(f"retriever {self.retriever!r} is not one of {', '.join(RETRIEVERS)}")
        if self.top_k < 0 or self.run_blocks < 1:
            raise ValueError(f"top_k must be >= 0 and run_blocks >= 1, got {self.top_k}, {self.run_blocks}")


class ArchiveRecall:
    """Archive + retrieval indexes of one stream.

    Args:
        archive: where blocks go.
        model: the stream's ``VideoLM`` (for ``rotate_keys``, ``encode``, ``answer``).
        settings: retrieval settings.
    """

    def __init__(self, archive: Archive, model: Any, settings: RetrievalSettings) -> None:
        self.archive = archive
        self.model = model
        self.settings = settings
        self.indexes: dict[str, RunIndex] = {}
        self._pending_visual: dict[int, torch.Tensor] = {}
        for kind in ("visual", "internal"):  # a reopened archive: index what its folder holds
            for block_id, vector in archive.vectors(kind):
                self._index(kind, vector.numel()).add(block_id, vector)

    def _index(self, kind: str, dim: int) -> RunIndex:
        if kind not in self.indexes:
            s = self.settings
            self.indexes[kind] = RunIndex(dim, s.run_blocks, s.recency_correction)
        return self.indexes[kind]

    # ---------------------------------------------------------------------------------- ingest
    def note_chunk(self, chunk_index: int, embeds: torch.Tensor) -> None:
        """Remember chunk ``chunk_index``'s pooled visual embedding (``embeds``: ``(n_tokens, hidden)``)."""
        self._pending_visual[chunk_index] = pooled_embedding(embeds)

    def on_evict(self, frame: EvictedFrame) -> None:
        """Archive and index a block that left the short-term window (the bank's ``on_evict`` hook)."""
        vectors = {"internal": block_key_vector(frame.keys, frame.position, self.model.rotate_keys,
                                                self.settings.per_layer)}
        visual = self._pending_visual.pop(frame.chunk_index, None)
        if visual is not None:
            vectors["visual"] = visual
        for kind, vector in vectors.items():
            self._index(kind, vector.numel()).add(frame.chunk_index, vector)
        block = ArchivedBlock(frame.chunk_index, frame.timestamps, frame.position, frame.logical, frame.keys,
                              frame.values, vectors)
        self._forget(self.archive.add(block))

    def _forget(self, block_ids: list[int]) -> None:
        if block_ids:
            for index in self.indexes.values():
                index.remove(block_ids)

    # ---------------------------------------------------------------------------------- queries
    def image_query(self, image: np.ndarray, frame_hw: tuple[int, int] | None) -> torch.Tensor:
        """Pooled visual embedding of ``image`` ``(H, W, 3)`` uint8, encoded like a chunk of the stream."""
        copies = [image] * self.model.frames_per_chunk
        chunk = self.model.encode(copies, [0.0] * len(copies), frame_hw)[0]
        return pooled_embedding(chunk.embeds)

    def question_query(self, question: str, cache: StreamingCache, cursor: Any) -> torch.Tensor:
        """The question's de-rotated query states (internal retriever); the cache is left as it was."""
        checkpoint = cache.checkpoint()
        first_position = self.model.next_position(cursor)
        sampling = SamplingParams(max_new_tokens=1)
        try:
            captured = capture_rotated_qk(
                self.model.language_model,
                lambda: list(islice(self.model.answer(question, cache, cursor.copy(), sampling), 1)),
            )
        finally:
            cache.rollback(checkpoint)
        queries = [q for q, _ in captured[: self.model.num_layers]]
        kv_heads = int(cache.layers[0].keys.shape[1])
        return question_query_vector(queries, first_position, kv_heads, self.model.rotate_keys, self.settings.per_layer)

    # ------------------------------------------------------------------------------- retrieval
    def search(self, kind: str, query: torch.Tensor, k: int, exclude: set[int] | None = None) -> list[int]:
        """Ids of the ``k`` best archived blocks for ``query`` in the ``kind`` index, in time order."""
        index = self.indexes.get(kind)
        return index.search(query, k, exclude) if index is not None else []

    def retrieve(self, kind: str, query: torch.Tensor, exclude: set[int]) -> list[ArchivedBlock]:
        """The top-k blocks, loaded; damaged or vanished blocks are skipped (and unindexed)."""
        blocks: list[ArchivedBlock] = []
        missing: list[int] = []
        for block_id in self.search(kind, query, self.settings.top_k, exclude):
            block = self.archive.get(block_id)
            if block is None:
                missing.append(block_id)
            else:
                blocks.append(block)
        self._forget(missing)
        return blocks

    def attach(
        self,
        question: str,
        image: np.ndarray | None,
        cache: StreamingCache,
        cursor: Any,
        bank: MemoryBank,
        frame_hw: tuple[int, int] | None,
    ) -> list[float]:
        """Retrieve for this answer and append the blocks to ``cache``; returns their frame timestamps.

        Call after the answer's checkpoint (the blocks are rolled back with the answer).
        """
        kind = self._kind(image)
        if kind is None or not self.settings.top_k or not len(self.archive):
            return []
        if kind == "visual":
            query = self.image_query(image, frame_hw)
        else:
            query = self.question_query(question, cache, cursor)
        resident = {span.block.chunk_index for span in bank.spans}
        blocks = self.retrieve(kind, query, resident)
        if not blocks:
            return []
        end = bank.spans[0].block.position if bank.spans else self.model.next_position(cursor)
        targets = contiguous_targets(blocks, int(end), self.model.min_position_gap)
        append_blocks(cache, blocks, targets, self.model.rotate_keys)
        return [t for block in blocks for t in block.timestamps]

    def _kind(self, image: np.ndarray | None) -> str | None:
        retriever = self.settings.retriever
        if retriever == "internal":
            return "internal"
        if image is not None:
            return "visual"
        if retriever == "visual":
            logger.info("retriever 'visual' needs a question image; this text question retrieves nothing")
            return None
        return "internal"

    def stats(self) -> dict[str, int]:
        return self.archive.stats().as_dict()

    # ------------------------------------------------------------------------------- persistence
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Every archived block (RAM and disk, read back and checked) and the chunks not archived yet.

        Tensors: ``b<id>.keys`` / ``.values`` ``(L, H, n, D)``, ``b<id>.logical`` ``(n,)``,
        ``b<id>.vector.<kind>`` ``(dim,)``, ``pending.<chunk>`` ``(hidden,)``. A saved session carries
        its archive, so it does not depend on the archive folder of the process that saved it.
        """
        tensors: dict[str, torch.Tensor] = {}
        blocks = []
        for block_id in list(self.archive.timestamps):  # time order; damaged blocks are skipped, counted
            block = self.archive.get(block_id)
            if block is None:
                continue
            tensors.update(block.tensors())
            blocks.append({"id": block.block_id, "timestamps": list(block.timestamps), "position": block.position,
                           "vectors": sorted(block.vectors)})
        for chunk, vector in self._pending_visual.items():
            tensors[f"pending.{chunk}"] = vector
        stats = self.archive.stats()
        meta = {"blocks": blocks, "pending": sorted(self._pending_visual), "archived_blocks": stats.archived_blocks,
                "dropped_blocks": stats.dropped_blocks, "damaged_blocks": stats.damaged_blocks,
                "lost_blocks": stats.lost_blocks}
        return tensors, meta

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Re-archive the saved blocks into this (fresh) archive, in time order, and index them."""
        if len(self.archive):
            raise ValueError("an archive can only be restored into an empty one")
        for entry in meta["blocks"]:
            prefix = f"b{entry['id']}"
            vectors = {kind: tensors[f"{prefix}.vector.{kind}"].float().cpu() for kind in entry["vectors"]}
            for kind, vector in vectors.items():
                self._index(kind, vector.numel()).add(int(entry["id"]), vector)
            block = ArchivedBlock(int(entry["id"]), tuple(float(t) for t in entry["timestamps"]), entry["position"],
                                  tensors[f"{prefix}.logical"].cpu(), tensors[f"{prefix}.keys"].cpu(),
                                  tensors[f"{prefix}.values"].cpu(), vectors)
            self._forget(self.archive.add(block))
        self._pending_visual = {int(chunk): tensors[f"pending.{chunk}"] for chunk in meta["pending"]}
        self.archive.restore_counters(meta)
