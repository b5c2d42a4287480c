"""95% bootstrap confidence intervals that resample whole videos (clusters), not questions.

Questions about one video are correlated (same content, same memory state); resampling them
independently gives intervals that are too narrow. Each replicate draws as many videos as there are,
with replacement, and recomputes the statistic on all their questions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def cluster_bootstrap(
    items: Sequence[T],
    statistic: Callable[[list[T]], float],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    cluster: Callable[[T], Any] = lambda item: item.cluster,  # type: ignore[attr-defined]
) -> tuple[float, float]:
    """Percentile interval ``(low, high)`` of ``statistic`` over cluster-resampled replicates.

    With no items, or ``n_boot == 0``, returns the point estimate twice (NaN when empty).
    """
    if not items:
        return float("nan"), float("nan")
    point = float(statistic(list(items)))
    if n_boot <= 0:
        return point, point
    groups: dict[Any, list[T]] = defaultdict(list)
    for item in items:
        groups[cluster(item)].append(item)
    members = list(groups.values())
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):
        picks = rng.integers(0, len(members), size=len(members))
        sample = [item for index in picks for item in members[index]]
        values[b] = statistic(sample)
    alpha = (1.0 - level) / 2
    low, high = np.nanquantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)
