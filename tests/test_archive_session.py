"""The archive inside a session: the bank's hook, retrieval at answer time, memory left unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memory.archive import ArchivedBlock
from memory.retrieval.placement import append_blocks
from memory.streaming_cache import StreamingCache
from pipeline.config import StreamConfig
from pipeline.errors import QuestionError, UserInputError
from pipeline.session import StreamSession
from tests.test_session import assert_same, frames_at, snapshot


def archive_session(
    model, window_frames: int = 4, budget_tokens: int = 0, policy: str = "sink_window", **archive
) -> StreamSession:
    config = StreamConfig().replace("sampling", max_new_tokens=4)
    config = config.replace("memory", policy=policy, window_frames=window_frames, budget_tokens=budget_tokens)
    config = config.replace("archive", enabled=True, **archive)
    return StreamSession(model, config)


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_blocks_leaving_the_window_are_archived_at_full_precision(tiny_models, family: str) -> None:
    model = tiny_models[family]
    frames = frames_at(2.0, 16)
    unbounded = StreamSession(model, StreamConfig().replace("memory", window_frames=None, budget_tokens=None))
    unbounded.feed(frames)
    session = archive_session(model, window_frames=4)
    session.feed(frames)
    archive = session.recall.archive
    resident = {span.block.chunk_index for span in session.bank.spans}
    assert len(archive) == 8 - len(resident) and not resident & set(archive.timestamps)
    first = archive.get(0)
    assert first.timestamps == (0.0, 0.5) and first.position is not None
    # chunk 0 was written before anything was evicted: its K/V equal the unbounded stream's
    start, end = int(first.logical[0]), int(first.logical[-1]) + 1
    for layer_index, layer in enumerate(unbounded.bank.cache.layers):
        assert torch.equal(first.keys[layer_index], layer.keys[0, :, start:end])
        assert torch.equal(first.values[layer_index], layer.values[0, :, start:end])
    assert set(first.vectors) == {"visual", "internal"}


@pytest.mark.parametrize("image", [False, True])
def test_answer_with_retrieval_leaves_memory_exactly_as_it_was(tiny_models, image: bool) -> None:
    session = archive_session(tiny_models["qwen2_5_vl"], window_frames=4, top_k=3)
    frames = frames_at(2.0, 25)  # 25: a trailing partial chunk lives only in the answer's view
    session.feed(frames)
    before = snapshot(session)
    query = frames[6].rgb if image else None
    answer = session.ask("What happened?", image=query)
    assert_same(before, snapshot(session))
    again = session.ask("What happened?", image=query)
    assert_same(before, snapshot(session))
    assert answer.answer == again.answer and answer.retrieved == again.retrieved
    resident = set(session.bank.resident_frame_timestamps)
    assert len(answer.retrieved) == 6 and not resident & set(answer.retrieved)
    assert answer.retrieved == sorted(answer.retrieved)
    assert answer.archive["archived_blocks"] == len(session.recall.archive)
    if image:  # the query image is frame 6 itself: its chunk is retrieved
        assert frames[6].timestamp in answer.retrieved
    assert answer.to_dict()["retrieved"] == answer.retrieved


def test_image_question_needs_the_archive(tiny_models) -> None:
    session = StreamSession(tiny_models["qwen2_vl"], StreamConfig())
    session.feed(frames_at(2.0, 4))
    with pytest.raises(QuestionError, match="enable it"):
        session.ask("When did this appear?", image=frames_at(2.0, 1)[0].rgb)
    archived = archive_session(tiny_models["qwen2_vl"])
    with pytest.raises(QuestionError, match="uint8 RGB"):
        archived.ask("When did this appear?", image=np.zeros((4, 4), np.uint8))


def test_bad_archive_config_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(UserInputError, match="retriever"):
        StreamConfig.from_dict({"archive": {"retriever": "clip"}})
    with pytest.raises(UserInputError, match="top_k"):
        StreamConfig.from_dict({"archive": {"top_k": -1}})


def test_folder_of_an_earlier_session_is_refused(tiny_models, tmp_path) -> None:
    session = archive_session(tiny_models["qwen2_vl"], folder=str(tmp_path / "a"), ram_mb=0.001)
    session.feed(frames_at(2.0, 16))
    assert session.recall.archive.stats().disk_blocks > 0
    with pytest.raises(UserInputError, match="already holds an archive"):
        archive_session(tiny_models["qwen2_vl"], folder=str(tmp_path / "a"))


def test_a_block_put_back_at_its_own_position_is_unchanged(tiny_models) -> None:
    model = tiny_models["qwen2_5_vl"]
    keys = torch.randn(model.num_layers, 2, 5, 16)
    block = ArchivedBlock(0, (0.0,), 7, torch.arange(5), keys, torch.randn_like(keys))
    cache = StreamingCache(model.num_layers)
    for layer in cache.layers:
        layer.update(torch.zeros(1, 2, 3, 16), torch.zeros(1, 2, 3, 16))
    assert append_blocks(cache, [block, block], [7, 9], model.rotate_keys) == 10
    for index, layer in enumerate(cache.layers):
        assert torch.allclose(layer.keys[0, :, 3:8], keys[index], atol=1e-6)
        moved = model.rotate_keys(keys[index], torch.full((2, 5), 2))
        assert torch.allclose(layer.keys[0, :, 8:13], moved, atol=1e-6)
        assert layer.logical_length == 13


def test_blocks_partly_kept_in_long_term_memory_are_not_retrieved_twice(tiny_models) -> None:
    """Per-head long-term selection keeps parts of old blocks; those blocks stay out of retrieval."""
    session = archive_session(tiny_models["qwen2_5_vl"], window_frames=4, budget_tokens=6, policy="key_norm",
                              top_k=10)
    session.feed(frames_at(2.0, 129))
    long_term = [span.block.chunk_index for span in session.bank.spans[:-2]]
    assert long_term  # some archived blocks are also partly resident
    assert set(long_term) <= set(session.recall.archive.timestamps)
    before = snapshot(session)
    answer = session.ask("What happened?")
    assert_same(before, snapshot(session))
    resident = set(session.bank.resident_frame_timestamps)
    assert answer.retrieved and not resident & set(answer.retrieved)
    archived_not_resident = [t for i, ts in session.recall.archive.timestamps.items() for t in ts
                             if i not in long_term]
    assert len(answer.retrieved) == 2 * 10 and set(answer.retrieved) <= set(archived_not_resident)


@pytest.mark.timeout(120)
def test_engine_answers_retrieve_from_the_archive_and_leave_memory_unchanged(tiny_models) -> None:
    from pipeline.engine import EngineSettings, RealtimeVideoQA

    model = tiny_models["qwen2_5_vl"]
    config = StreamConfig().replace("sampling", max_new_tokens=4)
    config = config.replace("memory", policy="sink_window", window_frames=4, budget_tokens=0)
    config = config.replace("archive", enabled=True, top_k=3)
    with RealtimeVideoQA(model, config, EngineSettings(history_turns=0)) as engine:
        stream = engine.watch(frames_at(2.0, 32))
        assert stream.wait_ended(timeout=30)
        session = engine.core._streams[stream.stream_id].session
        before = engine.core.call(lambda: snapshot(session))
        info = stream.ask("What happened?").result(timeout=30)
        after = engine.core.call(lambda: snapshot(session))
        resident = engine.core.call(lambda: list(session.bank.resident_frame_timestamps))
    assert info.status == "done" and len(info.retrieved) == 6
    assert resident and not set(info.retrieved) & set(resident)
    assert_same(before, after)


def test_a_corrupted_shard_is_skipped_at_answer_time_and_the_session_goes_on(tiny_models, tmp_path, caplog) -> None:
    session = archive_session(tiny_models["qwen2_vl"], window_frames=4, folder=str(tmp_path / "a"), ram_mb=0.001,
                              top_k=50)
    session.feed(frames_at(2.0, 32))
    archive = session.recall.archive
    shard = sorted((tmp_path / "a" / "shards").glob("*.safetensors"))[0]
    data = bytearray(shard.read_bytes())
    data[-2] ^= 0xFF
    shard.write_bytes(bytes(data))
    damaged = [i for i, f in archive.disk.where.items() if f.endswith(shard.name)]
    damaged_times = {t for i in damaged for t in archive.timestamps[i]}
    before = snapshot(session)
    with caplog.at_level("WARNING"):
        answer = session.ask("What happened?")
    assert_same(before, snapshot(session))
    assert shard.name in caplog.text
    assert answer.archive["damaged_blocks"] == len(damaged) > 0
    assert answer.retrieved and not damaged_times & set(answer.retrieved)
    session.feed(frames_at(2.0, 8, start=32))  # the stream goes on
    assert session.ask("And now?").archive["damaged_blocks"] == len(damaged)


def test_a_saved_session_carries_its_archive_and_answers_as_the_uninterrupted_one(tiny_models, tmp_path) -> None:
    """RAM and disk blocks are saved with the session; the resumed one re-archives them in its own folder."""
    from pipeline.videoqa import VideoQA

    model = tiny_models["qwen2_5_vl"]
    frames = frames_at(2.0, 40)
    probe = archive_session(model, window_frames=4)
    probe.feed(frames[:12])
    ram_mb = 3 * probe.recall.archive.get(0).nbytes / (1 << 20)  # a few blocks in RAM, the rest on disk

    def session_in(folder: str) -> StreamSession:
        return archive_session(model, window_frames=4, top_k=3, folder=folder, ram_mb=ram_mb, disk_mb=64)

    uninterrupted, saved = session_in(str(tmp_path / "a")), session_in(str(tmp_path / "b"))
    for session in (uninterrupted, saved):
        session.feed(frames[:27])  # odd: a pending chunk and a chunk not archived yet are saved too
    stats = saved.recall.stats()
    assert stats["disk_blocks"] > 0 and stats["ram_blocks"] > 0
    folder = saved.save(tmp_path / "saved")
    with pytest.raises(UserInputError, match="already holds an archive"):  # the saving session's folder
        VideoQA(model).resume(folder)
    config = saved.config.replace("archive", folder=str(tmp_path / "c"))
    resumed = VideoQA(model).resume(folder, config)
    assert_same(snapshot(saved), snapshot(resumed))
    assert sorted(resumed.recall.archive.timestamps) == sorted(saved.recall.archive.timestamps)
    image = frames[3].rgb
    for session in (uninterrupted, resumed):
        session.feed(frames[27:])
    assert_same(snapshot(uninterrupted), snapshot(resumed))
    for question, query in (("What happened?", None), ("When did this appear?", image)):
        expected, got = uninterrupted.ask(question, image=query), resumed.ask(question, image=query)
        assert got.retrieved and got.retrieved == expected.retrieved and got.answer == expected.answer
    assert resumed.recall.stats()["archived_blocks"] == uninterrupted.recall.stats()["archived_blocks"]
