"""End to end, offline, as a user runs it: needle videos -> run (killed midway) -> resume -> score ->
report with plots; and the same run on a local Ray cluster with 2 workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.manifest import load_manifest
from eval.predictions import read_prediction_file

ROOT = Path(__file__).resolve().parents[1]
RUN_FLAGS = ["--fps", "1", "--max-new-tokens", "4", "--device", "cpu", "--dtype", "float32"]


def cli(capfd: pytest.CaptureFixture, *args: str) -> str:
    from pipeline.cli import main

    assert main(list(args)) == 0, capfd.readouterr().err
    return capfd.readouterr().out


@pytest.fixture(scope="module")
def needle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from eval.needle import NeedleSpec, generate

    out = tmp_path_factory.mktemp("needle")
    generate(NeedleSpec(minutes=[0.25, 0.5], depths=[0.2, 0.8], deltas=[0.0, 3.0]), out)
    return out


def test_needle_manifest(needle: Path) -> None:
    records = load_manifest(needle / "manifest.jsonl").records
    assert len({r.video.path for r in records}) == 4 and all(Path(r.video.path).is_file() for r in records)
    kinds = {r.meta["kind"] for r in records}
    assert kinds == {"color", "when", "color_stream"}
    for r in records:
        if r.meta["kind"] == "color_stream":
            assert r.ask_time == pytest.approx(r.meta["needle_end"] + r.meta["delay"], abs=1e-3)
        if r.meta["kind"] == "when":
            assert r.options[0].startswith("Between 0:00 and")


@pytest.mark.timeout(300)
def test_run_killed_midway_resumes_then_scores_and_reports(
    needle: Path, tiny_checkpoints: dict, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    model = str(tiny_checkpoints["qwen2_5_vl"])
    out = tmp_path / "run"
    predictions = out / "predictions.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "eval", "run", str(needle / "manifest.jsonl"), "--model", model,
         "--out", str(out), *RUN_FLAGS],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if predictions.is_file() and len(predictions.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode() if process.stderr else ""
    before = read_prediction_file(predictions)
    total = len(load_manifest(needle / "manifest.jsonl").records)
    assert 4 <= len(before) < total

    printed = cli(capfd, "eval", "run", str(needle / "manifest.jsonl"), "--model", model, "--out", str(out),
                  *RUN_FLAGS)
    assert f"{total - len(before)} new answer(s)" in printed
    assert f"{len(before)} of {total} were already done" in printed
    after = read_prediction_file(predictions)
    assert [line["qid"] for line in after[: len(before)]] == [line["qid"] for line in before]
    assert after[: len(before)] == before  # answered questions were not redone
    assert len({line["qid"] for line in after}) == len(after) == total

    printed = cli(capfd, "eval", "score", str(out), "--bootstrap", "100")
    assert f"{total} of {total} question(s) answered" in printed and "needle: accuracy" in printed
    scores = json.loads((out / "scores.json").read_text())
    needle_score = scores["benchmarks"]["needle"]
    assert needle_score["questions"] == total and 0 <= needle_score["metrics"]["accuracy"] <= 1
    assert set(needle_score["breakdowns"]["minutes"]) == {"0.25", "0.5"}
    assert scores["efficiency"]["ingest_frames_per_s"] > 0

    cli(capfd, "eval", "report", str(out))
    report = (out / "report.md").read_text()
    assert "| needle | accuracy |" in report and "## Efficiency" in report
    for name in ("accuracy_per_task_needle", "accuracy_length_x_depth", "accuracy_vs_delay", "efficiency"):
        image = out / "plots" / f"{name}.png"
        assert image.is_file() and image.read_bytes()[:4] == b"\x89PNG" and f"plots/{name}.png" in report


@pytest.mark.timeout(300)
def test_ray_backend_on_a_local_two_worker_cluster(
    needle: Path, tiny_checkpoints: dict, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'streamvqa[ray]'")
    from eval.manifest import write_manifest
    from eval.ray_backend import PACKAGE_ROOT

    records = [r for r in load_manifest(needle / "manifest.jsonl").records if "0.25m" in r.video.id]
    manifest = tmp_path / "small.jsonl"
    write_manifest(records, manifest)
    out = tmp_path / "ray-run"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": PACKAGE_ROOT, "HF_HUB_OFFLINE": "1"}})
    try:
        assert ray.cluster_resources()["CPU"] == 2
        printed = cli(capfd, "eval", "run", str(manifest), "--model", str(tiny_checkpoints["qwen2_5_vl"]),
                      "--out", str(out), "--backend", "ray", "--workers", "2", *RUN_FLAGS)
        assert f"{len(records)} new answer(s) (0 error(s))" in printed
    finally:
        ray.shutdown()
    assert [p.name for p in out.glob("predictions*.jsonl")] == ["predictions.jsonl"]  # shard files merged
    lines = read_prediction_file(out / "predictions.jsonl")
    assert sorted(line["qid"] for line in lines) == sorted(r.qid for r in records)
    assert {line["worker"] for line in lines} <= {"w0", "w1"}
    assert json.loads((out / "run.json").read_text())["backend"] == "ray"
    printed = cli(capfd, "eval", "score", str(out), "--bootstrap", "50")
    assert f"{len(records)} of {len(records)} question(s) answered" in printed
