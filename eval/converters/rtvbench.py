"""RTV-Bench (``QA.json``).

Record: ``{video, questionID "q-group-<gid>-<level>-option<N>", type "Object-TP", field, start_time,
end_time, question, options {"A": ..}, answer}``. Questions are asked at ``end_time`` on one stream
per video (the official script cuts ``[0, end_time]``). ``level`` 0 and 1 are the basic questions of
a group, 2 its advanced ones (Group Score, ``eval/scoring/rtvbench.py``). Videos:
``VIDEO_ROOT/<field>/<video>``.
"""

from __future__ import annotations

import re
from pathlib import Path

from eval.converters.base import ConversionResult, Reject, load_json, require_text, source_files, video_path
from eval.manifest import LETTERS, Clip, ManifestRecord, Video

BENCHMARK = "rtvbench"
QUESTION_ID = re.compile(r"^q-group-([a-z0-9]+)-([012])(?:-.*)?$", re.IGNORECASE)


def convert(src: Path, video_root: str | None = None) -> ConversionResult:
    result = ConversionResult(BENCHMARK)
    for path in source_files(src, ("QA*.json", "*.json")):
        result.sources.append(str(path))
        rows = load_json(path)
        if not isinstance(rows, list):
            result.reject("file is not a list of records", path.name)
            continue
        for index, row in enumerate(rows):
            result.attempt(f"{path.name}[{index}]", lambda row=row: _record(row, video_root))
    return result


def _record(row: dict, video_root: str | None) -> ManifestRecord:
    if not isinstance(row, dict):
        raise Reject("malformed record", repr(row)[:80])
    qid = require_text(row.get("questionID"), "questionID")
    match = QUESTION_ID.match(qid)
    if not match:
        raise Reject("questionID is not q-group-<group>-<level>-...", qid)
    options = row.get("options")
    if not isinstance(options, dict) or not options:
        raise Reject("options are not a letter -> text object", repr(options)[:80])
    keys = sorted(options)
    if keys != list(LETTERS[: len(keys)]):
        raise Reject("option letters are not A, B, C, ... without gaps", str(keys))
    if len(keys) < 2:
        raise Reject("fewer than 2 options", str(options))
    answer = row.get("answer")
    if answer not in keys:
        raise Reject("answer is not one of the option letters", f"{answer!r} not in {keys}")
    end = row.get("end_time")
    if isinstance(end, bool) or not isinstance(end, (int, float)) or end < 0:
        raise Reject("missing or invalid end_time", repr(end))
    video = require_text(row.get("video"), "video")
    field_name = str(row.get("field") or "")
    kind = require_text(row.get("type"), "type")
    return ManifestRecord(
        qid=qid,
        benchmark=BENCHMARK,
        split=field_name,
        task_type=kind,
        video=Video(video_path(video, video_root, field_name), Path(video).stem),
        clip=Clip(),
        ask_time=float(end),
        session_id=f"{BENCHMARK}:{field_name}/{video}",
        question=require_text(row.get("question"), "question"),
        options=[str(options[k]) for k in keys],
        answer=answer,
        answer_text=str(options[answer]),
        answer_type="mc",
        evidence={"start": row.get("start_time"), "end": end},
        meta={"group": match.group(1).lower(), "level": int(match.group(2)), "field": field_name},
    )
