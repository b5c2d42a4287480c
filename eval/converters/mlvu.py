"""MLVU dev: ``1_plotQA.json`` ... ``7_topic_reasoning.json`` (multiple choice), ``8_sub_scene.json``,
``9_summary.json`` (generation).

Record: ``{video, duration, question, candidates[], answer (option text), question_type}``; the
generation files have no candidates (``8_sub_scene`` adds ``scoring_points``).

Answer letter: the official script loops over the candidates and keeps the *last* candidate equal
to the answer text, so a duplicated correct option maps to its last position (kept here, with the
other positions in ``meta.equivalent_answers``). An answer that equals no candidate is rejected
(the official script would score it as always wrong). Videos: ``VIDEO_ROOT/video/<file stem>/<video>``
(the layout of the MLVU release).
"""

from __future__ import annotations

from pathlib import Path

from eval.converters.base import ConversionResult, Reject, load_json, require_text, source_files, video_path
from eval.manifest import LETTERS, Clip, ManifestRecord, Video

BENCHMARK = "mlvu"
MC_TASKS = ("plotQA", "findNeedle", "ego", "count", "order", "anomaly_reco", "topic_reasoning")


def convert(src: Path, video_root: str | None = None) -> ConversionResult:
    result = ConversionResult(BENCHMARK)
    for path in source_files(src, ("*.json",)):
        result.sources.append(str(path))
        rows = load_json(path)
        if not isinstance(rows, list):
            result.reject("file is not a list of records", path.name)
            continue
        for index, row in enumerate(rows):
            result.attempt(f"{path.name}[{index}]",
                           lambda row=row, index=index, path=path: _record(row, path, index, video_root))
    return result


def _record(row: dict, path: Path, index: int, video_root: str | None) -> ManifestRecord:
    question = require_text(row.get("question"), "question")
    video = require_text(row.get("video"), "video")
    task = str(row.get("question_type") or path.stem)
    require_text(row.get("answer"), "answer")
    answer_text = str(row["answer"])
    candidates = row.get("candidates")
    meta: dict = {"source_file": path.name, "source_index": index}
    if candidates is None:
        answer_type, options, answer, split = "open", [], None, "dev_gen"
        if row.get("scoring_points"):
            meta["scoring_points"] = row["scoring_points"]
    else:
        if not isinstance(candidates, list) or len(candidates) < 2:
            raise Reject("fewer than 2 candidates", repr(candidates)[:80])
        options = [str(c) for c in candidates]
        matches = [i for i, c in enumerate(options) if c == answer_text]
        if not matches:
            raise Reject("answer text is not among the candidates", f"{answer_text!r} not in {options}")
        answer_type, answer, split = "mc", LETTERS[matches[-1]], "dev_mc"
        if len(matches) > 1:
            meta["equivalent_answers"] = [LETTERS[i] for i in matches]
    duration = row.get("duration")
    stem = Path(video).stem
    return ManifestRecord(
        qid=f"mlvu-{path.stem}-{index}",
        benchmark=BENCHMARK,
        split=split,
        task_type=task,
        video=Video(video_path(video, video_root, "video", path.stem), stem,
                    float(duration) if isinstance(duration, (int, float)) else None),
        clip=Clip(),
        ask_time=None,
        session_id=f"{BENCHMARK}:{path.stem}/{stem}",
        question=question,
        options=options,
        answer=answer,
        answer_text=answer_text,
        answer_type=answer_type,
        meta=meta,
    )
