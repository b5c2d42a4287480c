"""The evaluation manifest: one JSON line per question (DESIGN.md, "Evaluation").

A line looks like::

    {"qid": "mlvu-1_plotQA-0", "benchmark": "mlvu", "split": "dev_mc", "task_type": "plotQA",
     "video": {"path": "/data/mlvu/video/1_plotQA/movie101_66.mp4", "id": "movie101_66", "duration": 246},
     "clip": {"start": null, "end": null}, "ask_time": null, "context_window": null,
     "session_id": "mlvu:movie101_66", "turn_idx": 0, "question": "What color is ...?",
     "options": ["Yellow", "Red", "Green", "Blue"], "answer": "A", "answer_text": "Yellow",
     "answer_type": "mc", "evidence": null, "meta": {}}

* ``ask_time``: stream time (s) at which the question is asked; null = after the whole clip.
* ``session_id``: questions sharing it run, in ask-time order, on one stream.
* ``context_window``: seconds of history before ``ask_time`` the benchmark's protocol shows the
  model (null = everything since the clip start); informative, the runner streams the whole clip.
* ``options`` are bare strings (no ``A.`` prefixes); ``answer`` is the option letter for ``mc``.
* ``evidence``: where the answer is in the video, e.g. ``{"start": 12.0, "end": 15.0}``.

:func:`load_manifest` validates every line; a malformed line is reported as ``FILE:LINE: problem``,
counted and skipped, never fatal (``strict=True`` raises instead).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import UserInputError

logger = logging.getLogger(__name__)

ANSWER_TYPES = ("mc", "open", "yesno", "count", "proactive")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class ManifestError(UserInputError):
    """A manifest line that cannot be used; the message starts with ``FILE:LINE:``."""


@dataclass
class Video:
    """Where the frames come from: ``path`` (file or URL), a stable ``id``, ``duration`` (s) if known."""

    path: str
    id: str
    duration: float | None = None


@dataclass
class Clip:
    """The part of the video streamed, in seconds (None: from the start / to the end)."""

    start: float | None = None
    end: float | None = None


@dataclass
class ManifestRecord:
    """One question of a benchmark, as the runner asks it and the scorers score it."""

    qid: str
    benchmark: str
    question: str
    video: Video
    split: str = ""
    task_type: str = ""
    clip: Clip = field(default_factory=Clip)
    ask_time: float | None = None
    context_window: float | None = None
    session_id: str = ""
    turn_idx: int = 0
    options: list[str] = field(default_factory=list)
    answer: str | None = None
    answer_text: str | None = None
    answer_type: str = "mc"
    evidence: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.session_id:
            self.session_id = f"{self.benchmark}:{self.video.id}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @property
    def answer_index(self) -> int | None:
        """0-based index of the correct option (``mc`` only)."""
        if self.answer_type != "mc" or not self.answer:
            return None
        return LETTERS.index(self.answer)

    @property
    def letters(self) -> str:
        """The option letters of this question (``"ABCD"`` for four options)."""
        return LETTERS[: len(self.options)]


FIELDS = tuple(f.name for f in dataclasses.fields(ManifestRecord))


def _number(value: Any, name: str, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number{' or null' if allow_none else ''}, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")
    return float(value)


def _string(value: Any, name: str, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def record_from_dict(data: Any) -> ManifestRecord:
    """Build and validate one record; raises ``ValueError`` naming the bad field and the fix."""
    if not isinstance(data, dict):
        raise ValueError(f"a manifest line must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}; valid fields: {', '.join(FIELDS)}")
    for name in ("qid", "benchmark", "question", "video"):
        if name not in data:
            raise ValueError(f"missing required field {name!r}")
    video = data["video"]
    if not isinstance(video, dict) or not isinstance(video.get("path"), str) or not video["path"].strip():
        raise ValueError('video must be an object with a non-empty "path"')
    extra = set(video) - {"path", "id", "duration"}
    if extra:
        raise ValueError(f"unknown video field(s) {sorted(extra)}; valid: path, id, duration")
    clip = data.get("clip") or {}
    if not isinstance(clip, dict) or set(clip) - {"start", "end"}:
        raise ValueError('clip must be an object with "start" and/or "end" (seconds or null)')
    record = ManifestRecord(
        qid=_string(data["qid"], "qid"),
        benchmark=_string(data["benchmark"], "benchmark"),
        question=_string(data["question"], "question"),
        video=Video(
            path=video["path"],
            id=str(video.get("id") or Path(video["path"]).stem),
            duration=_number(video.get("duration"), "video.duration"),
        ),
        split=_string(data.get("split", ""), "split", required=False),
        task_type=_string(data.get("task_type", ""), "task_type", required=False),
        clip=Clip(_number(clip.get("start"), "clip.start"), _number(clip.get("end"), "clip.end")),
        ask_time=_number(data.get("ask_time"), "ask_time"),
        context_window=_number(data.get("context_window"), "context_window"),
        session_id=_string(data.get("session_id") or "", "session_id", required=False),
        turn_idx=int(data.get("turn_idx") or 0),
        options=list(data.get("options") or []),
        answer=data.get("answer"),
        answer_text=data.get("answer_text"),
        answer_type=data.get("answer_type", "mc"),
        evidence=data.get("evidence"),
        meta=dict(data.get("meta") or {}),
    )
    validate(record)
    return record


def validate(record: ManifestRecord) -> None:
    """Cross-field checks; raises ``ValueError`` with the fix."""
    if record.answer_type not in ANSWER_TYPES:
        raise ValueError(f"answer_type {record.answer_type!r} is not one of {', '.join(ANSWER_TYPES)}")
    if not all(isinstance(o, str) for o in record.options):
        raise ValueError("options must be a list of strings")
    if len(record.options) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} options are supported, got {len(record.options)}")
    if record.answer_type == "mc":
        if len(record.options) < 2:
            raise ValueError(f"a multiple-choice question needs at least 2 options, got {len(record.options)}")
        if not isinstance(record.answer, str) or record.answer not in record.letters:
            raise ValueError(
                f"answer must be one of the option letters {', '.join(record.letters)} for answer_type mc, "
                f"got {record.answer!r}"
            )
    if record.clip.start is not None and record.clip.end is not None and record.clip.end < record.clip.start:
        raise ValueError(f"clip.end ({record.clip.end}) is before clip.start ({record.clip.start})")
    if record.evidence is not None and not isinstance(record.evidence, dict):
        raise ValueError("evidence must be an object or null")


@dataclass
class ManifestLoad:
    """What :func:`load_manifest` found: the good records and one ``FILE:LINE: why`` per bad line."""

    records: list[ManifestRecord]
    problems: list[str]
    lines: int

    @property
    def skipped(self) -> int:
        return len(self.problems)


def load_manifest(path: str | Path, strict: bool = False) -> ManifestLoad:
    """Read and validate a JSONL manifest.

    Blank lines are ignored. A line that is not JSON, fails validation or repeats an earlier ``qid``
    is logged as ``FILE:LINE: problem`` and skipped (``strict=True``: raise :class:`ManifestError`).
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"manifest not found: {path} (make one with `streamvqa eval convert` or `eval needle`)")
    records: list[ManifestRecord] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    n_lines = 0
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            n_lines = number
            if not line.strip():
                continue
            try:
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"not valid JSON ({error.msg} at column {error.colno})") from None
                record = record_from_dict(data)
                if record.qid in seen:
                    raise ValueError(f"duplicate qid {record.qid!r} (first on line {seen[record.qid]})")
            except (ValueError, TypeError) as error:
                message = f"{path}:{number}: {error}"
                if strict:
                    raise ManifestError(message) from error
                logger.warning("skipping %s", message)
                problems.append(message)
                continue
            seen[record.qid] = number
            records.append(record)
    if problems:
        logger.warning("%s: %d of %d line(s) skipped as malformed", path, len(problems), len(records) + len(problems))
    return ManifestLoad(records, problems, n_lines)


def write_manifest(records: Iterable[ManifestRecord], path: str | Path) -> int:
    """Write records as JSONL (validating each); returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            validate(record)
            handle.write(record.to_json() + "\n")
            count += 1
    return count
