"""LongVideoBench (``lvb_val.json``): ``{id, video_id, video_path, question, candidates[],
correct_choice (int), duration_group, question_category, duration}``.

Asked after the whole video (the referred moment is described in the question). Videos:
``VIDEO_ROOT/<video_path>``.
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
    video_path,
)
from eval.manifest import Clip, ManifestRecord, Video

BENCHMARK = "longvideobench"


def convert(src: Path, video_root: str | None = None) -> ConversionResult:
    result = ConversionResult(BENCHMARK)
    for path in source_files(src, ("*.parquet", "*.jsonl", "*.json")):
        result.sources.append(str(path))
        for index, row in enumerate(load_rows(path)):
            result.attempt(f"{path.name}[{index}]", lambda row=row: _record(row, video_root))
    return result


def _record(row: dict, video_root: str | None) -> ManifestRecord:
    if not isinstance(row, dict):
        raise Reject("malformed record", repr(row)[:80])
    candidates = row.get("candidates")
    if hasattr(candidates, "tolist"):
        candidates = candidates.tolist()
    if not isinstance(candidates, list) or len(candidates) < 2:
        raise Reject("fewer than 2 candidates", repr(candidates)[:80])
    choice = row.get("correct_choice")
    if isinstance(choice, bool) or not isinstance(choice, int):
        raise Reject("correct_choice is not an integer", repr(choice))
    options = [str(c) for c in candidates]
    answer = option_letter(choice, len(options))
    video_id = require_text(str(row.get("video_id") or ""), "video_id")
    relative = str(row.get("video_path") or f"{video_id}.mp4")
    duration = row.get("duration")
    return ManifestRecord(
        qid=f"lvb-{row.get('id') or video_id}",
        benchmark=BENCHMARK,
        split=str(row.get("duration_group") or ""),
        task_type=str(row.get("question_category") or ""),
        video=Video(video_path(relative, video_root), video_id,
                    float(duration) if isinstance(duration, (int, float)) else None),
        clip=Clip(),
        ask_time=None,
        session_id=f"{BENCHMARK}:{video_id}",
        question=require_text(row.get("question"), "question"),
        options=options,
        answer=answer,
        answer_text=options[choice],
        answer_type="mc",
        meta={"duration_group": row.get("duration_group"), "question_category": row.get("question_category")},
    )
