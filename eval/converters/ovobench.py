"""OVO-Bench (``ovo_bench_new.json``): backward tracing, real-time perception, forward active responding.

* Backward (EPM, ASI, HLD) and real-time (STU, OJR, ATR, ACR, OCR, FPD) items are multiple choice
  ``{id, task, video, realtime, question, options, answer, gt}``, asked at ``realtime``. The correct
  letter comes from ``gt`` (the index the official scorer uses); ``answer`` is a free-text paraphrase
  that often differs from the option text, kept as ``answer_text``.
* Forward items carry ``test_info[]`` probes, each asked at its own ``realtime``: REC (``count``:
  "how many times so far"), SSR (``type`` 1 = the step is being performed now), CRR (``type`` 1 =
  the question can be answered now). One manifest line per probe (``qid`` ``ovo-<id>-p<j>``).

Every item of one video shares a session. Videos: ``VIDEO_ROOT/<video>``.
"""

from __future__ import annotations

from pathlib import Path

from eval.converters.base import (
    ConversionResult,
    Reject,
    load_json,
    option_letter,
    require_text,
    source_files,
    video_path,
)
from eval.manifest import Clip, ManifestRecord, Video

BENCHMARK = "ovobench"
CATEGORIES = {
    "backward": ("EPM", "ASI", "HLD"),
    "realtime": ("STU", "OJR", "ATR", "ACR", "OCR", "FPD"),
    "forward": ("REC", "SSR", "CRR"),
}
CATEGORY_OF = {task: category for category, tasks in CATEGORIES.items() for task in tasks}

REC_PROMPT = (
    "People in this video may repeat one kind of action; whoever performs it is called 'they'. "
    "Count how many times it has been performed so far, by anyone; one complete motion counts once. "
    "How many times did they {activity}? Answer with a single number and nothing else."
)
SSR_PROMPT = (
    "This tutorial video shows a procedure step by step. One of its steps is: {step}\n"
    "Is the person in the video performing this step right now? Answer only Yes or No."
)
CRR_PROMPT = (
    "The following question is about the most recent frames of the video: {question}\n"
    "Do the frames seen so far, especially the latest ones, give enough information to answer it? "
    "Answer only Yes or No."
)


def convert(src: Path, video_root: str | None = None) -> ConversionResult:
    result = ConversionResult(BENCHMARK)
    for path in source_files(src, ("ovo_bench*.json", "*.json")):
        result.sources.append(str(path))
        rows = load_json(path)
        if not isinstance(rows, list):
            result.reject("file is not a list of records", path.name)
            continue
        for index, item in enumerate(rows):
            where = f"{path.name}[{index}]"
            task = item.get("task") if isinstance(item, dict) else None
            if task not in CATEGORY_OF:
                result.reject("unknown task", where, repr(task))
            elif CATEGORY_OF[task] == "forward":
                probes = item.get("test_info")
                if not isinstance(probes, list) or not probes:
                    result.reject("forward item without test_info probes", where)
                    continue
                for j in range(len(probes)):
                    result.attempt(f"{where}.test_info[{j}]", lambda item=item, j=j: _probe(item, j, video_root))
            else:
                result.attempt(where, lambda item=item: _multiple_choice(item, video_root))
    return result


def _base(item: dict, video_root: str | None) -> dict:
    video = require_text(item.get("video"), "video")
    return {
        "benchmark": BENCHMARK,
        "split": CATEGORY_OF[item["task"]],
        "task_type": item["task"],
        "video": Video(video_path(video, video_root), video),
        "clip": Clip(),
        "session_id": f"{BENCHMARK}:{video}",
    }


def _time(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise Reject("missing or invalid realtime", repr(value))
    return float(value)


def _multiple_choice(item: dict, video_root: str | None) -> ManifestRecord:
    options = item.get("options")
    if not isinstance(options, list) or len(options) < 2:
        raise Reject("fewer than 2 options", repr(options)[:80])
    gt = item.get("gt")
    if isinstance(gt, bool) or not isinstance(gt, int):
        raise Reject("missing gt index", repr(gt))
    return ManifestRecord(
        qid=f"ovo-{item.get('id')}",
        question=require_text(item.get("question"), "question"),
        ask_time=_time(item.get("realtime")),
        options=[str(o).strip() for o in options],
        answer=option_letter(gt, len(options)),
        answer_text=str(item.get("answer", "")).strip() or None,
        answer_type="mc",
        meta={"id": item.get("id")},
        **_base(item, video_root),
    )


def _probe(item: dict, j: int, video_root: str | None) -> ManifestRecord:
    probe = item["test_info"][j]
    if not isinstance(probe, dict):
        raise Reject("malformed probe", repr(probe)[:80])
    task = item["task"]
    meta: dict = {"id": item.get("id"), "probe": j}
    evidence = None
    if task == "REC":
        activity = require_text(item.get("activity"), "activity")
        count = probe.get("count")
        if isinstance(count, bool) or not isinstance(count, int):
            raise Reject("REC probe without an integer count", repr(count))
        question, answer_type, answer_text = REC_PROMPT.format(activity=activity), "count", str(count)
        evidence = {"start_times": item.get("start_times"), "end_times": item.get("end_times")}
    else:
        kind = probe.get("type")
        if kind not in (0, 1):
            raise Reject("probe type is not 0 or 1", repr(kind))
        meta["type"] = kind
        answer_type, answer_text = "yesno", "Yes" if kind == 1 else "No"
        if task == "SSR":
            question = SSR_PROMPT.format(step=require_text(probe.get("step"), "step"))
            evidence = {"steps": item.get("all_steps"), "start_time": item.get("start_time"),
                        "end_time": item.get("end_time")}
        else:
            question = CRR_PROMPT.format(question=require_text(item.get("question"), "question"))
            evidence = {"clue_time": item.get("clue_time"), "ask_time": item.get("ask_time")}
            meta["answer"] = item.get("answer")
    return ManifestRecord(
        qid=f"ovo-{item.get('id')}-p{j}",
        question=question,
        ask_time=_time(probe.get("realtime")),
        turn_idx=j,
        answer_text=answer_text,
        answer_type=answer_type,
        evidence=evidence,
        meta=meta,
        **_base(item, video_root),
    )
