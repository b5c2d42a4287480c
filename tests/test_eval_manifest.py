"""The manifest: round trip, validation, and malformed lines reported with file:line, counted, skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.manifest import ManifestError, ManifestRecord, Video, load_manifest, record_from_dict, write_manifest
from pipeline.errors import UserInputError


def good(qid: str = "q1", **changes: object) -> dict:
    data = {"qid": qid, "benchmark": "demo", "question": "What color?", "video": {"path": "v.mp4", "id": "v"},
            "options": ["Red", "Blue"], "answer": "B", "answer_type": "mc", "ask_time": 3.5}
    data.update(changes)
    return data


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    record = ManifestRecord(qid="a", benchmark="demo", question="Q?", video=Video("x.mp4", "x", 12.0),
                            options=["yes", "no"], answer="A", ask_time=4.0, evidence={"start": 1.0, "end": 2.0},
                            meta={"k": [1, 2]})
    path = tmp_path / "m.jsonl"
    assert write_manifest([record], path) == 1
    loaded = load_manifest(path)
    assert loaded.problems == [] and loaded.records == [record]
    assert record.session_id == "demo:x"  # default: one session per video


def test_malformed_lines_are_reported_counted_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = [
        json.dumps(good("ok1")),
        "{not json",
        json.dumps(good("bad-letter", answer="C")),
        json.dumps({k: v for k, v in good("no-question").items() if k != "question"}),
        "",
        json.dumps(good("ok1")),  # duplicate qid
        json.dumps(good("typo", asktime=3)),
        json.dumps(good("neg", ask_time=-1)),
        json.dumps(good("open", answer_type="open", options=[], answer=None)),
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(lines) + "\n")
    loaded = load_manifest(path)
    assert [r.qid for r in loaded.records] == ["ok1", "open"]
    assert loaded.skipped == 6
    by_line = {int(p.split(":")[1]): p for p in loaded.problems}
    assert set(by_line) == {2, 3, 4, 6, 7, 8}
    assert all(p.startswith(f"{path}:") for p in loaded.problems)
    assert "not valid JSON" in by_line[2]
    assert "option letters A, B" in by_line[3]
    assert "missing required field 'question'" in by_line[4]
    assert "duplicate qid 'ok1' (first on line 1)" in by_line[6]
    assert "unknown field(s) asktime" in by_line[7] and "valid fields" in by_line[7]
    assert ">= 0" in by_line[8]
    assert "6 of 8 line(s) skipped" in caplog.text
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: not valid JSON"):
        load_manifest(path, strict=True)


def test_missing_manifest_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="eval convert"):
        load_manifest(tmp_path / "nope.jsonl")


def test_record_checks() -> None:
    with pytest.raises(ValueError, match="at least 2 options"):
        record_from_dict(good(options=["only"], answer="A"))
    with pytest.raises(ValueError, match="answer_type"):
        record_from_dict(good(answer_type="essay"))
    with pytest.raises(ValueError, match="clip.end"):
        record_from_dict(good(clip={"start": 5, "end": 1}))
    assert record_from_dict(good()).answer_index == 1
