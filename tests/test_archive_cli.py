"""``streamvqa ask --archive [DIR] --image PATH --json`` end to end (tiny model, real encoded video)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from eval.needle import encode_needles_video, needle_frame
from pipeline.cli import main

SIZE = (64, 48)


def run_main(capfd: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capfd.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def needle_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("archive_cli")
    video = folder / "needle.mp4"
    encode_needles_video(video, 60.0, 1.0, SIZE, [(20.0, 24.0, (230, 40, 230))], seed=0)
    image = folder / "needle.png"
    cv2.imwrite(str(image), cv2.cvtColor(needle_frame((230, 40, 230), SIZE), cv2.COLOR_RGB2BGR))
    return video, image


def test_ask_with_archive_and_image_reports_retrieved_frames(
    capfd: pytest.CaptureFixture, tiny_checkpoints, needle_video: tuple[Path, Path], tmp_path: Path
) -> None:
    video, image = needle_video
    code, out, err = run_main(
        capfd, "ask", str(video), "--model", str(tiny_checkpoints["qwen2_vl"]), "--question", "When did this appear?",
        "--image", str(image), "--archive", str(tmp_path / "archive"), "--archive-ram-mb", "0.02", "--top-k", "4",
        "--window-frames", "8", "--budget-tokens", "0", "--max-new-tokens", "3", "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert {20.0, 21.0, 22.0, 23.0} <= set(data["retrieved"]) and len(data["retrieved"]) == 8
    assert data["archive"]["archived_blocks"] == 26  # 60 frames = 30 blocks, 4 in the window
    assert data["archive"]["disk_blocks"] > 0
    assert (tmp_path / "archive" / "archive.jsonl").exists()


def test_image_without_archive_and_missing_image_are_clear_errors(
    capfd: pytest.CaptureFixture, tiny_checkpoints, needle_video: tuple[Path, Path], tmp_path: Path
) -> None:
    video, image = needle_video
    model = str(tiny_checkpoints["qwen2_vl"])
    code, _, err = run_main(capfd, "ask", str(video), "--model", model, "-q", "When?", "--image", str(image))
    assert code == 2 and "add --archive" in err
    code, _, err = run_main(capfd, "ask", str(video), "--model", model, "-q", "When?", "--archive",
                            "--image", str(tmp_path / "nope.png"))
    assert code == 2 and "cannot read the image" in err
