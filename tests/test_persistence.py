"""Session save and resume: a resumed session answers exactly as the uninterrupted one, every fault
in a saved folder is a clear error naming the file, and a failed save leaves the previous one intact."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models.protocol import SamplingParams
from models.registry import load_model, make_tiny
from pipeline.config import StreamConfig
from pipeline.errors import SessionFileError, SessionSaveError
from pipeline.persist import files
from pipeline.session import StreamSession
from pipeline.videoqa import VideoQA
from tests.resume_worker import stream_frames
from tests.test_session import assert_same, snapshot

ROOT = Path(__file__).resolve().parents[1]
FPS = 1.0
TOTAL_FRAMES = 26
SAVE_AFTER = 13  # odd: a two-frame chunk is left half full (pending frames are saved too)
QUESTION = "What happens in the video?"
# (family, policy): eviction in every case; token dropping on an M-RoPE and a 1-D family
CASES = [
    ("qwen2_5_vl", "key_norm"),
    ("qwen2_vl", "token_drop+redundancy_value_norm"),
    ("smolvlm", "token_drop+redundancy_value_norm"),
]


def bounded_config(policy: str) -> StreamConfig:
    config = StreamConfig().replace("memory", policy=policy, window_frames=4, budget_tokens=6)
    return config.replace("ingest", chunks_per_forward=1).replace("sampling", max_new_tokens=8)


def greedy_tokens(session: StreamSession, question: str) -> list[int]:
    return [token for piece in session.ask_stream(question) for token in piece.token_ids]


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoints, tmp_path_factory) -> dict[str, Path]:
    smolvlm = make_tiny(tmp_path_factory.mktemp("persist") / "smolvlm", "smolvlm")
    return {**tiny_checkpoints, "smolvlm": smolvlm}


@pytest.fixture(scope="module")
def models(tiny_models, checkpoints) -> dict:
    smolvlm = load_model(str(checkpoints["smolvlm"]), device="cpu", dtype="float32", local_files_only=True)
    return {**tiny_models, "smolvlm": smolvlm}


@pytest.fixture(scope="module")
def resumed_elsewhere(models, checkpoints, tmp_path_factory) -> dict:
    """Per case: the uninterrupted answer, the saved session's stats, and a fresh process's answer.

    Both sessions answer a first question at the save point (asking ingests complete chunks, so the
    uninterrupted run must ask it too); one is then saved, the other keeps going.
    """
    root = tmp_path_factory.mktemp("sessions")
    frames = stream_frames(FPS, TOTAL_FRAMES)
    jobs, cases = [], {}
    for family, policy in CASES:
        model, config = models[family], bounded_config(policy)
        uninterrupted = StreamSession(model, config)
        uninterrupted.feed(frames[:SAVE_AFTER])
        first = uninterrupted.ask("What is there so far?").answer
        uninterrupted.feed(frames[SAVE_AFTER:])
        reference = greedy_tokens(uninterrupted, QUESTION)
        saved = StreamSession(model, config)
        saved.feed(frames[:SAVE_AFTER])
        assert saved.ask("What is there so far?").answer == first
        folder = saved.save(root / f"{family}-{policy}")
        cases[(family, policy)] = {
            "reference": reference,
            "reference_stats": uninterrupted.bank.stats(),
            "reference_dropped": uninterrupted.counters.tokens_dropped,
            "saved_evicted": saved.bank.stats().evicted_tokens,
        }
        jobs.append({"checkpoint": str(checkpoints[family]), "session": str(folder), "fps": FPS,
                     "total_frames": TOTAL_FRAMES, "first_new_frame": SAVE_AFTER, "question": QUESTION})
    jobs_path = root / "jobs.json"
    jobs_path.write_text(json.dumps(jobs))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "tests.resume_worker", str(jobs_path)], capture_output=True,
                            text=True, timeout=300, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    for case, answer in zip(CASES, json.loads(result.stdout.strip().splitlines()[-1])):
        cases[case]["resumed"] = answer
    return cases


@pytest.mark.timeout(600)
@pytest.mark.parametrize("family,policy", CASES)
def test_resume_in_a_new_process_answers_as_the_uninterrupted_session(resumed_elsewhere, family, policy) -> None:
    case = resumed_elsewhere[(family, policy)]
    resumed = case["resumed"]
    assert case["reference"], "the reference answer has no tokens"
    assert resumed["token_ids"] == case["reference"]
    assert case["saved_evicted"] > 0  # eviction had happened before the save ...
    assert resumed["evicted_tokens"] == case["reference_stats"].evicted_tokens > case["saved_evicted"]  # ... and after
    assert resumed["frames_ingested"] == TOTAL_FRAMES
    if policy.startswith("token_drop"):
        assert resumed["tokens_dropped"] == case["reference_dropped"] > 0


# ------------------------------------------------------------------------------------------ faults
@pytest.fixture()
def saved(tiny_models, tmp_path) -> tuple[StreamSession, Path]:
    """A small bounded session on tiny Qwen2.5-VL, saved to ``tmp_path / 'session'``."""
    session = StreamSession(tiny_models["qwen2_5_vl"], bounded_config("key_norm"))
    session.feed(stream_frames(FPS, 11))
    return session, session.save(tmp_path / "session")


def shard_of(folder: Path) -> Path:
    manifest = json.loads((folder / "manifest.json").read_text())
    return folder / next(name for name in manifest["files"] if name.endswith(".safetensors"))


def test_resume_in_process_restores_every_piece_of_state(tiny_models, saved) -> None:
    session, folder = saved
    resumed = VideoQA(tiny_models["qwen2_5_vl"]).resume(folder)
    assert_same(snapshot(session), snapshot(resumed))
    assert resumed.config == session.config
    assert resumed.counters == session.counters
    assert resumed._last_timestamp == session._last_timestamp and resumed._frame_hw == session._frame_hw
    for layer, original in zip(resumed.bank.cache.layers, session.bank.cache.layers):
        assert torch.equal(layer.origin(), original.origin())
    sampling = SamplingParams(max_new_tokens=6)
    assert resumed.ask(QUESTION, sampling=sampling).answer == session.ask(QUESTION, sampling=sampling).answer


@pytest.mark.parametrize(
    "policy", ["mixed_precision+key_norm", "frame_merge", "token_drop+proxy_attention+mixed_precision"]
)
def test_compressing_policies_resume_and_continue_exactly(tiny_models, tmp_path, policy: str) -> None:
    """Quantised tiers, merged frames and prototypes are saved; the stream continues as if never stopped."""
    model = tiny_models["qwen2_5_vl"]
    config = bounded_config(policy)
    frames = stream_frames(FPS, TOTAL_FRAMES)
    uninterrupted, saved = StreamSession(model, config), StreamSession(model, config)
    for session in (uninterrupted, saved):
        session.feed(frames[:SAVE_AFTER])
    resumed = VideoQA(model).resume(saved.save(tmp_path / "session"))
    assert_same(snapshot(saved), snapshot(resumed))
    for session in (uninterrupted, resumed):
        session.feed(frames[SAVE_AFTER:])
    assert_same(snapshot(uninterrupted), snapshot(resumed))
    if "mixed_precision" in policy:
        assert resumed.bank.cache.quantized_length > 0
    assert greedy_tokens(resumed, QUESTION) == greedy_tokens(uninterrupted, QUESTION)


def test_resume_watch_continues_the_same_source_after_the_saved_clock(tiny_models, tmp_path) -> None:
    """A source without ``skip_through`` (not a file): frames already in memory are skipped, not re-fed."""
    from tests.test_session import _ListSource

    model, config = tiny_models["qwen2_5_vl"], bounded_config("key_norm")
    frames = stream_frames(FPS, 16)
    uninterrupted, saved = StreamSession(model, config), StreamSession(model, config)
    for session in (uninterrupted, saved):
        session.watch(_ListSource(frames))
        session.ingest(until=6.0)
    resumed = VideoQA(model).resume(saved.save(tmp_path / "session"))
    resumed.resume_watch(_ListSource(frames))  # the source starts again at 0 s
    for session in (uninterrupted, resumed):
        session.ingest()
    assert_same(snapshot(uninterrupted), snapshot(resumed))
    assert resumed.counters.frames_ingested == 16 and resumed._last_timestamp == 15.0


def test_saving_over_a_session_replaces_it(tiny_models, saved) -> None:
    session, folder = saved
    session.feed(stream_frames(FPS, 20)[11:])
    session.save(folder)
    snapshots = [p.name for p in folder.iterdir() if p.name != "manifest.json"]
    assert len(snapshots) == 1 and snapshots[0].startswith("snapshot-")  # the older snapshot is gone
    assert_same(snapshot(session), snapshot(VideoQA(tiny_models["qwen2_5_vl"]).resume(folder)))


def test_corrupted_shard_is_refused_by_its_checksum(tiny_models, saved) -> None:
    _, folder = saved
    shard = shard_of(folder)
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(SessionFileError, match=rf"{shard.name} is corrupted \(sha256"):
        VideoQA(tiny_models["qwen2_5_vl"]).resume(folder)


def test_corrupted_shard_with_a_matching_checksum_is_still_refused(tiny_models, saved) -> None:
    """A shard damaged before its checksum was taken: safetensors cannot parse it; the error names it."""
    _, folder = saved
    shard = shard_of(folder)
    shard.write_bytes(b"\xff" * 64 + shard.read_bytes()[64:])
    manifest = json.loads((folder / "manifest.json").read_text())
    name = str(shard.relative_to(folder))
    manifest["files"][name]["sha256"] = files.file_sha256(shard)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SessionFileError, match=rf"{shard.name} is unreadable"):
        VideoQA(tiny_models["qwen2_5_vl"]).resume(folder)


def test_checksum_mismatch_of_the_state_file(tiny_models, saved) -> None:
    """Same size, valid JSON, one digit changed: only the checksum can tell."""
    _, folder = saved
    manifest = json.loads((folder / "manifest.json").read_text())
    state = folder / manifest["snapshot"] / "state.json"
    text = state.read_text()
    assert '"last_timestamp": 10.0' in text
    state.write_text(text.replace('"last_timestamp": 10.0', '"last_timestamp": 19.0'))
    with pytest.raises(SessionFileError, match=r"state.json is corrupted \(sha256 differs"):
        VideoQA(tiny_models["qwen2_5_vl"]).resume(folder)


def test_truncated_shard(tiny_models, saved) -> None:
    _, folder = saved
    shard = shard_of(folder)
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 3])
    with pytest.raises(SessionFileError, match=rf"{shard.name} is truncated \({len(data) // 3} bytes, {len(data)}"):
        VideoQA(tiny_models["qwen2_5_vl"]).resume(folder)


def test_missing_files(tiny_models, saved, tmp_path) -> None:
    _, folder = saved
    model = tiny_models["qwen2_5_vl"]
    with pytest.raises(SessionFileError, match="folder does not exist"):
        VideoQA(model).resume(tmp_path / "nowhere")
    shard_of(folder).unlink()
    with pytest.raises(SessionFileError, match="safetensors is missing"):
        VideoQA(model).resume(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(SessionFileError, match="manifest.json is missing"):
        VideoQA(model).resume(folder)


def test_other_format_version(tiny_models, saved) -> None:
    _, folder = saved
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format"] = "streamvqa-session/2"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    expected = r"format 'streamvqa-session/2'; this streamvqa reads 'streamvqa-session/1'"
    with pytest.raises(SessionFileError, match=expected):
        VideoQA(tiny_models["qwen2_5_vl"]).resume(folder)


@pytest.mark.parametrize("damage", ["no snapshot", "escaping name", "not json"])
def test_malformed_manifest(tiny_models, saved, damage: str) -> None:
    _, folder = saved
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    if damage == "no snapshot":
        del manifest["snapshot"]
    elif damage == "escaping name":
        manifest["files"]["../../outside.safetensors"] = {"bytes": 1, "sha256": "0" * 64}
    path.write_text(json.dumps(manifest) if damage != "not json" else "{ half a manifest")
    with pytest.raises(SessionFileError, match="manifest.json is damaged"):
        VideoQA(tiny_models["qwen2_5_vl"]).resume(folder)


def test_other_model(tiny_models, tiny_checkpoints, saved) -> None:
    _, folder = saved
    with pytest.raises(SessionFileError, match="saved with the qwen2_5_vl model .*this is a qwen2_vl model"):
        VideoQA(tiny_models["qwen2_vl"]).resume(folder)
    same_architecture = load_model(str(tiny_checkpoints["qwen2_5_vl"]), device="cpu", dtype="float32",
                                   local_files_only=True)
    with torch.no_grad():
        next(same_architecture.model.parameters()).add_(0.01)  # other weights, same config
    with pytest.raises(SessionFileError, match="whose weights differ"):
        VideoQA(same_architecture).resume(folder)
    other_dtype = load_model(str(tiny_checkpoints["qwen2_5_vl"]), device="cpu", dtype="bfloat16",
                             local_files_only=True)
    expected = "float32 memory; this model runs in bfloat16: load it with --dtype float32"
    with pytest.raises(SessionFileError, match=expected):
        VideoQA(other_dtype).resume(folder)


def test_other_memory_settings_are_refused(tiny_models, saved) -> None:
    session, folder = saved
    changed = session.config.replace("memory", window_frames=8)
    with pytest.raises(SessionFileError, match=r"memory.window_frames=4; this run asks for 8"):
        VideoQA(tiny_models["qwen2_5_vl"]).resume(folder, changed)
    resumed = VideoQA(tiny_models["qwen2_5_vl"]).resume(folder, session.config.replace("sampling", max_new_tokens=3))
    assert resumed.config.sampling.max_new_tokens == 3  # sampling may change


def test_full_disk_leaves_the_previous_save_intact(tiny_models, saved, monkeypatch) -> None:
    session, folder = saved
    before = snapshot(session)
    session.feed(stream_frames(FPS, 20)[11:])
    real_write = files.write_tensor_file

    def disk_fills_up(path: Path, tensors: dict) -> dict:
        real_write(path, tensors)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])  # half written, then the device is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(files, "write_tensor_file", disk_fills_up)
    with pytest.raises(SessionSaveError, match="no space left on the device .*the previous save there is intact"):
        session.save(folder)
    assert sorted(p.name.split("-")[0] for p in folder.iterdir()) == ["manifest.json", "snapshot"]  # no leftovers
    assert_same(before, snapshot(VideoQA(tiny_models["qwen2_5_vl"]).resume(folder)))


def test_a_folder_of_other_files_is_not_overwritten(saved, tmp_path) -> None:
    session, _ = saved
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(SessionSaveError, match="holds other files .*pass a new or empty folder"):
        session.save(other)
    assert [p.name for p in other.iterdir()] == ["holiday.jpg"]


# --------------------------------------------------------------------------------------------- CLI
CLI_FLAGS = ("--fps", "2", "--policy", "key_norm", "--window-frames", "2", "--budget-tokens", "6",
             "--chunks-per-forward", "1", "--max-new-tokens", "6", "--json")


@pytest.mark.timeout(300)
def test_cli_save_then_resume_in_a_new_process(tiny_models, tiny_checkpoints, tmp_path, capfd) -> None:
    """``ask --at T --save-session DIR``, then ``ask --resume DIR`` on the same real video in a new
    process: the answer of one uninterrupted session; ``--resume DIR`` without a video just answers."""
    from pipeline.cli import main
    from tests.video_factory import make_test_video

    video = str(make_test_video(tmp_path / "clip.mp4", seconds=6, fps=8, size=(160, 120)))
    checkpoint, folder = str(tiny_checkpoints["qwen2_5_vl"]), tmp_path / "session"
    config = StreamConfig().replace("source", fps=2.0).replace("memory", policy="key_norm", window_frames=2,
                                                                  budget_tokens=6)
    config = config.replace("ingest", chunks_per_forward=1).replace("sampling", max_new_tokens=6)
    uninterrupted = StreamSession(tiny_models["qwen2_5_vl"], config)
    uninterrupted.watch(video)
    uninterrupted.ingest(until=2.7)
    first = uninterrupted.ask("What is there so far?", at=2.7)
    at_save = uninterrupted.ask(QUESTION)
    uninterrupted.ingest()
    final = uninterrupted.ask(QUESTION)

    code = main(["ask", video, "--model", checkpoint, "-q", "What is there so far?", "--at", "2.7",
                 "--save-session", str(folder), *CLI_FLAGS])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert json.loads(out)["answer"] == first.answer and json.loads(out)["session_saved"] == str(folder)

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "ask", video, "--resume", str(folder), "-q",
                             QUESTION, "--json"], capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = json.loads(result.stdout)
    assert resumed["answer"] == final.answer and resumed["num_tokens"] == final.num_tokens
    assert resumed["frames_ingested"] == final.frames_ingested == 12  # 6 s at 2 fps: none twice, none missed
    assert resumed["memory"]["evicted_tokens"] == final.memory["evicted_tokens"] > first.memory["evicted_tokens"] > 0

    code = main(["ask", "--resume", str(folder), "-q", QUESTION, "--json"])  # no new frames: just answer
    out, err = capfd.readouterr()
    assert code == 0, err
    assert json.loads(out)["answer"] == at_save.answer

    code = main(["ask", video, "--resume", str(folder), "-q", QUESTION, "--window-frames", "8"])
    _, err = capfd.readouterr()
    assert code == 2 and "memory.window_frames=2; this run asks for 8" in err and len(err.strip().splitlines()) == 1
    code = main(["ask", video, "--resume", str(tmp_path / "nothing"), "-q", QUESTION])
    _, err = capfd.readouterr()
    assert code == 2 and "no saved session" in err


def test_tensors_round_trip_across_shards(tmp_path) -> None:
    """The format alone: several shards, mixed dtypes, an empty tensor and views sharing memory."""
    base = torch.arange(24, dtype=torch.float32).view(4, 6)
    tensors = {
        "a.keys": torch.randn(1, 2, 5, 4).to(torch.bfloat16),
        "a.origin": torch.arange(10).view(2, 5),
        "b.pixels": torch.randint(0, 256, (3, 4, 3), dtype=torch.uint8),
        "b.empty": torch.zeros(2, 0, dtype=torch.long),
        "c.left": base[:, :3],  # two views of one storage
        "c.right": base[:, 3:],
    }
    meta = {"kept": 1 / 3, "times": [0.1, 0.2], "name": "x", "none": None}
    model = {"family": "test"}
    files.write_session(tmp_path / "s", tensors, meta, model, shard_bytes=64)
    manifest = files.read_manifest(tmp_path / "s")
    assert sum(name.endswith(".safetensors") for name in manifest["files"]) >= 3
    loaded, loaded_meta = files.read_session(tmp_path / "s", manifest)
    assert loaded_meta == meta and manifest["model"] == model
    assert loaded.keys() == tensors.keys()
    for key, tensor in tensors.items():
        assert loaded[key].dtype == tensor.dtype and torch.equal(loaded[key], tensor)
