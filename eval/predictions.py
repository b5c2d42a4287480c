"""Prediction files of a run: one JSON line per answered question, appended and flushed as it goes.

A run folder holds ``predictions*.jsonl`` files (one per process: ``predictions.jsonl`` for a local
run, ``predictions.shard-2-of-8.jsonl`` for ``--shard 2/8``, ``predictions.ray-w0.jsonl`` per Ray
worker until they are merged). :func:`load_predictions` reads them all and keeps one line per
``qid``: a line without error beats one with an error, otherwise the later line wins. A line cut
short by a kill is skipped on read and cut off before the next append.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

logger = logging.getLogger(__name__)

PATTERN = "predictions*.jsonl"
MERGED = "predictions.jsonl"


class PredictionWriter:
    """Appends prediction lines to ``path``; each line is flushed (and fsynced) before returning."""

    def __init__(self, path: str | Path, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _cut_partial_line(self.path)
        self._handle: TextIO | None = self.path.open("a", encoding="utf-8")
        self._fsync = fsync

    def write(self, line: dict[str, Any]) -> None:
        if self._handle is None:
            raise ValueError(f"prediction file {self.path} is closed")
        self._handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._handle.flush()
        if self._fsync:
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _cut_partial_line(path: Path) -> None:
    """Remove a trailing line without newline (a write interrupted by a kill)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        data = handle.read()
        keep = data.rfind(b"\n") + 1
        handle.truncate(keep)
        logger.warning("%s: cut an incomplete last line (%d bytes) left by an interrupted run", path, len(data) - keep)


def read_prediction_file(path: Path) -> list[dict[str, Any]]:
    lines = []
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                logger.warning("%s:%d: skipping an unreadable prediction line", path, number)
                continue
            if isinstance(line, dict) and isinstance(line.get("qid"), str):
                lines.append(line)
    return lines


def prediction_files(run_dir: str | Path) -> list[Path]:
    """The run's prediction files, the merged one first (so shard lines, written later, win ties)."""
    files = sorted(Path(run_dir).glob(PATTERN))
    return sorted(files, key=lambda p: p.name != MERGED)


def load_predictions(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``qid -> prediction line`` over every prediction file of ``run_dir``."""
    best: dict[str, dict[str, Any]] = {}
    for path in prediction_files(run_dir):
        for line in read_prediction_file(path):
            old = best.get(line["qid"])
            if old is None or not line.get("error") or old.get("error"):
                best[line["qid"]] = line
    return best


def merge_files(run_dir: str | Path, parts: Iterable[Path]) -> Path:
    """Fold ``parts`` into ``predictions.jsonl`` (deduplicated by qid) and delete them."""
    run_dir = Path(run_dir)
    parts = [p for p in parts if p.name != MERGED and p.exists()]
    merged = load_predictions(run_dir)
    target = run_dir / MERGED
    temporary = run_dir / (MERGED + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for line in merged.values():
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(target)
    for part in parts:
        part.unlink()
    return target
