"""A faiss inner-product index over runs of consecutive frame blocks, with a recency-bias correction.

Vectors are L2-normalised, so inner products are cosines. Blocks arrive in time order; block ``i``
(in arrival order) belongs to run ``i // run_blocks``. A run's vector is the mean of its members'
vectors, so its score is the mean of their scores (temporal chunking: a run of ``b`` frames is scored
as a whole and retrieved as a whole). Closed runs live in a faiss ``IndexFlatIP`` (``GpuIndexFlatIP``
when faiss was built with GPU support and CUDA is present: that path cannot be tested on this
machine); the open run (the newest, not yet full) is scored directly.

Recency-bias correction: similarity to a query drifts with time (later frames score higher, as
MemStream reported), so each run's score is reduced by the query's similarity to the mean vector of
its time bucket (``bucket_runs`` consecutive runs): ``score - q · mean(bucket)``. This removes slow
trends while keeping a short distinctive segment on top. The correction re-ranks the
``candidate_pool`` best raw candidates (exact when the index holds no more runs than that).
"""

from __future__ import annotations

import logging

import faiss
import numpy as np
import torch

logger = logging.getLogger(__name__)


def normalized(vector: torch.Tensor | np.ndarray) -> np.ndarray:
    """``vector`` as a float32 numpy array of unit L2 norm (zero vectors stay zero)."""
    array = vector.detach().float().cpu().numpy() if isinstance(vector, torch.Tensor) else np.asarray(vector)
    array = array.astype(np.float32).reshape(-1)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else array


def new_flat_index(dim: int) -> faiss.Index:
    """An exact inner-product index: on the GPU when faiss-gpu and CUDA are available, else on the CPU."""
    if hasattr(faiss, "StandardGpuResources") and torch.cuda.is_available():
        return faiss.GpuIndexFlatIP(faiss.StandardGpuResources(), dim)
    return faiss.IndexFlatIP(dim)


class RunIndex:
    """Top-k search over runs of ``run_blocks`` consecutive blocks.

    Args:
        dim: vector size.
        run_blocks: blocks per scored run (temporal chunking; 1 scores blocks one by one).
        recency_correction: subtract each time bucket's mean similarity (see the module docstring).
        bucket_runs: runs per time bucket of the correction.
        candidate_pool: raw candidates re-ranked by the correction.
    """

    def __init__(
        self,
        dim: int,
        run_blocks: int = 1,
        recency_correction: bool = True,
        bucket_runs: int = 256,
        candidate_pool: int = 1024,
    ) -> None:
        if run_blocks < 1 or bucket_runs < 1 or candidate_pool < 1:
            raise ValueError("run_blocks, bucket_runs and candidate_pool must be >= 1")
        self.dim = dim
        self.run_blocks = run_blocks
        self.recency_correction = recency_correction
        self.bucket_runs = bucket_runs
        self.candidate_pool = candidate_pool
        self._order: dict[int, int] = {}  # block id -> arrival order
        self._vectors: dict[int, np.ndarray] = {}  # block id -> unit vector
        self._runs: dict[int, list[int]] = {}  # run number -> member block ids, time order
        self._bucket_sum: dict[int, np.ndarray] = {}  # bucket -> sum of member block vectors
        self._bucket_count: dict[int, int] = {}
        self._arrivals = 0
        self._index = new_flat_index(dim)
        self._rows: list[int] = []  # faiss row -> run number
        self._dirty = False  # a removal happened: rebuild faiss before the next search

    def __len__(self) -> int:
        return len(self._vectors)

    # ---------------------------------------------------------------------------------- updates
    def add(self, block_id: int, vector: torch.Tensor | np.ndarray) -> None:
        """Add the next block in time order (``vector`` is normalised here)."""
        if block_id in self._order:
            raise ValueError(f"block {block_id} is already indexed")
        unit = normalized(vector)
        if unit.shape[0] != self.dim:
            raise ValueError(f"vector has {unit.shape[0]} dimensions, the index {self.dim}")
        order = self._arrivals
        self._arrivals += 1
        run = order // self.run_blocks
        self._order[block_id] = order
        self._vectors[block_id] = unit
        self._runs.setdefault(run, []).append(block_id)
        bucket = run // self.bucket_runs
        self._bucket_sum[bucket] = self._bucket_sum.get(bucket, np.zeros(self.dim, np.float32)) + unit
        self._bucket_count[bucket] = self._bucket_count.get(bucket, 0) + 1
        if (order + 1) % self.run_blocks == 0 and not self._dirty:  # the run just closed
            self._index.add(self._run_vector(run)[None])
            self._rows.append(run)

    def remove(self, block_ids: list[int]) -> None:
        """Forget blocks (dropped from the archive or damaged)."""
        for block_id in block_ids:
            if block_id not in self._order:
                continue
            order = self._order.pop(block_id)
            unit = self._vectors.pop(block_id)
            run = order // self.run_blocks
            members = self._runs[run]
            members.remove(block_id)
            if not members:
                del self._runs[run]
            bucket = run // self.bucket_runs
            self._bucket_sum[bucket] -= unit
            self._bucket_count[bucket] -= 1
            if not self._bucket_count[bucket]:
                del self._bucket_sum[bucket], self._bucket_count[bucket]
            self._dirty = True

    def _run_vector(self, run: int) -> np.ndarray:
        return np.mean([self._vectors[b] for b in self._runs[run]], axis=0).astype(np.float32)

    def _open_run(self) -> int:
        """The run the next block joins (not in faiss yet unless it is empty)."""
        return self._arrivals // self.run_blocks

    def _rebuild(self) -> None:
        self._index.reset()
        open_run = self._open_run()
        self._rows = sorted(run for run in self._runs if run < open_run)
        if self._rows:
            self._index.add(np.stack([self._run_vector(run) for run in self._rows]))
        self._dirty = False

    # ----------------------------------------------------------------------------------- search
    def search(self, query: torch.Tensor | np.ndarray, k: int, exclude: set[int] | None = None) -> list[int]:
        """Ids of the ``k`` best blocks (whole runs, best runs first, members not in ``exclude``), in time order."""
        if k < 1 or not self._vectors:
            return []
        if self._dirty:
            self._rebuild()
        q = normalized(query)
        if q.shape[0] != self.dim:
            raise ValueError(f"query has {q.shape[0]} dimensions, the index {self.dim}")
        exclude = exclude or set()
        candidates: dict[int, float] = {}
        if self._index.ntotal:
            pool = min(self._index.ntotal, self.candidate_pool)
            scores, rows = self._index.search(q[None], pool)
            for score, row in zip(scores[0], rows[0]):
                if row >= 0:
                    candidates[self._rows[row]] = float(score)
        open_run = self._open_run()
        if open_run in self._runs:
            candidates[open_run] = float(self._run_vector(open_run) @ q)
        if self.recency_correction:
            baseline = {b: float(s @ q) / self._bucket_count[b] for b, s in self._bucket_sum.items()}
            candidates = {run: s - baseline[run // self.bucket_runs] for run, s in candidates.items()}
        chosen: list[int] = []
        for run in sorted(candidates, key=candidates.get, reverse=True):
            chosen += [b for b in self._runs[run] if b not in exclude]
            if len(chosen) >= k:
                break
        return sorted(chosen[:k], key=self._order.__getitem__)
