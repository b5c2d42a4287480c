"""Benchmark converters, by the names users type (``streamvqa eval convert BENCH SRC``).

Each module has ``convert(src: Path, video_root: str | None) -> ConversionResult``; ``src`` is an
annotation file or a folder of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from eval.converters import (
    activitynetqa,
    egoschema,
    longvideobench,
    mlvu,
    nextqa,
    ovobench,
    rtvbench,
    rvs,
    streamingbench,
    videomme,
)
from eval.converters.base import ConversionResult, Reject
from pipeline.errors import UserInputError

Converter = Callable[[Path, "str | None"], ConversionResult]

CONVERTERS: dict[str, Converter] = {
    "mlvu": mlvu.convert,
    "videomme": videomme.convert,
    "egoschema": egoschema.convert,
    "longvideobench": longvideobench.convert,
    "nextqa": nextqa.convert,
    "activitynetqa": activitynetqa.convert,
    "ovobench": ovobench.convert,
    "streamingbench": streamingbench.convert,
    "rtvbench": rtvbench.convert,
    "rvs": rvs.convert,
}


def convert(benchmark: str, src: str | Path, video_root: str | None = None) -> ConversionResult:
    """Convert ``src`` (file or folder) of ``benchmark``; unknown names list the valid ones."""
    name = benchmark.lower().replace("-", "").replace("_", "")
    if name not in CONVERTERS:
        raise UserInputError(f"unknown benchmark {benchmark!r}; valid benchmarks: {', '.join(CONVERTERS)}")
    return CONVERTERS[name](Path(src), video_root)


__all__ = ["CONVERTERS", "ConversionResult", "Reject", "convert"]
