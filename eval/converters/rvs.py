"""RVS (ReKV's streaming sets, RVS-Ego and RVS-Movie): ``{video_id, video_path, duration,
conversations: [{question, answer, start_time, end_time}]}``.

Each question is asked at its ``end_time`` on one stream per video; ``[start_time, end_time]`` is
the evidence window. Open-ended (judged). Videos: ``VIDEO_ROOT/<basename of video_path>``.
"""

from __future__ import annotations

from pathlib import Path

from eval.converters.base import ConversionResult, Reject
from eval.converters.rekv import convert_rekv

BENCHMARK = "rvs"


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise Reject(f"missing or invalid {name}", repr(value))
    return float(value)


def _turn(turn: dict, j: int) -> dict:
    end = _seconds(turn.get("end_time"), "end_time")
    start = _seconds(turn.get("start_time", 0.0), "start_time")
    if start > end:
        raise Reject("start_time after end_time", f"{start} > {end}")
    return {"split": "test", "task_type": str(turn.get("type") or "open"), "ask_time": end,
            "answer_type": "open", "evidence": {"start": start, "end": end}}


def convert(src: Path, video_root: str | None = None) -> ConversionResult:
    return convert_rekv(BENCHMARK, src, video_root, _turn)
