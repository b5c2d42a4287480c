"""The command line end to end, in subprocesses, as a user runs it (offline, tiny model, real video)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.video_factory import free_port, make_audio_only, make_test_video

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
    )


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("cli") / "clip.mp4", seconds=6, fps=10, size=(160, 120))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "tiny"
    result = run_cli("make-tiny", str(out))
    assert result.returncode == 0, result.stderr
    assert "random-weight" in result.stdout
    return out


@pytest.mark.timeout(180)
def test_ask_json(video: Path, tiny_dir: Path) -> None:
    result = run_cli("ask", str(video), "--model", str(tiny_dir), "--question", "What happens?", "--json",
                     "--fps", "2", "--max-new-tokens", "5")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data["answer"], str)
    assert data["frames_ingested"] == 12  # 6 s at 2 fps
    assert data["memory"]["device_tokens"] > 0 and data["memory"]["device_bytes"] > 0
    assert 0 <= data["timing"]["ttft_s"] <= data["timing"]["total_s"]
    assert data["frames_covered"] == [0.0, 5.5]


def run_main(capfd: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (no 7 s interpreter start), capturing fd-level output too."""
    from pipeline.cli import main

    code = main(list(args))
    out, err = capfd.readouterr()
    return code, out, err


def test_ask_at_covers_only_frames_up_to_that_time(video: Path, tiny_dir: Path, capfd) -> None:
    code, out, err = run_main(capfd, "ask", str(video), "--model", str(tiny_dir), "-q", "What happens?",
                              "--at", "2.2", "--fps", "2", "--json", "--max-new-tokens", "3")
    assert code == 0, err
    data = json.loads(out)
    assert data["question_time"] == 2.2
    assert data["frames_covered"] == [0.0, 2.0]
    assert data["frames_ingested"] == 5


@pytest.mark.timeout(180)
def test_watch_answers_questions_from_stdin(video: Path, tiny_dir: Path) -> None:
    result = run_cli("watch", str(video), "--model", str(tiny_dir), "--json", "--fps", "2",
                     "--max-new-tokens", "3", stdin="What happens?\n\nAnd now?\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    answers = [line for line in lines if "answer" in line]
    assert [a["question"] for a in answers] == ["What happens?", "And now?"]
    assert lines[-1]["session"]["frames_ingested"] >= 0


def _assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    message = err.strip()
    assert "Traceback" not in message
    assert message.startswith("error: "), message
    assert len(message.splitlines()) == 1, message
    for word in words:
        assert word in message, message


@pytest.mark.timeout(60)
def test_user_error_in_a_real_process(tmp_path: Path) -> None:
    result = run_cli("ask", str(tmp_path / "nope.mp4"), "-q", "hi")  # default hub model: never loaded
    _assert_one_line_error(result.returncode, result.stderr, "not found", "nope.mp4")


@pytest.mark.timeout(120)
def test_bad_inputs_are_one_line_errors(video: Path, tiny_dir: Path, tmp_path: Path, capfd, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = ["--model", str(tiny_dir)]

    def check(*args: str, words: tuple[str, ...]) -> None:
        _assert_one_line_error(*run_main(capfd, *args)[::2], *words)

    check("ask", str(tmp_path), *model, "-q", "hi", words=("directory",))
    text_file = tmp_path / "notes.mp4"
    text_file.write_text("this is not a video\n" * 50)
    check("ask", str(text_file), *model, "-q", "hi", words=("notes.mp4", "ffmpeg"))
    audio = make_audio_only(tmp_path / "sound.m4a")
    check("ask", str(audio), *model, "-q", "hi", words=("no video stream",))
    check("ask", str(video), *model, "-q", "   ", words=("empty",))
    check("ask", str(video), *model, "-q", "word " * 3000, words=("tokens", "shorten"))
    check("ask", str(video), "--model", str(tmp_path / "missing"), "-q", "hi", words=("make-tiny",))
    check("ask", str(video), "--model", "Qwen/Qwen2.5-VL-3B-Instruct", "-q", "hi", words=("make-tiny", "Hub"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"model_type": "bert"}')
    check("ask", str(video), "--model", str(tmp_path / "other"), "-q", "hi", words=("bert", "qwen2_5_vl"))
    check("ask", f"http://127.0.0.1:{free_port()}/dead.ts", *model, "-q", "hi", words=("127.0.0.1",))
    check("ask", str(video), *model, "-q", "hi", "--fps", "0", words=("fps",))
    check("ask", str(video), *model, "-q", "hi", "--policy", "magic", words=("magic", "sink_window"))


def test_listing_commands(capfd) -> None:
    assert "qwen2_5_vl" in run_main(capfd, "models")[1]
    listing = run_main(capfd, "policies")[1]
    for name in ("sink_window", "mixed_precision", "frame_merge"):
        assert name in listing


def test_ask_with_a_byte_budget_and_mixed_precision(video: Path, tiny_dir: Path, capfd) -> None:
    code, out, err = run_main(capfd, "ask", str(video), "--model", str(tiny_dir), "-q", "What happens?", "--json",
                              "--fps", "2", "--max-new-tokens", "3", "--policy", "token_drop+key_norm+mixed_precision",
                              "--window-frames", "2", "--budget-bytes", "1K")  # fmt: skip
    assert code == 0, err
    memory = json.loads(out)["memory"]
    assert memory["budget_bytes"] == 1024 and 0 < memory["long_term_bytes"] <= 1024
    assert memory["quantized_tokens"] > 0 and memory["policy"] == "token_drop+mixed_precision+key_norm"


def test_byte_sizes_parse() -> None:
    from pipeline.cli import parse_bytes

    assert [parse_bytes(t) for t in ("4096", "512K", "64M", "2G", "1.5GiB")] == [4096, 512 << 10, 64 << 20, 2 << 30,
                                                                                   3 << 29]  # fmt: skip
    with pytest.raises(Exception, match="512K"):
        parse_bytes("lots")
