"""NExT-QA multiple choice (``val.csv`` / ``test.csv`` or JSON rows): ``{video, question, answer (0-4),
qid, type, a0..a4}``.

``type``: CW/CH (causal why/how), TN/TC/TP (temporal next/current/previous), DL/DC/DO (descriptive
location/count/other). Asked after the whole video. Videos: ``VIDEO_ROOT/<video>.mp4`` (NExT-QA
ships a ``map_vid_vidorID.json``; point ``--video-root`` at a folder named by video id).
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

BENCHMARK = "nextqa"


def convert(src: Path, video_root: str | None = None) -> ConversionResult:
    result = ConversionResult(BENCHMARK)
    for path in source_files(src, ("*.csv", "*.parquet", "*.jsonl", "*.json")):
        result.sources.append(str(path))
        for index, row in enumerate(load_rows(path)):
            result.attempt(f"{path.name}[{index}]", lambda row=row, split=path.stem: _record(row, split, video_root))
    return result


def _record(row: dict, split: str, video_root: str | None) -> ManifestRecord:
    if not isinstance(row, dict):
        raise Reject("malformed record", repr(row)[:80])
    options = []
    for i in range(5):
        value = row.get(f"a{i}")
        if value is None or str(value).strip() == "":
            break
        options.append(str(value).strip())
    if len(options) < 2:
        raise Reject("fewer than 2 options (a0..a4)", str(options)[:80])
    try:
        answer_index = int(row.get("answer"))
    except (TypeError, ValueError):
        raise Reject("answer is not an option index 0-4", repr(row.get("answer"))) from None
    answer = option_letter(answer_index, len(options))
    video = require_text(str(row.get("video") or ""), "video")
    qid = str(row.get("qid") if row.get("qid") is not None else "")
    return ManifestRecord(
        qid=f"nextqa-{video}-{qid}",
        benchmark=BENCHMARK,
        split=split,
        task_type=str(row.get("type") or ""),
        video=Video(video_path(f"{video}.mp4", video_root), video),
        clip=Clip(),
        ask_time=None,
        session_id=f"{BENCHMARK}:{video}",
        question=require_text(row.get("question"), "question"),
        options=options,
        answer=answer,
        answer_text=options[answer_index],
        answer_type="mc",
    )
