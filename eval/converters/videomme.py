"""Video-MME (the Hugging Face release: one row per question).

Row: ``{video_id, duration (short|medium|long), domain, sub_category, videoID, question_id,
task_type, question, options ["A. ...", ...], answer (letter)}``. The nested layout of the official
result template (``{video_id, duration_category, video_category, video_subcategory, questions:
[{question_id, task_type, question, choices, answer}]}``) is read too. Questions are asked after the
whole video. Videos: ``VIDEO_ROOT/<videoID>.mp4``.
"""

from __future__ import annotations

from pathlib import Path

from eval.converters.base import (
    ConversionResult,
    Reject,
    load_rows,
    require_text,
    source_files,
    strip_letter_prefixes,
    video_path,
)
from eval.manifest import LETTERS, Clip, ManifestRecord, Video

BENCHMARK = "videomme"
DURATIONS = ("short", "medium", "long")


def convert(src: Path, video_root: str | None = None) -> ConversionResult:
    result = ConversionResult(BENCHMARK)
    for path in source_files(src, ("*.parquet", "*.jsonl", "*.json")):
        result.sources.append(str(path))
        for index, row in enumerate(load_rows(path)):
            where = f"{path.name}[{index}]"
            if isinstance(row, dict) and isinstance(row.get("questions"), list):
                video = {"video_id": row.get("video_id"), "duration": row.get("duration_category"),
                         "domain": row.get("video_category"), "sub_category": row.get("video_subcategory"),
                         "videoID": row.get("videoID") or row.get("video_id"), "url": row.get("url")}
                for k, question in enumerate(row["questions"]):
                    result.attempt(f"{where}.questions[{k}]",
                                   lambda q=question, v=video: _record({**v, **q}, video_root))
            else:
                result.attempt(where, lambda row=row: _record(row, video_root))
    return result


def _record(row: dict, video_root: str | None) -> ManifestRecord:
    if not isinstance(row, dict):
        raise Reject("malformed record", repr(row)[:80])
    raw_options = row.get("options", row.get("choices"))
    if hasattr(raw_options, "tolist"):
        raw_options = raw_options.tolist()
    if not isinstance(raw_options, list) or len(raw_options) < 2:
        raise Reject("fewer than 2 options", repr(raw_options)[:80])
    options, _ = strip_letter_prefixes([str(o) for o in raw_options])
    answer = str(row.get("answer", "")).strip()
    if answer not in LETTERS[: len(options)]:
        raise Reject("answer is not one of the option letters", repr(answer))
    duration = str(row.get("duration") or "").strip()
    if duration not in DURATIONS:
        raise Reject("duration is not short, medium or long", repr(duration))
    youtube_id = require_text(str(row.get("videoID") or ""), "videoID")
    video_id = str(row.get("video_id") or youtube_id)
    return ManifestRecord(
        qid=f"videomme-{row.get('question_id') or video_id}",
        benchmark=BENCHMARK,
        split=duration,
        task_type=str(row.get("task_type") or ""),
        video=Video(video_path(f"{youtube_id}.mp4", video_root), video_id),
        clip=Clip(),
        ask_time=None,
        session_id=f"{BENCHMARK}:{video_id}",
        question=require_text(row.get("question"), "question"),
        options=options,
        answer=answer,
        answer_text=options[LETTERS.index(answer)],
        answer_type="mc",
        meta={"duration": duration, "domain": row.get("domain"), "sub_category": row.get("sub_category"),
              "question_id": row.get("question_id")},
    )
