"""Frame sources on real encoded video: decord files, ffmpeg pipes, OpenCV captures, a live HTTP stream.

Videos are made by ffmpeg (tests/video_factory.py); frame ``k`` of the indexed video shows a grey level
that encodes ``k``, so the tests check *which* frames came out, not only how many. The live stream is an
ffmpeg HTTP server on 127.0.0.1 started and killed by the tests. Every test has a timeout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import SourceError
from pipeline.frames import Frame
from pipeline.sources import (
    FFmpegSource,
    FileSource,
    FpsSampler,
    FrameSource,
    LiveSource,
    ffmpeg_exe,
    ffprobe_exe,
    fit_size,
    open_source,
    select_indices,
)
from pipeline.sources.base import TimedImage
from pipeline.sources.ffmpeg_log import FFmpegLog, diagnose, parse_video_stream_line
from pipeline.sources.sampling import check_sampling_args
from pipeline.sources.threaded import END_OF_STREAM, ReaderThread
from tests.video_factory import (
    HttpStreamServer,
    SilentServer,
    frame_index,
    free_port,
    make_audio_only,
    make_indexed_video,
    make_test_video,
    make_text_as_video,
    truncate_copy,
)

ROOT = Path(__file__).resolve().parents[1]
NUM_FRAMES = 40  # the indexed video: 40 frames at 10 fps, 160x120, a keyframe every second


def _opencv_reads_network() -> bool:
    try:
        import cv2
    except ImportError:
        return False
    return re.search(r"FFMPEG:\s+YES", cv2.getBuildInformation()) is not None


needs_opencv_ffmpeg = pytest.mark.skipif(
    not _opencv_reads_network(), reason="this OpenCV build has no FFmpeg video I/O backend, so it cannot read URLs"
)


def indices(frames: list[Frame]) -> list[int]:
    return [frame_index(f.rgb) for f in frames]


def stamps(frames: list[Frame]) -> list[float]:
    return [round(f.timestamp, 6) for f in frames]


def assert_one_line_error(error: SourceError, *needles: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert " — " in message, f"message should name the problem and the fix: {message}"
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


# --------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every video and bad input the tests use, made once per module."""
    root = tmp_path_factory.mktemp("media")
    indexed = make_indexed_video(root / "indexed.mp4", num_frames=NUM_FRAMES, fps=10, size=(160, 120), gop=10)
    folder = root / "a_folder.mp4"
    folder.mkdir()
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    return {
        "indexed": indexed,
        "faststart": make_indexed_video(root / "faststart.mp4", num_frames=NUM_FRAMES, gop=10, faststart=True),
        "missing": root / "does_not_exist.mp4",
        "directory": folder,
        "empty": empty,
        "text": make_text_as_video(root / "notes.mp4"),
        "truncated": truncate_copy(indexed, root / "truncated.mp4", 0.5),
        "audio_m4a": make_audio_only(root / "tone.m4a"),
        "audio_mp4": make_audio_only(root / "tone.mp4"),
    }


@pytest.fixture
def server(media: dict[str, Path]) -> Iterator[HttpStreamServer]:
    """A live HTTP MPEG-TS stream of the indexed video (looped, real time, stops by itself after 15 s)."""
    with HttpStreamServer(media["indexed"], duration=15.0, loop=True, realtime=True) as live:
        yield live


# --------------------------------------------------------------------------------------------------
# sampling, sizing, helpers


@pytest.mark.timeout(60)
def test_sampler_keeps_the_first_frame_at_or_after_each_sample_time() -> None:
    ten_fps = [k / 10 for k in range(40)]
    assert select_indices(ten_fps, fps=2) == list(range(0, 40, 5))
    assert select_indices(ten_fps, fps=3)[:5] == [0, 4, 7, 10, 14]
    assert select_indices(ten_fps, fps=20) == list(range(40))  # never invents frames
    assert select_indices(ten_fps, start=1.0, end=2.0) == list(range(10, 21))  # end inclusive
    assert select_indices(ten_fps, fps=2, start=1.05, end=2.5) == [11, 16, 21]  # t0 = first kept frame
    ntsc = [k * 1001 / 30000 for k in range(300)]
    kept = select_indices(ntsc, fps=1)
    assert len(kept) == 10 and all(ntsc[i] >= n - 1e-9 and ntsc[i - 1] < n for n, i in enumerate(kept) if i)


@pytest.mark.timeout(60)
def test_sampler_skips_gaps_without_bursts() -> None:
    sampler = FpsSampler(fps=2)
    kept = [t for t in (0.0, 0.1, 2.0, 2.1, 2.4, 2.5, 2.6) if sampler.keep(t)]
    assert kept == [0.0, 2.0, 2.5]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"fps": 0}, "fps=0"),
        ({"fps": -2.0}, "fps=-2.0"),
        ({"start": -1}, "start=-1"),
        ({"start": 3, "end": 2}, "start=3"),
    ],
)
def test_sampling_args_are_validated(kwargs: dict, needle: str) -> None:
    args = {"fps": None, "start": None, "end": None, **kwargs}
    with pytest.raises(SourceError) as caught:
        check_sampling_args("clip.mp4", **args)
    assert_one_line_error(caught.value, needle, "clip.mp4")


@pytest.mark.timeout(60)
def test_fit_size_keeps_aspect_and_even_sizes() -> None:
    assert fit_size(1920, 1080, max_side=448) == (448, 252)
    assert fit_size(1080, 1920, max_side=449) == (252, 448)
    assert fit_size(640, 360, max_side=100) == (100, 56)
    assert fit_size(160, 120, max_side=448) == (160, 120)  # never enlarges
    assert fit_size(160, 120, size=(33, 17)) == (33, 17)


@pytest.mark.timeout(60)
def test_ffmpeg_binaries_are_found() -> None:
    exe = ffmpeg_exe()
    result = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, timeout=30)
    assert result.returncode == 0 and b"ffmpeg version" in result.stdout
    probe = ffprobe_exe()
    assert probe is None or os.path.isfile(probe)


@pytest.mark.timeout(60)
def test_ffmpeg_log_parses_the_stream_header() -> None:
    log = FFmpegLog(stream=None)  # type: ignore[arg-type]  # fed by hand, not started
    for line in [
        "Input #0, mpegts, from 'http://127.0.0.1:1/live.ts':",
        "  Duration: 00:01:02.50, start: 1.400000, bitrate: N/A",
        "  Stream #0:0[0x100]: Video: h264 (High) ([27][0][0][0] / 0x001B), yuv420p(progressive), 1280x720 "
        "[SAR 1:1 DAR 16:9], 29.97 fps, 29.97 tbr, 90k tbn",
        "Output #0, rawvideo, to 'pipe:':",
        "  Stream #0:0: Video: rawvideo (RGB[24] / 0x18424752), rgb24(pc, gbr/unknown/unknown, progressive), "
        "448x252, q=2-31, 4608 kb/s, 2 fps, 2 tbn",
    ]:
        log.feed(line)
    assert log.input_video is not None and (log.input_video.width, log.input_video.height) == (1280, 720)
    assert log.input_video.fps == pytest.approx(29.97)
    assert log.output_video is not None and (log.output_video.width, log.output_video.height, log.output_video.fps) == (
        448,
        252,
        2.0,
    )
    assert log.duration == pytest.approx(62.5)
    assert log.header_ready.is_set()
    assert parse_video_stream_line("  Stream #0:1: Audio: aac, 44100 Hz") is None
    assert diagnose(["[tcp @ 0x1] Connection to tcp://127.0.0.1:9 failed: Connection refused"]) == "connection refused"


# --------------------------------------------------------------------------------------------------
# the threaded helper and the base class


def _failing_decoder() -> Iterator[int]:
    yield 1
    yield 2
    raise OSError("decoder exploded at frame 3")


@pytest.mark.timeout(60)
def test_reader_thread_reraises_the_decoder_exception_in_the_consumer() -> None:
    reader: ReaderThread[int] = ReaderThread(_failing_decoder, maxsize=4)
    reader.start()
    assert reader.get() == 1
    assert reader.get() == 2
    with pytest.raises(OSError, match="decoder exploded"):
        reader.get()
    assert reader.get() is END_OF_STREAM  # raised once, then the stream is over
    assert reader.stop() and not reader.alive


@pytest.mark.timeout(60)
def test_reader_thread_drop_oldest_keeps_the_newest_and_counts() -> None:
    reader: ReaderThread[int] = ReaderThread(lambda: iter(range(10)), maxsize=2, drop_oldest=True)
    reader.start()
    deadline = time.monotonic() + 10
    while reader.dropped < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reader.dropped == 8
    assert [reader.get(), reader.get(), reader.get()] == [8, 9, END_OF_STREAM]
    reader.stop()


@pytest.mark.timeout(60)
def test_reader_thread_blocking_mode_loses_nothing() -> None:
    reader: ReaderThread[int] = ReaderThread(lambda: iter(range(50)), maxsize=2)
    reader.start()
    got = []
    while (item := reader.get()) is not END_OF_STREAM:
        got.append(item)
        time.sleep(0.001)
    assert got == list(range(50)) and reader.dropped == 0
    reader.stop()


class ScriptedSource(FrameSource):
    """A source without a decoder: yields ``count`` tiny frames, then blocks and/or raises."""

    kind = "scripted"

    def __init__(
        self,
        count: int,
        error: BaseException | None = None,
        block: threading.Event | None = None,
        drop_oldest: bool = False,
        queue_size: int = 4,
    ) -> None:
        super().__init__("scripted://test", queue_size=queue_size, drop_oldest=drop_oldest)
        self.count, self.error, self.block = count, error, block

    def _read(self) -> Iterator[TimedImage]:
        for k in range(self.count):
            self.frames_read += 1
            yield k / 10, np.full((2, 2, 3), k, dtype=np.uint8)
        if self.block is not None:
            while not self.block.is_set() and not self.stopping:
                self.block.wait(0.05)
        if self.error is not None:
            raise self.error


@pytest.mark.timeout(60)
def test_io_error_in_the_reader_thread_becomes_a_source_error() -> None:
    source = ScriptedSource(3, error=OSError("disk read failed"))
    got: list[Frame] = []
    with pytest.raises(SourceError) as caught:
        for frame in source:
            got.append(frame)
    assert [f.index for f in got] == [0, 1, 2] and [f.timestamp for f in got] == [0.0, 0.1, 0.2]
    assert isinstance(caught.value.__cause__, OSError)
    assert_one_line_error(caught.value, "scripted://test", "disk read failed")
    assert source.end_reason is not None and source.end_reason.startswith("error: ")
    assert source.closed and not source.reader_alive


@pytest.mark.timeout(60)
def test_a_bug_in_the_reader_thread_is_reraised_unchanged() -> None:
    source = ScriptedSource(1, error=KeyError("oops"))
    with pytest.raises(KeyError):
        list(source)
    assert source.end_reason is not None and "KeyError" in source.end_reason


@pytest.mark.timeout(60)
def test_close_from_another_thread_unblocks_a_waiting_consumer() -> None:
    source = ScriptedSource(2, block=threading.Event())
    timer = threading.Timer(0.3, source.close)
    started = time.monotonic()
    timer.start()
    frames = list(source)  # would wait forever for a third frame
    assert time.monotonic() - started < 5
    assert len(frames) == 2 and source.end_reason == "closed" and not source.reader_alive
    timer.join()


@pytest.mark.timeout(60)
def test_live_policy_drops_the_oldest_frames_for_a_slow_consumer() -> None:
    source = ScriptedSource(50, drop_oldest=True, queue_size=2)
    iterator = iter(source)
    first = next(iterator)  # starts the reader; which frame comes first depends on timing
    deadline = time.monotonic() + 10
    while source.frames_read < 50 and time.monotonic() < deadline:
        time.sleep(0.01)  # the consumer is "slow": the reader keeps dropping the oldest
    rest = list(iterator)
    assert 1 <= len(rest) <= 2  # what the queue held: the freshest frames
    assert stamps(rest) == [round(k / 10, 6) for k in range(50 - len(rest), 50)]
    assert source.frames_dropped > 0 and first.timestamp < rest[0].timestamp
    assert 1 + len(rest) + source.frames_dropped == source.frames_read == 50
    assert [f.index for f in [first, *rest]] == list(range(1 + len(rest)))  # positions in the yielded sequence


# --------------------------------------------------------------------------------------------------
# FileSource (decord)


@pytest.mark.timeout(60)
def test_file_source_decodes_every_frame(media: dict[str, Path]) -> None:
    with FileSource(media["indexed"]) as source:
        info = source.describe()
        frames = list(source)
    assert indices(frames) == list(range(NUM_FRAMES))
    assert stamps(frames) == [round(k / 10, 6) for k in range(NUM_FRAMES)]
    assert [f.index for f in frames] == list(range(NUM_FRAMES))
    assert all(f.rgb.shape == (120, 160, 3) and f.rgb.dtype == np.uint8 for f in frames)
    assert info["kind"] == "file" and info["spec"] == str(media["indexed"])
    assert info["native_fps"] == pytest.approx(10) and info["duration"] == pytest.approx(4.0)
    assert info["size"] == (160, 120) and info["num_frames"] == NUM_FRAMES
    assert source.frames_read == source.frames_yielded == NUM_FRAMES and source.frames_dropped == 0
    assert source.end_reason == "end of stream" and source.closed


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "fps, expected",
    [(2, list(range(0, 40, 5))), (3, [0, 4, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37]), (0.5, [0, 20])],
)
def test_file_source_samples_to_a_target_fps(media: dict[str, Path], fps: float, expected: list[int]) -> None:
    with FileSource(media["indexed"], fps=fps) as source:
        frames = list(source)
    assert indices(frames) == expected
    assert stamps(frames) == [round(k / 10, 6) for k in expected]
    assert source.frames_read == len(expected)  # only the sampled frames are decoded


@pytest.mark.timeout(60)
def test_file_source_clips_start_and_inclusive_end(media: dict[str, Path]) -> None:
    with FileSource(media["indexed"], start=1.0, end=2.0) as source:
        assert indices(list(source)) == list(range(10, 21))
    with FileSource(media["indexed"], fps=2, start=1.0, end=2.0) as source:
        frames = list(source)
    assert stamps(frames) == [1.0, 1.5, 2.0] and indices(frames) == [10, 15, 20]
    with FileSource(media["indexed"], start=3.5, end=99) as source:
        assert indices(list(source)) == list(range(35, 40))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kwargs, shape", [({"size": (64, 48)}, (48, 64, 3)), ({"max_side": 80}, (60, 80, 3))])
def test_file_source_resizes_at_decode_time(media: dict[str, Path], kwargs: dict, shape: tuple) -> None:
    with FileSource(media["indexed"], fps=2, **kwargs) as source:
        frames = list(source)
        assert source.describe()["size"] == (shape[1], shape[0])
        assert source.describe()["native_size"] == (160, 120)
    assert all(f.rgb.shape == shape for f in frames)
    assert indices(frames) == list(range(0, 40, 5))


@pytest.mark.timeout(60)
def test_file_source_never_drops_for_a_slow_consumer(media: dict[str, Path]) -> None:
    with FileSource(media["indexed"], queue_size=2, batch_size=8) as source:
        frames = []
        for frame in source:
            frames.append(frame)
            time.sleep(0.005)
    assert indices(frames) == list(range(NUM_FRAMES)) and source.frames_dropped == 0


@pytest.mark.timeout(60)
def test_file_source_realtime_paces_on_the_wall_clock(media: dict[str, Path]) -> None:
    walls: list[float] = []
    with FileSource(media["indexed"], fps=10, end=0.8, realtime=True) as source:
        frames = []
        for frame in source:
            walls.append(time.monotonic())
            frames.append(frame)
    assert len(frames) == 9
    for frame, wall in zip(frames, walls):
        assert wall - walls[0] >= frame.timestamp - frames[0].timestamp - 0.02
    assert walls[-1] - walls[0] >= 0.78


@pytest.mark.timeout(60)
def test_close_mid_iteration_releases_the_reader(media: dict[str, Path]) -> None:
    source = FileSource(media["indexed"], queue_size=2, batch_size=4)
    head = [next(source) for _ in range(3)]
    assert source.reader_alive
    source.close()
    source.close()  # idempotent
    assert not source.reader_alive and source.end_reason == "closed"
    assert indices(head) == [0, 1, 2]
    assert list(source) == []


@pytest.mark.timeout(60)
def test_a_source_is_one_pass_and_loops_resume_where_they_stopped(media: dict[str, Path]) -> None:
    with FileSource(media["indexed"], fps=2) as source:
        assert iter(source) is source
        assert source.describe()["frames"] == 8
        first = []
        for frame in source:
            first.append(frame)
            if frame.index == 2:
                break
        assert not source.closed and source.end_reason is None
        rest = list(source)
        assert indices(first) == [0, 5, 10] and indices(rest) == [15, 20, 25, 30, 35]
        assert source.closed and source.end_reason == "end of stream"  # the end closes it
        assert list(source) == []


# --------------------------------------------------------------------------------------------------
# bad input


BAD_FILES = [
    ("missing", "video file not found"),
    ("directory", "is a directory"),
    ("empty", "empty"),
    ("text", "not a valid video"),
    ("truncated", "truncated or corrupt"),
    ("audio_m4a", "no video stream"),
    ("audio_mp4", "no video stream"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name, needle", BAD_FILES)
def test_bad_files_raise_a_helpful_source_error(media: dict[str, Path], name: str, needle: str) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        open_source(media[name])
    assert time.monotonic() - started < 5
    assert_one_line_error(caught.value, str(media[name]), needle)
    assert isinstance(caught.value, ValueError)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["missing", "directory", "empty", "text", "truncated", "audio_m4a", "audio_mp4"])
def test_bad_files_through_ffmpeg_raise_a_source_error(media: dict[str, Path], name: str) -> None:
    with pytest.raises(SourceError) as caught:
        FFmpegSource(media[name], open_timeout=5)
    assert_one_line_error(caught.value, str(media[name]))
    if name.startswith("audio"):
        assert "no video stream" in str(caught.value)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"fps": 0}, "fps=0"),
        ({"fps": -1.0}, "fps=-1.0"),
        ({"start": 4.0}, "past the end"),
        ({"start": 2.0, "end": 1.0}, "after end"),
        ({"size": (64, 48), "max_side": 80}, "not both"),
        ({"max_side": 0}, "max_side=0"),
    ],
)
def test_bad_arguments_raise_a_helpful_source_error(media: dict[str, Path], kwargs: dict, needle: str) -> None:
    with pytest.raises(SourceError) as caught:
        FileSource(media["indexed"], **kwargs)
    assert_one_line_error(caught.value, str(media["indexed"]), needle)


@pytest.mark.timeout(60)
def test_open_source_picks_the_backend(media: dict[str, Path]) -> None:
    video = media["indexed"]
    for backend, kind in [
        ("auto", FileSource),
        ("decord", FileSource),
        ("ffmpeg", FFmpegSource),
        ("opencv", LiveSource),
    ]:
        with open_source(str(video), fps=2, backend=backend) as source:
            assert isinstance(source, kind)
            assert indices(list(source)) == list(range(0, 40, 5)), backend
    with pytest.raises(SourceError) as caught:
        open_source(video, backend="gstreamer")
    assert_one_line_error(caught.value, "gstreamer", "'auto', 'decord', 'opencv', 'ffmpeg'")
    with pytest.raises(SourceError, match="unsupported URL scheme 'gopher2'"):
        open_source("gopher2://example/video")
    with pytest.raises(SourceError, match="decord reads local files only"):
        open_source("http://127.0.0.1:9/x.ts", backend="decord")
    with pytest.raises(SourceError, match="cannot read camera 3"):
        open_source(3, backend="ffmpeg")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("spec", [97, "97"])
def test_missing_camera_raises_a_source_error(spec: int | str) -> None:
    with pytest.raises(SourceError) as caught:
        open_source(spec)
    assert_one_line_error(caught.value, "cannot open camera 97")


# --------------------------------------------------------------------------------------------------
# FFmpegSource on files and stdin


@pytest.mark.timeout(60)
def test_ffmpeg_source_decodes_a_file(media: dict[str, Path]) -> None:
    with FFmpegSource(media["indexed"]) as source:
        info = source.describe()
        frames = list(source)
    assert indices(frames) == list(range(NUM_FRAMES))
    assert stamps(frames) == [round(k / 10, 6) for k in range(NUM_FRAMES)]
    assert info["kind"] == "ffmpeg" and info["size"] == (160, 120) and info["native_fps"] == pytest.approx(10)
    assert info["duration"] == pytest.approx(4.0) and not info["live"]
    assert source.end_reason == "end of stream"
    assert source.process is not None and source.process.returncode is not None


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "kwargs, expected, shape",
    [
        ({"fps": 2}, list(range(0, 40, 5)), (120, 160, 3)),
        ({"start": 1.0, "end": 2.0}, list(range(10, 21)), (120, 160, 3)),
        ({"fps": 2, "start": 1.0, "end": 2.0}, [10, 15, 20], (120, 160, 3)),
        ({"fps": 2, "max_side": 80}, list(range(0, 40, 5)), (60, 80, 3)),
        ({"fps": 2, "size": (64, 48)}, list(range(0, 40, 5)), (48, 64, 3)),
    ],
)
def test_ffmpeg_source_samples_clips_and_resizes(
    media: dict[str, Path], kwargs: dict, expected: list[int], shape: tuple
) -> None:
    with FFmpegSource(media["indexed"], **kwargs) as source:
        frames = list(source)
    assert indices(frames) == expected
    assert stamps(frames) == [round(k / 10, 6) for k in expected]
    assert all(f.rgb.shape == shape for f in frames)


@pytest.mark.timeout(60)
def test_ffmpeg_source_reads_stdin(media: dict[str, Path]) -> None:
    code = (
        "from pipeline.sources import open_source\n"
        "from tests.video_factory import frame_index\n"
        "with open_source('-', fps=2) as source:\n"
        "    print(type(source).__name__, [frame_index(f.rgb) for f in source])\n"
    )
    with open(media["faststart"], "rb") as stdin:
        result = subprocess.run(
            [sys.executable, "-c", code],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=50,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"FFmpegSource {list(range(0, 40, 5))}"


# --------------------------------------------------------------------------------------------------
# live streams on 127.0.0.1


@pytest.mark.timeout(60)
def test_ffmpeg_source_reads_a_live_http_stream_and_drops_when_slow(server: HttpStreamServer) -> None:
    source = open_source(server.url)
    assert isinstance(source, FFmpegSource) and source.describe()["live"]
    iterator = iter(source)
    head = [next(iterator) for _ in range(8)]
    time.sleep(1.2)  # ~12 frames arrive meanwhile; the queue holds 4, the rest are dropped
    tail = [next(iterator) for _ in range(3)]
    source.close()
    assert stamps(head) == [round(k / 10, 6) for k in range(8)]
    assert np.diff(indices(head)).tolist() == [1] * 7  # consecutive frames of the stream
    assert indices(head)[0] == 0
    assert source.frames_dropped > 0 and tail[0].index == 8
    assert all(b.timestamp > a.timestamp for a, b in zip(head + tail, (head + tail)[1:]))
    assert source.end_reason == "closed" and not source.reader_alive
    assert source.process is not None and source.process.returncode is not None


@pytest.mark.timeout(60)
def test_ffmpeg_source_survives_the_server_dying_mid_stream(server: HttpStreamServer) -> None:
    source = FFmpegSource(server.url, open_timeout=5)
    frames = []
    started = time.monotonic()
    for frame in source:
        frames.append(frame)
        if len(frames) == 5:
            server.stop()
        assert time.monotonic() - started < 20
    assert len(frames) >= 5
    assert source.end_reason is not None and source.end_reason != "closed"
    assert source.closed and source.process is not None and source.process.returncode is not None


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scheme, path", [("http", "/live.ts"), ("rtsp", "/live"), ("tcp", ""), ("rtmp", "/app/key")])
def test_dead_url_fails_fast(scheme: str, path: str) -> None:
    url = f"{scheme}://127.0.0.1:{free_port()}{path}"
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        FFmpegSource(url, open_timeout=3)
    assert time.monotonic() - started < 3 + 2
    assert_one_line_error(caught.value, url)


@pytest.mark.timeout(60)
def test_a_server_that_never_answers_hits_open_timeout() -> None:
    with SilentServer() as silent:
        url = silent.url("http")
        started = time.monotonic()
        with pytest.raises(SourceError) as caught:
            FFmpegSource(url, open_timeout=1.5)
        assert time.monotonic() - started < 1.5 + 2
    assert_one_line_error(caught.value, url)


@needs_opencv_ffmpeg
@pytest.mark.timeout(60)
def test_live_source_reads_a_live_http_stream(server: HttpStreamServer) -> None:
    source = open_source(server.url, backend="opencv", max_side=80)
    assert isinstance(source, LiveSource)
    iterator = iter(source)
    frames = [next(iterator) for _ in range(6)]
    source.close()
    assert all(f.rgb.shape == (60, 80, 3) for f in frames)
    assert frames[0].timestamp == 0.0
    assert all(b.timestamp > a.timestamp for a, b in zip(frames, frames[1:]))
    assert np.diff(indices(frames)).tolist() == [1] * 5
    assert source.end_reason == "closed" and not source.reader_alive
    assert source.describe()["kind"] == "live"


@needs_opencv_ffmpeg
@pytest.mark.timeout(60)
def test_live_source_survives_the_server_dying_mid_stream(server: HttpStreamServer) -> None:
    source = LiveSource(server.url, read_timeout=5)
    frames = []
    started = time.monotonic()
    for frame in source:
        frames.append(frame)
        if len(frames) == 5:
            server.stop()
        assert time.monotonic() - started < 20
    assert len(frames) >= 5 and source.end_reason is not None and source.end_reason != "closed"


@needs_opencv_ffmpeg
@pytest.mark.timeout(60)
def test_live_source_dead_url_fails_fast() -> None:
    url = f"http://127.0.0.1:{free_port()}/live.ts"
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        open_source(url, backend="opencv")
    assert time.monotonic() - started < 5
    assert_one_line_error(caught.value, url)


@pytest.mark.timeout(60)
def test_lavfi_pattern_videos_decode(tmp_path: Path) -> None:
    video = make_test_video(tmp_path / "pattern.mkv", seconds=1, fps=10, size=(96, 64), pattern="testsrc2")
    with open_source(video) as source:
        frames = list(source)
    assert len(frames) == 10 and frames[0].rgb.shape == (64, 96, 3) and frames[0].rgb.std() > 10
