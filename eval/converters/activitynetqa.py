"""ActivityNet-QA in ReKV's conversation format (``test_rekv_format.json``).

Open-ended questions about whole videos (asked after the clip). ``question_type``: 0 motion,
1 spatial relation, 2 temporal relation, 3 yes/no, 4 color, 5 object, 6 location, 7 number,
8 other; types 3 and 7 become ``yesno`` and ``count`` questions, the rest ``open`` (judged).
Videos: ``VIDEO_ROOT/<basename of video_path>``.
"""

from __future__ import annotations

from pathlib import Path

from eval.converters.base import ConversionResult
from eval.converters.rekv import convert_rekv

BENCHMARK = "activitynetqa"
QUESTION_TYPES = {0: "motion", 1: "spatial", 2: "temporal", 3: "yes_no", 4: "color", 5: "object",
                  6: "location", 7: "number", 8: "other"}


def _turn(turn: dict, j: int) -> dict:
    kind = turn.get("question_type")
    answer_type = {3: "yesno", 7: "count"}.get(kind, "open") if isinstance(kind, int) else "open"
    return {"split": "test", "task_type": QUESTION_TYPES.get(kind, str(kind)), "ask_time": None,
            "answer_type": answer_type, "meta": {"question_type": kind}}


def convert(src: Path, video_root: str | None = None) -> ConversionResult:
    return convert_rekv(BENCHMARK, src, video_root, _turn)
