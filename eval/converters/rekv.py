"""The conversation format of ReKV's annotation files, shared by ActivityNet-QA and RVS.

``[{video_id, video_path, duration, conversations: [{question, answer, ...}]}]``: one video per
record, its questions in ``conversations``. All questions of a video run on one stream.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from eval.converters.base import ConversionResult, Reject, load_json, require_text, source_files
from eval.manifest import Clip, ManifestRecord, Video

BuildTurn = Callable[[dict, int], dict]
"""(conversation, index) -> extra ManifestRecord fields (``ask_time``, ``answer_type``, ``task_type``...)."""


def convert_rekv(benchmark: str, src: Path, video_root: str | None, build_turn: BuildTurn) -> ConversionResult:
    """Convert every conversation turn of every video record in ``src``."""
    result = ConversionResult(benchmark)
    for path in source_files(src, ("*.json",)):
        result.sources.append(str(path))
        rows = load_json(path)
        if not isinstance(rows, list):
            result.reject("file is not a list of records", path.name)
            continue
        for index, row in enumerate(rows):
            where = f"{path.name}[{index}]"
            turns = row.get("conversations") if isinstance(row, dict) else None
            if not isinstance(turns, list) or not turns:
                result.reject("video record without conversations", where)
                continue
            for j in range(len(turns)):
                result.attempt(f"{where}.conversations[{j}]",
                               lambda row=row, j=j: _turn(benchmark, row, j, video_root, build_turn))
    return result


def _turn(benchmark: str, row: dict, j: int, video_root: str | None, build_turn: BuildTurn) -> ManifestRecord:
    turn = row["conversations"][j]
    if not isinstance(turn, dict):
        raise Reject("malformed conversation turn", repr(turn)[:80])
    video_id = require_text(str(row.get("video_id") or ""), "video_id")
    path = require_text(row.get("video_path") or f"{video_id}.mp4", "video_path")
    if video_root is not None:
        path = os.path.join(video_root, os.path.basename(path))
    duration = row.get("duration")
    extra = build_turn(turn, j)
    return ManifestRecord(
        qid=f"{benchmark}-{video_id}-{j}",
        benchmark=benchmark,
        video=Video(path, video_id, float(duration) if isinstance(duration, (int, float)) else None),
        clip=Clip(),
        session_id=f"{benchmark}:{video_id}",
        turn_idx=j,
        question=require_text(turn.get("question"), "question"),
        answer_text=require_text(str(turn.get("answer", "")), "answer"),
        **extra,
    )
