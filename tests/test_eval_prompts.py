"""Prompt templates: the standard ones, a user's prompts file (selection, validation), and its record in run.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.manifest import ManifestRecord, Video, write_manifest
from eval.prompts import PromptBook, build_prompt
from eval.runner import RunOptions, prepare
from pipeline.config import StreamConfig
from pipeline.errors import UserInputError


def record(benchmark: str, answer_type: str = "mc", **meta: str) -> ManifestRecord:
    if answer_type == "mc":
        return ManifestRecord(qid=f"{benchmark}-1", benchmark=benchmark, question="What is red?",
                              video=Video("v.mp4", "v"), options=["a car", "a cat", "a hat"], answer="A", meta=meta)
    return ManifestRecord(qid=f"{benchmark}-2", benchmark=benchmark, question="What is red?",
                          video=Video("v.mp4", "v"), answer_type=answer_type, answer_text="a car", meta=meta)


def test_standard_templates() -> None:
    assert build_prompt(record("mlvu")) == ("Question: What is red?\nOptions:\nA. a car\nB. a cat\nC. a hat\n"
                                            "Answer with the option's letter from the given choices directly.")
    assert build_prompt(record("rvs", "open", context="Q: hi\nA: yes")) == "Q: hi\nA: yes\nWhat is red?"


def write_book(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(data))
    return path


def test_most_specific_template_wins(tmp_path: Path) -> None:
    book = PromptBook.from_file(write_book(tmp_path, {
        "videomme": {"mc": "V {question}|{options}|{letters}"},
        "*": {"*": "ANY {context}{question}", "mc": "MC {question} ({letters})"},
    }))
    assert build_prompt(record("videomme"), book) == "V What is red?|A. a car\nB. a cat\nC. a hat|A, B, C"
    assert build_prompt(record("mlvu"), book) == "MC What is red? (A, B, C)"
    assert build_prompt(record("rvs", "open", context="earlier"), book) == "ANY earlier\nWhat is red?"
    assert len(book.sha256 or "") == 64


@pytest.mark.parametrize(("data", "message"), [
    ([1, 2], "expected an object"),
    ({"mlvu": "x"}, "must map answer types"),
    ({"mlvu": {"essay": "{question}"}}, "answer type must be one of"),
    ({"mlvu": {"mc": "no question here"}}, "containing {question}"),
    ({"mlvu": {"mc": "{question} {choices}"}}, "unknown placeholder"),
    ({"mlvu": {"mc": "{question} {"}}, "literal brace"),
])
def test_bad_prompts_file_names_the_entry(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        PromptBook.from_file(write_book(tmp_path, data))


def test_unreadable_prompts_file(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(UserInputError, match="not valid JSON"):
        PromptBook.from_file(tmp_path / "bad.json")
    with pytest.raises(UserInputError, match="not found"):
        PromptBook.from_file(tmp_path / "missing.json")


def test_run_records_prompts_and_refuses_to_mix_them(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    write_manifest([record("mlvu")], manifest)
    first = write_book(tmp_path, {"*": {"mc": "A {question}"}})
    work = prepare(RunOptions(manifest, tmp_path / "run", prompts=first), StreamConfig(), "local")
    assert work.prompts is not None and build_prompt(record("mlvu"), work.prompts) == "A What is red?"
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["prompts"]["sha256"] == work.prompts.sha256
    assert info["prompts"]["templates"] == {"*": {"mc": "A {question}"}}
    prepare(RunOptions(manifest, tmp_path / "run", prompts=first), StreamConfig(), "local")  # same prompts: fine
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"*": {"mc": "B {question}"}}))
    with pytest.raises(UserInputError, match="same --prompts"):
        prepare(RunOptions(manifest, tmp_path / "run", prompts=other), StreamConfig(), "local")
    with pytest.raises(UserInputError, match="same --prompts"):
        prepare(RunOptions(manifest, tmp_path / "run"), StreamConfig(), "local")
