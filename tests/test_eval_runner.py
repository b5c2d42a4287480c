"""The runner: sessions in ask-time order, deterministic shards, error lines instead of crashes, resume files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.manifest import Clip, ManifestRecord, Video, write_manifest
from eval.predictions import PredictionWriter, load_predictions
from eval.runner import RunOptions, run_local
from eval.sessions import parse_shard, plan_sessions, select_shard, shard_of
from pipeline.config import StreamConfig
from pipeline.errors import UserInputError
from tests.video_factory import make_test_video


def record(qid: str, video: str, ask_time: float | None = None, **kw) -> ManifestRecord:
    kw.setdefault("options", ["red", "blue"])
    kw.setdefault("answer", "A")
    return ManifestRecord(qid=qid, benchmark=kw.pop("benchmark", "demo"), question=kw.pop("question", "What color?"),
                          video=Video(video, Path(video).stem), ask_time=ask_time, **kw)


def test_sessions_sort_by_ask_time_and_shards_are_stable() -> None:
    records = [record("late", "a.mp4", None), record("t5", "a.mp4", 5.0), record("b", "b.mp4", 1.0),
               record("t2", "a.mp4", 2.0, turn_idx=1), record("t2first", "a.mp4", 2.0, turn_idx=0)]
    plans = plan_sessions(records)
    assert [p.session_id for p in plans] == ["demo:a", "demo:b"]
    assert [q.qid for q in plans[0].questions] == ["t2first", "t2", "t5", "late"]
    many = plan_sessions([record(f"q{i}", f"v{i}.mp4") for i in range(40)])
    shards = [select_shard(many, (i, 3)) for i in range(3)]
    assert sorted(p.session_id for s in shards for p in s) == sorted(p.session_id for p in many)
    assert all(shards) and shard_of("demo:v7", 3) == shard_of("demo:v7", 3)
    assert parse_shard("2/3") == (1, 3)
    for bad in ("0/3", "4/3", "x"):
        with pytest.raises(UserInputError, match="i/N"):
            parse_shard(bad)
    with pytest.raises(UserInputError, match="own session_id"):
        plan_sessions([record("x", "a.mp4"), record("y", "a.mp4", clip=Clip(0.0, 3.0))])


def test_prediction_files_cut_partial_lines_and_prefer_answers(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    with PredictionWriter(path) as writer:
        writer.write({"qid": "a", "response": "A", "error": None})
        writer.write({"qid": "b", "response": None, "error": "boom"})
    with path.open("a") as handle:
        handle.write('{"qid": "c", "resp')  # a kill in the middle of a line
    assert set(load_predictions(tmp_path)) == {"a", "b"}
    with PredictionWriter(path) as writer:  # reopening cuts the partial line before appending
        writer.write({"qid": "c", "response": "B", "error": None})
    (tmp_path / "predictions.shard-1-of-2.jsonl").write_text(
        json.dumps({"qid": "a", "response": None, "error": "late failure"}) + "\n"
        + json.dumps({"qid": "b", "response": "C", "error": None}) + "\n")
    best = load_predictions(tmp_path)
    assert [json.loads(x)["qid"] for x in path.read_text().splitlines()] == ["a", "b", "c"]
    assert best["a"]["response"] == "A" and best["b"]["response"] == "C" and best["c"]["response"] == "B"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("runner") / "clip.mp4", seconds=4, fps=10, size=(160, 120))


def tiny_config(path: Path) -> StreamConfig:
    config = StreamConfig().replace("model", model=str(path), device="cpu", dtype="float32", local_files_only=True)
    return config.replace("sampling", max_new_tokens=3).replace("source", fps=2.0)


@pytest.mark.timeout(240)
def test_errors_become_lines_and_the_run_goes_on(tiny_checkpoints: dict, clip: Path, tmp_path: Path) -> None:
    records = [
        record("missing-1", str(tmp_path / "nope.mp4"), 1.0),
        record("missing-2", str(tmp_path / "nope.mp4"), None),
        record("early", str(clip), 1.0),
        record("huge", str(clip), 2.0, question="why? " * 30_000, answer_type="open", options=[], answer=None),
        record("end", str(clip), None),
        record("poll", str(clip), 1.0, answer_type="proactive", options=[], answer=None, answer_text="x",
               benchmark="streamingbench", evidence={"time": 2.0},
               meta={"poll_prompt": "Is it time? Answer yes or no.", "poll_start": 2.0, "poll_end": 3.0}),
    ]
    manifest = tmp_path / "m.jsonl"
    write_manifest(records, manifest)
    out = tmp_path / "run"
    summary = run_local(RunOptions(manifest, out), tiny_config(tiny_checkpoints["qwen2_5_vl"]))
    assert (summary.total, summary.written, summary.errors) == (6, 6, 3)
    lines = load_predictions(out)
    assert "cannot open the video" in lines["missing-1"]["error"] and lines["missing-2"]["error"]
    assert "characters" in lines["huge"]["error"]  # the question's own limit, as a user error
    early, end, poll = lines["early"], lines["end"], lines["poll"]
    assert early["error"] is None and isinstance(early["response"], str)
    assert early["frames_covered"][1] <= 1.0 < end["frames_covered"][1]  # streamed, not re-cut
    assert end["frames_used"] == 8 and end["latency_s"] > 0 and end["peak_memory_bytes"] > 0
    assert 2.0 <= poll["response_time"] <= 3.0 and poll["polls"] >= 1
    again = run_local(RunOptions(manifest, out), tiny_config(tiny_checkpoints["qwen2_5_vl"]))
    assert again.written == 0 and again.already_done == 6  # resume: nothing left
    retried = run_local(RunOptions(manifest, out, retry_errors=True, limit=1),
                        tiny_config(tiny_checkpoints["qwen2_5_vl"]))
    assert retried.written == 1 and retried.errors == 1
    info = json.loads((out / "run.json").read_text())
    assert info["backend"] == "local" and len(info["invocations"]) == 3
