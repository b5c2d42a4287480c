"""Smoke test of the latency benchmark: its main runs end to end on the tiny model and writes valid JSON.

No timing is asserted (the machine is shared); only that every measurement is present and sane.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.bench import latency


@pytest.mark.timeout(120)
def test_latency_main_writes_valid_json_on_the_tiny_model(tmp_path: Path) -> None:
    out = tmp_path / "latency.json"
    latency.main([
        "--run", "tiny:3136:0.2,0.4", "--questions", "2", "--max-new-tokens", "3", "--baseline-frames", "4",
        "--clip-seconds", "4", "--video-size", "160", "120", "--window-frames", "4", "--budget-tokens", "8",
        "--engine-answers", "1", "--engine-max-new-tokens", "4", "--engine-idle-s", "0.3",
        "--out", str(out), "--plot", str(tmp_path / "latency.png"),
    ])
    results = json.loads(out.read_text())
    (run,) = results["runs"]
    assert [c["frames_seen"] for c in run["checkpoints"]] == [12, 24]
    for entry in run["checkpoints"]:
        assert set(entry["methods"]) == {"streaming", "reencode_4"}
        for method in entry["methods"].values():
            assert len(method["ttft_s"]) == 2 and all(0 < t <= total for t, total in
                                                      zip(method["ttft_s"], method["total_s"]))
        assert entry["ttft_speedup_vs_reencode_4"] > 0
    engine = run["ingest_while_answering"]
    assert engine["frames_encoded"] > 0 and engine["frames_dropped"] == 0
    assert len(engine["answers"]) == 1 and engine["answers"][0]["first_token_s"] > 0
