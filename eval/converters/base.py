"""What every converter shares: the result record, rejection bookkeeping, and small parsing helpers.

A converter turns a benchmark's published annotation file(s) into :class:`~eval.manifest.ManifestRecord`
s. Every source record (a question, or a probe of a streaming question) either becomes a manifest
line or is rejected with a short, stable reason; :class:`ConversionResult` counts both, so that
``converted + rejected == seen`` always holds and the counts can be printed.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.manifest import LETTERS, ManifestRecord, validate
from pipeline.errors import UserInputError


class Reject(Exception):
    """Raised inside a converter to reject one record with a reason (a short, stable phrase)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass
class ConversionResult:
    """Converted records plus counts by reason; ``seen == converted + rejected``.

    Attributes:
        records: the manifest records, in source order.
        rejected: reason -> count.
        examples: reason -> a few ``source: detail`` strings, to show the user.
        repaired: repair -> count (records converted after fixing a known defect of the source).
        sources: the files read.
    """

    benchmark: str
    records: list[ManifestRecord] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    repaired: Counter[str] = field(default_factory=Counter)
    sources: list[str] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return len(self.records) + sum(self.rejected.values())

    def reject(self, reason: str, where: str, detail: str = "") -> None:
        self.rejected[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < 3:
            examples.append(f"{where}: {detail}" if detail else where)

    def add(self, record: ManifestRecord, where: str) -> None:
        """Validate and keep ``record``; a record that fails validation is rejected, not raised."""
        try:
            validate(record)
        except ValueError as error:
            self.reject("invalid after conversion", where, str(error))
            return
        self.records.append(record)

    def attempt(self, where: str, build: Callable[[], ManifestRecord | list[ManifestRecord]]) -> None:
        """Run ``build``; add what it returns, or count its :class:`Reject`."""
        try:
            built = build()
        except Reject as rejection:
            self.reject(rejection.reason, where, rejection.detail)
            return
        for record in built if isinstance(built, list) else [built]:
            self.add(record, where)

    def merge(self, other: ConversionResult) -> None:
        self.records += other.records
        self.rejected.update(other.rejected)
        self.repaired.update(other.repaired)
        self.sources += other.sources
        for reason, examples in other.examples.items():
            self.examples.setdefault(reason, []).extend(examples[: 3 - len(self.examples.get(reason, []))])

    def summary_lines(self) -> list[str]:
        """Human-readable counts (what ``streamvqa eval convert`` prints)."""
        lines = [f"{self.benchmark}: {self.seen} source question(s): {len(self.records)} converted, "
                 f"{sum(self.rejected.values())} rejected"]
        for reason, count in self.rejected.most_common():
            lines.append(f"  rejected {count:6d}  {reason}  (e.g. {self.examples[reason][0]})")
        for repair, count in self.repaired.most_common():
            lines.append(f"  repaired {count:6d}  {repair}")
        return lines


def load_json(path: Path) -> Any:
    """A JSON file, or :class:`UserInputError` naming the file and the problem."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"annotation file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise UserInputError(f"{path} is not valid JSON (line {error.lineno}): {error.msg}") from None


def load_rows(path: Path) -> list[Any]:
    """Records of a ``.json`` (list, or dict of records), ``.jsonl`` or ``.csv`` file; ``.parquet`` needs pandas."""
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise UserInputError(f"{path}:{number} is not valid JSON: {error.msg}") from None
        return rows
    if path.suffix == ".csv":
        import csv

        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    if path.suffix == ".parquet":
        try:
            import pandas as pd
        except ImportError:
            raise UserInputError(f"reading {path} needs pandas and pyarrow: pip install pandas pyarrow") from None
        return pd.read_parquet(path).to_dict(orient="records")
    data = load_json(path)
    if isinstance(data, dict):
        return [dict(value, _key=key) if isinstance(value, dict) else value for key, value in data.items()]
    if not isinstance(data, list):
        raise UserInputError(f"{path} must hold a JSON list (or object) of records, got {type(data).__name__}")
    return data


def source_files(src: Path, patterns: tuple[str, ...]) -> list[Path]:
    """``src`` itself if it is a file, else the files in it matching ``patterns`` (sorted)."""
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise UserInputError(f"annotation source not found: {src}")
    found = sorted({p for pattern in patterns for p in src.glob(pattern) if p.is_file()})
    if not found:
        raise UserInputError(f"no annotation files matching {', '.join(patterns)} in {src}")
    return found


def video_path(relative: str, video_root: str | None, *parts: str) -> str:
    """Where the video lives: ``video_root/parts.../relative`` (relative to the working folder without a root)."""
    relative = relative.removeprefix("./")
    return os.path.normpath(os.path.join(video_root or "", *parts, relative))


def option_letter(index: int, n_options: int) -> str:
    if not 0 <= index < n_options:
        raise Reject("answer index out of range", f"index {index} with {n_options} options")
    return LETTERS[index]


def require_text(value: Any, what: str) -> str:
    """``value`` as a stripped string, or reject the record as missing ``what``."""
    if not isinstance(value, str) or not value.strip():
        raise Reject(f"empty {what}", repr(value)[:80])
    return value.strip()


_HMS = re.compile(r"^\d{1,2}(:\d{1,2}){0,2}$")


def parse_hms(text: Any) -> float:
    """``"HH:MM:SS"``, ``"MM:SS"`` or ``"SS"`` -> seconds; fields after the first must be < 60."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str) or not _HMS.match(text.strip()):
        raise Reject("malformed time stamp", repr(text))
    fields = [int(x) for x in text.strip().split(":")]
    if any(f >= 60 for f in fields[1:]):
        raise Reject("malformed time stamp", repr(text))
    seconds = 0
    for value in fields:
        seconds = seconds * 60 + value
    return float(seconds)


_PREFIX = re.compile(r"^\s*([A-Z])\s*[.)]\s*")


def strip_letter_prefixes(options: list[str]) -> tuple[list[str], bool]:
    """Remove ``"A. "`` / ``"A."`` / ``"(A) "`` style prefixes when every option has its own letter in order."""
    letters = [m.group(1) if (m := _PREFIX.match(o)) else None for o in options]
    if letters == list(LETTERS[: len(options)]):
        return [_PREFIX.sub("", o, count=1).strip() for o in options], True
    return [o.strip() for o in options], False


def iter_indexed(rows: list[Any]) -> Iterator[tuple[int, Any]]:
    yield from enumerate(rows)
