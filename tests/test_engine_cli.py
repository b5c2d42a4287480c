"""``streamvqa watch --realtime --json``: questions typed at moments while the video plays, in a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli import ROOT, tiny_dir, video  # noqa: F401 - module fixtures shared with the CLI tests


@pytest.mark.timeout(180)
def test_watch_realtime_answers_questions_typed_while_the_video_plays(video: Path, tiny_dir: Path) -> None:  # noqa: F811
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pipeline.cli", "watch", str(video), "--model", str(tiny_dir), "--json",
               "--realtime", "--speed", "2", "--fps", "2", "--max-new-tokens", "4", "--until-end"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env, cwd=ROOT)
    try:
        started = time.monotonic()
        while "watching" not in process.stderr.readline():  # the model is loaded and the clip starts playing
            assert time.monotonic() - started < 90 and process.poll() is None
        time.sleep(1.0)  # 2 s of the 6 s clip, played at 2x
        for question in ("What happens?", "And now?"):
            process.stdin.write(question + "\n")
            process.stdin.flush()
            time.sleep(0.5)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    answers, final = lines[:-1], lines[-1]["session"]
    assert [a["question"] for a in answers] == ["What happens?", "And now?"]
    for answer in answers:
        assert {"question", "question_time", "answer", "frames_covered", "lag_s", "ttft_s"} <= set(answer)
        assert answer["status"] == "done" and answer["frames_covered"][1] >= answer["question_time"]
    assert final["frames_read"] == 12 and final["end_reason"] == "end of stream"
    assert final["frames_encoded"] + final["frames_buffered"] + final["frames_dropped"] == 12
