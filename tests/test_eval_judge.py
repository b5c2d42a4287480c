"""The LLM-judge stage: verdict parsing, a local HF judge, the same model behind our OpenAI-compatible
server (a real HTTP endpoint on 127.0.0.1), resume after a kill, scoring, and a dead endpoint."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from eval.judge.backends import HFChatJudge, JudgeUnavailable, OpenAIChatJudge, make_judge
from eval.judge.prompt import PROMPT_VERSION, parse_verdict
from eval.judge.stage import judge_run, judgment_file, load_judgments, needs_judge
from eval.judge.tiny import make_tiny_judge
from eval.manifest import ManifestRecord, Video, write_manifest
from eval.predictions import PredictionWriter, read_prediction_file
from eval.scoring.run_scores import score_run
from pipeline.errors import UserInputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("reply", "correct", "score"), [
    ('{"correct": "yes", "score": 4}', True, 4.0),
    ("Sure! {'pred': 'no', 'score': 1} is my verdict", False, 1.0),
    ('{"correct": true, "score": "5"}', True, 5.0),
    ("correct: no\nscore: 2", False, 2.0),
    ("Yes, the answer matches.", True, None),
    ('{"correct": "yes", "score": 9}', True, None),  # out of range: dropped, verdict kept
    ("I cannot tell.", None, None),
    ("", None, None),
])
def test_parse_verdict(reply: str, correct: bool | None, score: float | None) -> None:
    verdict = parse_verdict(reply)
    assert (verdict.correct, verdict.score) == (correct, score)


def open_record(qid: str, video: str, truth: str, benchmark: str = "activitynetqa",
                kind: str = "open") -> ManifestRecord:
    return ManifestRecord(qid=qid, benchmark=benchmark, question=f"What is in {qid}?",
                          video=Video(f"{video}.mp4", video), task_type="t", answer_type=kind, answer_text=truth)


@pytest.fixture(scope="module")
def tiny_judge_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_judge(tmp_path_factory.mktemp("judge"))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run folder as `eval run` leaves it: manifest, run.json, predictions (one failed, one missing)."""
    records = [open_record(f"q{i}", f"v{i % 2}", f"answer {i}") for i in range(5)]
    records.append(open_record("yn", "v0", "yes", kind="yesno"))
    records.append(ManifestRecord(qid="mc", benchmark="mlvu", question="Q?", video=Video("v0.mp4", "v0"),
                                  task_type="plotQA", options=["a", "b"], answer="A", answer_type="mc"))
    records.append(open_record("gen", "v1", "a long summary", benchmark="mlvu"))
    manifest = tmp_path / "manifest.jsonl"
    write_manifest(records, manifest)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"manifest": str(manifest)}))
    with PredictionWriter(run / "predictions.jsonl", fsync=False) as writer:
        for record in records:
            if record.qid == "q4":
                continue  # never answered
            error = "decoder failed" if record.qid == "q3" else None
            writer.write({"qid": record.qid, "benchmark": record.benchmark, "session_id": record.session_id,
                          "video_id": record.video.id, "response": None if error else f"it is {record.qid}",
                          "error": error})
    return run


def test_needs_judge_selects_open_ended_records() -> None:
    assert needs_judge(open_record("a", "v", "x"))
    assert needs_judge(open_record("b", "v", "yes", kind="yesno"))  # ActivityNet-QA is judged whole
    assert needs_judge(open_record("c", "v", "x", benchmark="mlvu"))
    assert not needs_judge(ManifestRecord(qid="d", benchmark="mlvu", question="Q?", video=Video("v.mp4", "v"),
                                          options=["a", "b"], answer="A", answer_type="mc"))


def test_hf_judge_stage_resumes_and_scores(run_dir: Path, tiny_judge_path: Path) -> None:
    judge = HFChatJudge(str(tiny_judge_path), device="cpu", local_files_only=True)
    first = judge_run(run_dir, judge, limit=2)
    assert (first.to_judge, first.written, first.already_done) == (5, 2, 0)  # q0..q2, yn, gen are answered
    path = judgment_file(run_dir, judge.judge_id)
    with path.open("a") as handle:  # a write cut short by a kill
        handle.write('{"qid": "q2", "judge": ')
    second = judge_run(run_dir, judge)
    assert (second.written, second.already_done) == (3, 2)
    lines = read_prediction_file(path)
    assert sorted(line["qid"] for line in lines) == ["gen", "q0", "q1", "q2", "yn"]
    assert all(line["judge"] == f"hf:{tiny_judge_path}" and line["prompt_version"] == PROMPT_VERSION
               for line in lines)
    assert all(isinstance(line["raw"], str) for line in lines)
    assert judge_run(run_dir, judge).written == 0

    scores = score_run(run_dir, n_boot=20)
    judged = scores["judged"]["activitynetqa"]
    assert judged["judge"] == judge.judge_id
    from eval.report import make_report

    assert f"`{judge.judge_id}`" in make_report(run_dir, n_boot=0).read_text()
    assert judged["unanswered"] == 2  # q3 failed, q4 missing
    assert judged["judged"] + judged["unparsed"] == 4
    assert scores["judged"]["mlvu"]["judged"] + scores["judged"]["mlvu"]["unparsed"] == 1


def test_judged_metrics_count_gaps_as_wrong(run_dir: Path) -> None:
    judge_id = "openai:hand@http://127.0.0.1:1/v1"
    verdicts = {"q0": (True, 5), "q1": (True, 4), "q2": (False, 1), "yn": (None, None)}
    with PredictionWriter(judgment_file(run_dir, judge_id), fsync=False) as writer:
        for qid, (correct, score) in verdicts.items():
            writer.write({"qid": qid, "judge": judge_id, "correct": correct, "score": score, "error": None})
    judged = score_run(run_dir, n_boot=20)["judged"]["activitynetqa"]
    # 6 activitynetqa questions: q0, q1 right (5, 4), q2 wrong (1), yn unreadable, q3/q4 unanswered
    assert judged["metrics"]["judge_accuracy"] == pytest.approx(2 / 6)
    assert judged["metrics"]["judge_score"] == pytest.approx(10 / 6)
    assert (judged["judged"], judged["unparsed"], judged["unanswered"], judged["judge_errors"]) == (3, 1, 2, 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def judge_server(tiny_judge_path: Path):
    """`streamvqa eval judge-serve` in its own process on 127.0.0.1; stops itself after 120 s at most."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "eval", "judge-serve", str(tiny_judge_path), "--port", str(port),
         "--name", "tiny-judge", "--device", "cpu", "--max-seconds", "120"],
        cwd=ROOT, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # printed once listening
        assert "serving" in line, process.stderr.read()
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_openai_endpoint_judge_matches_local_judge(run_dir: Path, tiny_judge_path: Path, judge_server: str) -> None:
    local = HFChatJudge(str(tiny_judge_path), device="cpu", local_files_only=True)
    remote = make_judge("openai:tiny-judge", judge_server)
    judge_run(run_dir, local)
    summary = judge_run(run_dir, remote)
    assert summary.written == 5 and summary.errors == 0
    local_raw = {line["qid"]: line["raw"] for line in read_prediction_file(judgment_file(run_dir, local.judge_id))}
    remote_raw = {line["qid"]: line["raw"] for line in read_prediction_file(judgment_file(run_dir, remote.judge_id))}
    assert remote_raw == local_raw  # same model, greedy: the endpoint adds nothing and loses nothing

    with pytest.raises(UserInputError, match="--judge-id"):
        load_judgments(run_dir)  # two judges: the user must choose
    assert score_run(run_dir, n_boot=0, judge_id=remote.judge_id)["judged"]["activitynetqa"]["judge"] == remote.judge_id

    bad = urllib.request.Request(judge_server + "/chat/completions", data=b'{"messages": 3}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(bad, timeout=10)
    assert error.value.code == 400 and "messages" in error.value.read().decode()
    assert "tiny-judge" in urllib.request.urlopen(judge_server + "/models", timeout=10).read().decode()


def test_dead_endpoint_stops_with_clear_error_and_keeps_judgments(run_dir: Path) -> None:
    dead = OpenAIChatJudge("m", f"http://127.0.0.1:{free_port()}/v1", retries=0, timeout_s=5)
    with pytest.raises(JudgeUnavailable, match="not answering.*--base-url"):
        judge_run(run_dir, dead)
    assert read_prediction_file(judgment_file(run_dir, dead.judge_id)) == []


@pytest.mark.parametrize("spec", ["gpt-4", "hf:", "openai:"])
def test_bad_judge_spec(spec: str) -> None:
    with pytest.raises(UserInputError):
        make_judge(spec)


def test_openai_judge_needs_base_url() -> None:
    with pytest.raises(UserInputError, match="--base-url"):
        make_judge("openai:gpt-4o")


def test_missing_hf_judge_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(JudgeUnavailable, match="chat model"):
        HFChatJudge(str(tmp_path / "nope"), device="cpu", local_files_only=True)
