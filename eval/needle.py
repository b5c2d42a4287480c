"""Needle-in-a-haystack videos and their manifest (``streamvqa eval needle``).

Each video is a real H.264 file (ffmpeg, low frame rate, small frames): a slowly drifting grey
texture (the haystack) with, at a chosen depth, a needle of a chosen length: full-screen frames of
one saturated color with a white square in the middle. Its questions, one session per video:

* ``color`` (after the whole video): which color the flash was, 4 options;
* ``when`` (after the whole video): which quarter of the video it appeared in, 4 options;
* ``color_stream`` (streaming): the color question asked ``delay`` seconds after the needle ended,
  for each delay that falls inside the video.

``meta`` carries ``minutes``, ``depth``, ``needle_seconds``, ``kind`` and ``delay`` for the plots.
"""

from __future__ import annotations

import logging
import random
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eval.manifest import LETTERS, Clip, ManifestRecord, Video, write_manifest
from pipeline.errors import UserInputError
from pipeline.sources.ffmpeg_binary import ffmpeg_exe

logger = logging.getLogger(__name__)

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 190, 50), "blue": (40, 70, 230), "yellow": (235, 215, 30),
}
BENCHMARK = "needle"


@dataclass
class NeedleSpec:
    """What to generate.

    Attributes:
        minutes: haystack lengths (minutes, fractions allowed).
        depths: needle positions as a fraction of the video (0 = start, 1 = end).
        needle_seconds: needle lengths (s).
        deltas: delays (s) after the needle's end at which streaming questions are asked.
        fps: frame rate of the encoded videos.
        size: ``(width, height)``, even numbers.
        seed: colors and option order.
    """

    minutes: list[float]
    depths: list[float] = field(default_factory=lambda: [0.1, 0.5, 0.9])
    needle_seconds: list[float] = field(default_factory=lambda: [2.0])
    deltas: list[float] = field(default_factory=lambda: [0.0, 5.0])
    fps: float = 2.0
    size: tuple[int, int] = (160, 120)
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.minutes or any(m <= 0 for m in self.minutes):
            raise UserInputError(f"--minutes must be positive numbers, got {self.minutes}")
        if not self.depths or any(not 0 <= d <= 1 for d in self.depths):
            raise UserInputError(f"--depths must be fractions in [0, 1], got {self.depths}")
        if any(s <= 0 for s in self.needle_seconds) or any(d < 0 for d in self.deltas):
            raise UserInputError("--needle-seconds must be > 0 and --deltas >= 0")
        if self.fps <= 0 or self.size[0] % 2 or self.size[1] % 2 or min(self.size) < 16:
            raise UserInputError(f"--fps must be > 0 and --size even and at least 16x16, got {self.fps}, {self.size}")
        for minutes in self.minutes:
            for seconds in self.needle_seconds:
                if seconds >= minutes * 60:
                    raise UserInputError(
                        f"a {seconds} s needle does not fit in {minutes} min: shorten --needle-seconds")


def haystack_frame(texture: np.ndarray, t: float, size: tuple[int, int]) -> np.ndarray:
    """A grey ``(H, W, 3)`` frame: a coarse texture drifting with time ``t``."""
    width, height = size
    rows, cols = texture.shape
    shift = int(t * 0.5) % cols
    grid = np.roll(texture, shift, axis=1) + 10 * np.sin(t / 7.0)
    image = np.kron(np.clip(grid, 30, 200), np.ones((height // rows + 1, width // cols + 1)))[:height, :width]
    return np.repeat(image[:, :, None], 3, axis=2).astype(np.uint8)


def needle_frame(color: tuple[int, int, int], size: tuple[int, int]) -> np.ndarray:
    """A saturated full-screen color with a white square in the middle."""
    width, height = size
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = color
    side = min(width, height) // 3
    top, left = (height - side) // 2, (width - side) // 2
    frame[top: top + side, left: left + side] = 255
    return frame


def encode_video(path: Path, seconds: float, fps: float, size: tuple[int, int], needle: tuple[float, float],
                 color: tuple[int, int, int], seed: int) -> None:
    """Write the H.264 video: haystack everywhere except ``needle = (start, end)`` seconds."""
    encode_needles_video(path, seconds, fps, size, [(needle[0], needle[1], color)], seed)


def encode_needles_video(path: Path, seconds: float, fps: float, size: tuple[int, int],
                         needles: list[tuple[float, float, tuple[int, int, int]]], seed: int) -> None:
    """Write the H.264 video: haystack everywhere except each ``(start, end, color)`` needle's seconds."""
    width, height = size
    texture = np.random.default_rng(seed).uniform(40, 190, size=(6, 8))
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "pipe:0", "-c:v", "libx264", "-preset",
               "ultrafast", "-pix_fmt", "yuv420p", "-g", str(max(1, int(fps * 10))), str(path)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None
    flashes = [(start, end, needle_frame(color, size)) for start, end, color in needles]
    try:
        for k in range(int(round(seconds * fps))):
            t = k / fps
            frame = next((f for start, end, f in flashes if start <= t < end), None)
            process.stdin.write((haystack_frame(texture, t, size) if frame is None else frame).tobytes())
        process.stdin.close()
    except BrokenPipeError:
        pass
    assert process.stderr is not None
    errors = process.stderr.read()
    process.wait(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"ffmpeg failed writing {path}: {errors.decode(errors='replace').strip()}")


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _mc(options: list[str], correct: str, rng: random.Random) -> tuple[list[str], str]:
    shuffled = options[:]
    rng.shuffle(shuffled)
    return shuffled, LETTERS[shuffled.index(correct)]


def questions_for(video: Video, seconds: float, minutes: float, depth: float, length: float,
                  needle: tuple[float, float], color: str, deltas: list[float],
                  rng: random.Random) -> list[ManifestRecord]:
    """The manifest records of one needle video."""
    meta = {"minutes": minutes, "depth": depth, "needle_seconds": length, "color": color,
            "needle_start": needle[0], "needle_end": needle[1]}
    common = {"benchmark": BENCHMARK, "split": "synthetic", "video": video, "clip": Clip(),
              "session_id": f"{BENCHMARK}:{video.id}", "evidence": {"start": needle[0], "end": needle[1]}}
    flash = "A full-screen colored flash with a white square in the middle appeared in the video."
    color_q = f"{flash} What color was it?"
    records = []
    options, answer = _mc([c.capitalize() for c in COLORS], color.capitalize(), rng)
    records.append(ManifestRecord(qid=f"{video.id}-color", task_type="color", question=color_q, options=options,
                                  answer=answer, answer_text=color.capitalize(), meta={**meta, "kind": "color",
                                                                                      "delay": None}, **common))
    quarter = seconds / 4
    bins = [f"Between {_clock(i * quarter)} and {_clock((i + 1) * quarter)}" for i in range(4)]
    middle = (needle[0] + needle[1]) / 2
    truth = bins[min(3, int(middle // quarter))]
    records.append(ManifestRecord(
        qid=f"{video.id}-when", task_type="when",
        question=f"{flash} When did it appear?",
        options=bins, answer=LETTERS[bins.index(truth)], answer_text=truth,
        meta={**meta, "kind": "when", "delay": None}, **common))
    for turn, delta in enumerate(sorted(set(deltas))):
        at = needle[1] + delta
        if at > seconds:
            continue
        options, answer = _mc([c.capitalize() for c in COLORS], color.capitalize(), rng)
        records.append(ManifestRecord(
            qid=f"{video.id}-stream-{delta:g}s", task_type="color_stream", question=color_q, options=options,
            answer=answer, answer_text=color.capitalize(), ask_time=round(at, 3), turn_idx=turn,
            meta={**meta, "kind": "color_stream", "delay": delta}, **common))
    return records


def generate(spec: NeedleSpec, out: str | Path) -> tuple[Path, int, int]:
    """Write the videos under ``out/videos`` and ``out/manifest.jsonl``; returns (manifest, videos, questions)."""
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rng = random.Random(spec.seed)
    records: list[ManifestRecord] = []
    grid = [(m, d, s) for m in spec.minutes for d in spec.depths for s in spec.needle_seconds]
    for index, (minutes, depth, length) in enumerate(tqdm(grid, desc="needle videos", unit="video", disable=None)):
        seconds = minutes * 60
        start = round(depth * (seconds - length), 3)
        needle = (start, start + length)
        color = rng.choice(list(COLORS))
        name = f"needle-{minutes:g}m-d{depth:g}-n{length:g}s"
        path = out / "videos" / f"{name}.mp4"
        encode_video(path, seconds, spec.fps, spec.size, needle, COLORS[color], spec.seed + index)
        video = Video(str(path.resolve()), name, float(seconds))
        records += questions_for(video, seconds, minutes, depth, length, needle, color, spec.deltas, rng)
    manifest = out / "manifest.jsonl"
    write_manifest(records, manifest)
    logger.info("wrote %d videos and %d questions to %s", len(grid), len(records), out)
    return manifest, len(grid), len(records)
