"""EgoSchema (the Hugging Face release): ``{question_idx, question, video_idx, option [5 x "A. ..."],
answer (0-4)}``.

Only the 500-question subset has public answers; a question without one is rejected ("answer not
public": score the full set on the official server). Asked after the whole 3-minute clip. Videos:
``VIDEO_ROOT/<video_idx>.mp4``.
"""

from __future__ import annotations

from pathlib import Path

from eval.converters.base import (
    ConversionResult,
    Reject,
    load_rows,
    option_letter,
    require_text,
    source_files,
    strip_letter_prefixes,
    video_path,
)
from eval.manifest import Clip, ManifestRecord, Video

BENCHMARK = "egoschema"


def convert(src: Path, video_root: str | None = None) -> ConversionResult:
    result = ConversionResult(BENCHMARK)
    for path in source_files(src, ("*.parquet", "*.jsonl", "*.json")):
        result.sources.append(str(path))
        for index, row in enumerate(load_rows(path)):
            result.attempt(f"{path.name}[{index}]", lambda row=row: _record(row, video_root))
    return result


def _answer_index(value: object) -> int:
    if value is None or value == "":
        raise Reject("answer not public (full-set answers are hidden)")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Reject("answer is not an option index 0-4", repr(value)) from None


def _record(row: dict, video_root: str | None) -> ManifestRecord:
    if not isinstance(row, dict):
        raise Reject("malformed record", repr(row)[:80])
    raw = row.get("option", row.get("options"))
    if hasattr(raw, "tolist"):
        raw = raw.tolist()
    if not isinstance(raw, list) or len(raw) < 2:
        raise Reject("fewer than 2 options", repr(raw)[:80])
    options, _ = strip_letter_prefixes([str(o) for o in raw])
    answer = option_letter(_answer_index(row.get("answer")), len(options))
    video = require_text(str(row.get("video_idx") or row.get("question_idx") or ""), "video_idx")
    qid = require_text(str(row.get("question_idx") or video), "question_idx")
    return ManifestRecord(
        qid=f"egoschema-{qid}",
        benchmark=BENCHMARK,
        split="subset",
        task_type="egoschema",
        video=Video(video_path(f"{video}.mp4", video_root), video, 180.0),
        clip=Clip(),
        ask_time=None,
        session_id=f"{BENCHMARK}:{video}",
        question=require_text(row.get("question"), "question"),
        options=options,
        answer=answer,
        answer_text=options["ABCDE".index(answer)],
        answer_type="mc",
    )
