"""The faiss run index (temporal chunking, exclusion, removal, recency correction) and the internal vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memory.retrieval.embeddings import block_key_vector, question_query_vector
from memory.retrieval.vector_index import RunIndex


def unit(cos: float, rng: np.random.Generator, dim: int = 8) -> np.ndarray:
    """A unit vector with cosine ``cos`` to e0 and a random direction in the other axes."""
    other = rng.normal(size=dim - 1)
    other /= np.linalg.norm(other)
    return np.concatenate([[cos], np.sqrt(1 - cos**2) * other]).astype(np.float32)


def test_runs_are_retrieved_whole_in_time_order() -> None:
    rng = np.random.default_rng(0)
    index = RunIndex(8, run_blocks=3, recency_correction=False)
    for block_id in range(30):
        index.add(100 + block_id, unit(0.95 if block_id in (13, 14) else 0.1, rng))
    query = np.eye(8, dtype=np.float32)[0]
    assert index.search(query, 3) == [112, 113, 114]  # run 4 = blocks 12..14 scores best
    assert index.search(query, 2, exclude={112}) == [113, 114]
    index.remove([113, 114])
    assert 112 not in index.search(query, 3) or index.search(query, 3)[:1] == [112]
    assert len(index) == 28


def test_open_run_is_searchable_before_it_closes() -> None:
    rng = np.random.default_rng(1)
    index = RunIndex(8, run_blocks=4, recency_correction=False)
    for block_id in range(9):  # block 8 opens run 2, not in faiss yet
        index.add(block_id, unit(0.99 if block_id == 8 else 0.0, rng))
    assert index.search(np.eye(8, dtype=np.float32)[0], 1) == [8]


def test_recency_correction_finds_an_early_needle_under_upward_drift() -> None:
    rng = np.random.default_rng(2)
    n = 1000
    plain = RunIndex(8, recency_correction=False)
    corrected = RunIndex(8, recency_correction=True, bucket_runs=50)
    for block_id in range(n):
        cos = 0.6 if block_id == 100 else 0.2 + 0.7 * block_id / n  # later frames drift towards the query
        vector = unit(cos, rng)
        plain.add(block_id, vector)
        corrected.add(block_id, vector)
    query = np.eye(8, dtype=np.float32)[0]
    assert plain.search(query, 1)[0] > 900
    assert corrected.search(query, 1) == [100]


def test_bad_vectors_are_rejected() -> None:
    index = RunIndex(8)
    index.add(0, np.ones(8))
    with pytest.raises(ValueError, match="already indexed"):
        index.add(0, np.ones(8))
    with pytest.raises(ValueError, match="dimensions"):
        index.add(1, np.ones(4))


@pytest.mark.parametrize("per_layer", [False, True])
def test_internal_vectors_do_not_depend_on_when_the_block_was_seen(tiny_models, per_layer: bool) -> None:
    model = tiny_models["qwen2_5_vl"]
    keys = torch.randn(model.num_layers, 2, 6, 16)
    at_40 = torch.stack([model.rotate_keys(k, torch.full((2, 6), 40)) for k in keys])
    at_0 = block_key_vector(keys, 0, model.rotate_keys, per_layer)
    assert torch.allclose(block_key_vector(at_40, 40, model.rotate_keys, per_layer), at_0, atol=1e-5)
    assert at_0.numel() == (model.num_layers if per_layer else 1) * 2 * 16
    assert torch.allclose(at_0.norm(), torch.tensor(1.0), atol=1e-5)


def test_per_layer_query_scores_are_the_mean_of_layer_cosines(tiny_models) -> None:
    model = tiny_models["qwen2_vl"]
    keys = torch.randn(model.num_layers, 2, 6, 16)
    queries = [torch.randn(4, 3, 16) for _ in range(model.num_layers)]  # 4 query heads over 2 KV heads
    key_vector = block_key_vector(keys, 0, model.rotate_keys, per_layer=True)
    query_vector = question_query_vector(queries, 0, 2, model.rotate_keys, per_layer=True)
    cosines = []
    for layer in range(model.num_layers):
        k = keys[layer].mean(dim=1).reshape(-1)
        plain = model.rotate_keys(queries[layer], -torch.arange(3).expand(4, -1))  # token p sat at position p
        q = plain.reshape(2, 2, 3, 16).mean(dim=(1, 2)).reshape(-1)
        cosines.append(torch.nn.functional.cosine_similarity(k, q, dim=0))
    assert torch.allclose(key_vector @ query_vector, torch.stack(cosines).mean(), atol=1e-5)
