"""StreamingBench: ``questions_real.json``, ``questions_omni.json``, ``questions_sqa.json``,
``questions_proactive.json``.

Entries are ``{time, questions[], video_categories, video_path}``; each question has ``task_type``,
``question``, ``time_stamp`` (``HH:MM:SS``, the ask time), ``answer`` (letter) and ``options``.
``questions_sqa.json`` is a list of groups (one video each) whose questions are asked in order, each
with the previous questions and their correct answers as context (``meta.context``, as the official
script does). Proactive questions have ``ground_truth_time_stamp`` and ``ground_truth_output``: the
runner polls once a second from ``time_stamp + 1`` to ``ground truth + 4`` s (``meta.poll_*``).

Options count as letter-prefixed when the first starts with ``"A."`` (the official rule) and most of
them carry a letter prefix (so a bare option such as the name ``"A.Lebrun."`` is not taken for one).
Known defects of the published files are repaired and counted: an option split across two list
items is joined; options listed out of letter order are put back in order. Duplicated letters,
empty options and malformed time stamps are rejected. Videos: ``VIDEO_ROOT/videos/<file>``.
"""

from __future__ import annotations

import re
from pathlib import Path

from eval.converters.base import ConversionResult, Reject, load_json, parse_hms, require_text, source_files, video_path
from eval.manifest import LETTERS, Clip, ManifestRecord, Video

BENCHMARK = "streamingbench"
SUBSETS = {"questions_real": "real", "questions_omni": "omni", "questions_sqa": "sqa",
           "questions_proactive": "proactive"}
_PREFIX = re.compile(r"^([A-Z])\.\s*")
POLL_PROMPT = '{question} Is it the right time to output "{output}"? You can only answer yes or no.'


def convert(src: Path, video_root: str | None = None) -> ConversionResult:
    result = ConversionResult(BENCHMARK)
    for path in source_files(src, ("questions_*.json",)):
        subset = SUBSETS.get(path.stem, path.stem.removeprefix("questions_"))
        result.sources.append(str(path))
        data = load_json(path)
        if not isinstance(data, list):
            result.reject("file is not a list of records", path.name)
            continue
        if subset == "sqa":
            for g, group in enumerate(data):
                entries = group if isinstance(group, list) else [group]
                _convert_entries(result, entries, subset, f"{path.name}[{g}]", f"sqa-{g}", video_root)
        else:
            for i, entry in enumerate(data):
                _convert_entries(result, [entry], subset, f"{path.name}[{i}]", f"{subset}-{i}", video_root)
    return result


def _convert_entries(result: ConversionResult, entries: list, subset: str, where: str, key: str,
                     video_root: str | None) -> None:
    history: list[str] = []
    turn = 0
    for i, entry in enumerate(entries):
        questions = entry.get("questions") if isinstance(entry, dict) else None
        if not isinstance(questions, list) or not questions:
            result.reject("entry without questions", f"{where}[{i}]" if len(entries) > 1 else where)
            continue
        for k, question in enumerate(questions):
            here = f"{where}[{i}].questions[{k}]" if len(entries) > 1 else f"{where}.questions[{k}]"
            qid = f"sb-{key}-{i}-{k}" if len(entries) > 1 else f"sb-{key}-{k}"
            before = len(result.records)
            result.attempt(here, lambda e=entry, q=question, qid=qid, t=turn: _record(
                result, e, q, subset, qid, t, list(history), video_root))
            if subset == "sqa" and len(result.records) > before:
                history.append(_history_line(result.records[-1]))
            turn += 1


def _history_line(record: ManifestRecord) -> str:
    options = ", ".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(record.options))
    return (f"At timestamp {record.meta['time_stamp']}, the following question and answer occurred: "
            f"Question: {record.question}; Options: {options}; Answer: {record.answer}; ")


def _options(raw: object, result: ConversionResult) -> list[str]:
    if not isinstance(raw, list) or len(raw) < 2 or not all(isinstance(o, str) for o in raw):
        raise Reject("fewer than 2 options", repr(raw)[:80])
    if not raw[0].startswith("A.") or 2 * sum(bool(_PREFIX.match(o)) for o in raw) <= len(raw):
        return [o.strip() for o in raw]  # bare options (a first option like "A.Lebrun." is a name)
    pieces: list[tuple[str, str]] = []
    joined = False
    for option in raw:
        match = _PREFIX.match(option)
        if match:
            pieces.append((match.group(1), option[match.end():].strip()))
        elif pieces:
            pieces[-1] = (pieces[-1][0], f"{pieces[-1][1]} {option.strip()}".strip())
            joined = True
    letters = [letter for letter, _ in pieces]
    if len(set(letters)) != len(letters):
        raise Reject("duplicate option letters", str(letters))
    if sorted(letters) != list(LETTERS[: len(letters)]):
        raise Reject("option letters are not A, B, C, ... without gaps", str(letters))
    if any(not re.search(r"\w", text) for _, text in pieces):
        raise Reject("empty option text", str([t for _, t in pieces]))
    if joined:
        result.repaired["option split across list items, joined"] += 1
    if letters != sorted(letters):
        result.repaired["options out of letter order, reordered"] += 1
    return [text for _, text in sorted(pieces)]


def _record(result: ConversionResult, entry: dict, q: dict, subset: str, qid: str, turn: int,
            history: list[str], video_root: str | None) -> ManifestRecord:
    if not isinstance(q, dict):
        raise Reject("malformed question", repr(q)[:80])
    video = require_text(entry.get("video_path"), "video_path")
    question = require_text(q.get("question"), "question")
    ask_time = parse_hms(q.get("time_stamp"))
    meta = {"subset": subset, "time_stamp": q.get("time_stamp"), "segment": entry.get("time"),
            "video_category": entry.get("video_categories"), "required_ability": q.get("required_ability")}
    common = {
        "qid": qid, "benchmark": BENCHMARK, "split": subset, "task_type": str(q.get("task_type") or subset),
        "video": Video(video_path(video, video_root), Path(video).stem), "clip": Clip(),
        "ask_time": ask_time, "session_id": f"{BENCHMARK}:{subset}:{video}", "turn_idx": turn,
        "question": question, "meta": meta,
    }
    if subset == "proactive":
        truth = parse_hms(q.get("ground_truth_time_stamp"))
        output = require_text(q.get("ground_truth_output"), "ground_truth_output")
        meta.update(poll_prompt=POLL_PROMPT.format(question=question, output=output),
                    poll_start=ask_time + 1, poll_end=truth + 4, poll_interval=1.0)
        return ManifestRecord(answer_text=output, answer_type="proactive", evidence={"time": truth}, **common)
    options = _options(q.get("options"), result)
    answer = q.get("answer")
    if not isinstance(answer, str) or answer.strip() not in LETTERS[: len(options)]:
        raise Reject("answer is not one of the option letters", f"{answer!r} with {len(options)} options")
    if history:
        meta["context"] = ("Here is what was asked and answered earlier about this video; use it as context: "
                           + "".join(history))
    answer = answer.strip()
    return ManifestRecord(options=options, answer=answer, answer_text=options[LETTERS.index(answer)],
                          answer_type="mc", **common)
