"""Converters: every record of the real annotation files converts or is rejected with a counted reason;
the formats known only from DESIGN.md convert records written from that description."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from eval.converters import CONVERTERS, convert
from eval.converters.base import Reject, parse_hms
from eval.manifest import load_manifest
from pipeline.errors import UserInputError

BENCHMARKS = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"


def _source_questions(benchmark: str, folder: Path) -> int:
    """Questions in the raw files, counted without the converters."""
    if benchmark == "mlvu":
        return sum(len(json.loads(p.read_text())) for p in folder.glob("*.json"))
    if benchmark == "ovobench":
        items = json.loads((folder / "ovo_bench_new.json").read_text())
        return sum(len(i["test_info"]) if i["task"] in ("REC", "SSR", "CRR") else 1 for i in items)
    if benchmark == "streamingbench":
        total = 0
        for path in folder.glob("questions_*.json"):
            data = json.loads(path.read_text())
            entries = [e for group in data for e in group] if path.stem == "questions_sqa" else data
            total += sum(len(e["questions"]) for e in entries)
        return total
    if benchmark == "rtvbench":
        return len(json.loads((folder / "QA.json").read_text()))
    if benchmark == "activitynetqa":
        return sum(len(v["conversations"]) for v in json.loads((folder / "test_rekv_format.json").read_text()))
    raise AssertionError(benchmark)


@pytest.mark.parametrize("benchmark", ["mlvu", "ovobench", "streamingbench", "rtvbench", "activitynetqa"])
def test_real_annotation_files_convert_completely(benchmark: str, tmp_path: Path) -> None:
    folder = BENCHMARKS / benchmark
    if not folder.is_dir():
        pytest.skip(f"benchmark annotations not found at {folder} (the shared/ folder beside the repo)")
    result = convert(benchmark, folder, video_root="/videos")
    expected = _source_questions(benchmark, folder)
    print()
    print("\n".join(result.summary_lines()))
    assert result.seen == expected == len(result.records) + sum(result.rejected.values())
    assert all(reason and count > 0 for reason, count in result.rejected.items())
    assert sum(result.rejected.values()) <= 0.01 * expected  # defects are rare; most records convert
    qids = [r.qid for r in result.records]
    assert len(qids) == len(set(qids))
    assert all(r.video.path.startswith("/videos/") for r in result.records)
    out = tmp_path / "m.jsonl"
    from eval.manifest import write_manifest

    write_manifest(result.records, out)
    assert load_manifest(out).skipped == 0


def _real(benchmark: str) -> list:
    folder = BENCHMARKS / benchmark
    if not folder.is_dir():
        pytest.skip(f"benchmark annotations not found at {folder}")
    return convert(benchmark, folder).records


def test_mlvu_details() -> None:
    records = {r.qid: r for r in _real("mlvu")}
    dup = next(r for r in records.values() if r.meta.get("equivalent_answers"))
    assert dup.answer == dup.meta["equivalent_answers"][-1]  # the official script keeps the last match
    first = records["mlvu-1_plotQA-0"]
    assert (first.answer, first.answer_text, first.ask_time, first.split) == ("A", "Yellow", None, "dev_mc")
    assert first.video.path == "video/1_plotQA/movie101_66.mp4"
    gen = [r for r in records.values() if r.answer_type == "open"]
    assert len(gen) == 418 and {r.split for r in gen} == {"dev_gen"}


def test_ovobench_details() -> None:
    records = {r.qid: r for r in _real("ovobench")}
    epm = records["ovo-0"]
    assert (epm.answer, epm.ask_time, epm.split, epm.task_type) == ("C", 215.0, "backward", "EPM")
    assert records["ovo-609"].answer == "C"  # from gt, although the free-text answer differs from the option
    rec = records["ovo-1559-p1"]
    assert (rec.answer_type, rec.answer_text, rec.ask_time) == ("count", "2", 13.0)
    assert "showing something to the camera" in rec.question
    crr = records["ovo-1468-p2"]
    assert (crr.answer_type, crr.answer_text, crr.ask_time) == ("yesno", "Yes", 310.0)
    assert crr.session_id == epm.session_id.replace(epm.video.id, crr.video.id)


def test_streamingbench_details() -> None:
    records = _real("streamingbench")
    by_split: dict[str, list] = {}
    for r in records:
        by_split.setdefault(r.split, []).append(r)
    assert {k: len(v) for k, v in by_split.items()} == {"real": 2499, "omni": 1495, "sqa": 250 - 1, "proactive": 250}
    real = by_split["real"][0]
    assert real.ask_time == 31.0 and real.options[0].startswith("The individual organized")  # "A. " removed
    sqa = [r for r in by_split["sqa"] if r.video.id == "sample_17_sqa"]
    assert "context" not in sqa[0].meta and "Answer: A" in sqa[1].meta["context"]
    proactive = by_split["proactive"][0]
    assert proactive.evidence == {"time": 29.0} and proactive.meta["poll_end"] == 33.0


def test_time_stamps() -> None:
    assert parse_hms("01:02:03") == 3723 and parse_hms("0:07:40") == 460 and parse_hms("00:24") == 24
    for bad in ("00:12450", "1:75", "soon", None):
        with pytest.raises(Reject):
            parse_hms(bad)


def test_rtvbench_details() -> None:
    record = next(r for r in _real("rtvbench") if r.qid == "q-group-77wizqc9s-2-option0")
    assert record.meta == {"group": "77wizqc9s", "level": 2, "field": "sports_cam"}
    assert record.ask_time == 283.9 and record.video.path == "sports_cam/SportsCam_010.mp4"


# ---------------------------------------------------------------- formats described in DESIGN.md only
def _write(path: Path, rows: list) -> Path:
    path.write_text(json.dumps(rows))
    return path


def test_videomme(tmp_path: Path) -> None:
    rows = [
        {"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Humanity & History",
         "videoID": "fFjv93ACGo8", "question_id": "001-1", "task_type": "Counting Problem", "question": "How many?",
         "options": ["A. 4.", "B. 9.", "C. 5.", "D. 13."], "answer": "B"},
        {"video_id": "002", "duration": "forever", "videoID": "x", "question_id": "002-1", "question": "Q",
         "options": ["A. a", "B. b"], "answer": "A"},
        {"video_id": "003", "duration": "long", "videoID": "y", "question_id": "003-1", "question": "Q",
         "options": ["A. a", "B. b"], "answer": "E"},
    ]
    result = convert("videomme", _write(tmp_path / "videomme.json", rows), video_root="/v")
    assert result.rejected == {"duration is not short, medium or long": 1, "answer is not one of the option letters": 1}
    record = result.records[0]
    assert record.options == ["4.", "9.", "5.", "13."] and record.answer == "B"
    assert record.video.path == "/v/fFjv93ACGo8.mp4"
    assert record.meta["duration"] == "short" and record.meta["domain"] == "Knowledge"


def test_egoschema(tmp_path: Path) -> None:
    rows = [
        {"question_idx": "abc", "video_idx": "abc", "question": "What is C doing?",
         "option": ["A. cooking", "B. cleaning", "C. reading", "D. writing", "E. running"], "answer": 3},
        {"question_idx": "def", "video_idx": "def", "question": "Q", "option": ["A. a", "B. b", "C. c", "D. d", "E. e"],
         "answer": None},
    ]
    result = convert("egoschema", _write(tmp_path / "ego.json", rows))
    assert result.rejected == {"answer not public (full-set answers are hidden)": 1}
    assert result.records[0].answer == "D" and result.records[0].options[0] == "cooking"


def test_longvideobench(tmp_path: Path) -> None:
    rows = [{"id": "q1", "video_id": "v1", "video_path": "v1.mp4", "question": "Q?", "candidates": ["a", "b", "c"],
             "correct_choice": 2, "duration_group": 600, "question_category": "S2E", "duration": 420.0},
            {"id": "q2", "video_id": "v1", "question": "Q?", "candidates": ["a", "b"], "correct_choice": 5}]
    result = convert("longvideobench", _write(tmp_path / "lvb_val.json", rows))
    assert result.rejected == {"answer index out of range": 1}
    record = result.records[0]
    assert (record.answer, record.split, record.task_type, record.video.duration) == ("C", "600", "S2E", 420.0)


def test_nextqa_csv(tmp_path: Path) -> None:
    path = tmp_path / "val.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["video", "frame_count", "width", "height", "question", "answer", "qid", "type",
                                         "a0", "a1", "a2", "a3", "a4"])
        writer.writeheader()
        writer.writerow({"video": "4010069381", "question": "why did the boy run", "answer": "1", "qid": "6",
                         "type": "CW", "a0": "to hide", "a1": "to catch the ball", "a2": "c", "a3": "d", "a4": "e"})
        writer.writerow({"video": "4010069382", "question": "what", "answer": "x", "qid": "7", "type": "DO",
                         "a0": "a", "a1": "b", "a2": "c", "a3": "d", "a4": "e"})
    result = convert("nextqa", path)
    assert result.rejected == {"answer is not an option index 0-4": 1}
    record = result.records[0]
    assert (record.answer, record.task_type, record.split, record.qid) == ("B", "CW", "val", "nextqa-4010069381-6")


def test_rvs(tmp_path: Path) -> None:
    rows = [{"video_id": "ego_1", "video_path": "data/rvs/ego/ego_1.mp4", "duration": 3600.0, "conversations": [
        {"question": "What did I pick up?", "answer": "a cup", "start_time": 100.0, "end_time": 130.5},
        {"question": "Then?", "answer": "x", "start_time": 200.0},
    ]}]
    result = convert("rvs", _write(tmp_path / "rvs.json", rows), video_root="/data")
    assert result.rejected == {"missing or invalid end_time": 1}
    record = result.records[0]
    assert (record.ask_time, record.evidence, record.answer_type) == (130.5, {"start": 100.0, "end": 130.5}, "open")
    assert record.video.path == "/data/ego_1.mp4" and record.session_id == "rvs:ego_1"


def test_registry_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert set(CONVERTERS) == {"mlvu", "videomme", "egoschema", "longvideobench", "nextqa", "activitynetqa",
                               "ovobench", "streamingbench", "rtvbench", "rvs"}
    with pytest.raises(UserInputError, match="valid benchmarks: mlvu"):
        convert("mvbench", tmp_path)
    from pipeline.cli import main

    src = _write(tmp_path / "rvs.json", [{"video_id": "v", "conversations": [
        {"question": "Q?", "answer": "A", "end_time": 3.0}, {"question": "", "answer": "A", "end_time": 4.0}]}])
    out = tmp_path / "m.jsonl"
    assert main(["eval", "convert", "rvs", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 source question(s): 1 converted, 1 rejected" in printed and "empty question" in printed
    assert len(load_manifest(out).records) == 1
