"""Archive tiers: RAM budget, disk shards and their journal, budgets, faults, reopening after a restart."""

from __future__ import annotations

import errno
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from memory.archive import Archive, ArchivedBlock
from memory.archive import disk_tier as disk_tier_module

LAYERS, HEADS, TOKENS, DIM = 2, 2, 6, 8


def make_block(block_id: int) -> ArchivedBlock:
    """A block whose tensors are a function of its id (so a read-back can be checked exactly)."""
    generator = torch.Generator().manual_seed(block_id)
    keys = torch.randn(LAYERS, HEADS, TOKENS, DIM, generator=generator)
    values = torch.randn(LAYERS, HEADS, TOKENS, DIM, generator=generator)
    logical = torch.arange(10 + block_id * TOKENS, 10 + (block_id + 1) * TOKENS)
    vectors = {"visual": torch.randn(16, generator=generator)}
    return ArchivedBlock(block_id, (2.0 * block_id, 2.0 * block_id + 1), 100 + block_id, logical, keys, values, vectors)


BLOCK_BYTES = make_block(0).nbytes


def assert_same(block: ArchivedBlock | None, block_id: int) -> None:
    expected = make_block(block_id)
    assert block is not None
    assert block.block_id == block_id and block.timestamps == expected.timestamps
    assert block.position == expected.position
    assert torch.equal(block.keys, expected.keys) and torch.equal(block.values, expected.values)
    assert torch.equal(block.logical, expected.logical)
    assert torch.equal(block.vectors["visual"], expected.vectors["visual"])


def test_ram_then_disk_then_dropped(tmp_path: Path) -> None:
    archive = Archive(ram_bytes=4 * BLOCK_BYTES, folder=tmp_path / "a", disk_bytes=12 * BLOCK_BYTES)
    gone = []
    for block_id in range(40):
        gone += archive.add(make_block(block_id))
    stats = archive.stats()
    assert stats.ram_blocks <= 4 and stats.ram_bytes <= 4 * BLOCK_BYTES
    assert 0 < stats.disk_bytes <= 12 * BLOCK_BYTES
    assert stats.archived_blocks == 40
    assert stats.dropped_blocks == len(gone) > 0
    assert gone == sorted(gone) and gone[0] == 0  # the oldest go first
    assert stats.ram_blocks + stats.disk_blocks + stats.dropped_blocks == 40
    assert len(archive) == 40 - len(gone)
    for block_id in range(40):
        if block_id in gone:
            assert archive.get(block_id) is None and block_id not in archive
        else:
            assert_same(archive.get(block_id), block_id)
    shards = list((tmp_path / "a" / "shards").glob("*.safetensors"))
    assert len(shards) >= 2 and not list((tmp_path / "a" / "shards").glob("*.tmp"))


def test_without_a_folder_blocks_beyond_ram_are_dropped() -> None:
    archive = Archive(ram_bytes=3 * BLOCK_BYTES)
    gone = [i for block_id in range(10) for i in archive.add(make_block(block_id))]
    assert archive.stats().dropped_blocks == len(gone) >= 6
    assert archive.stats().disk_blocks == 0
    assert_same(archive.get(9), 9)


def _spill_everything(folder: Path, n: int) -> Archive:
    archive = Archive(ram_bytes=2 * BLOCK_BYTES, folder=folder, disk_bytes=1 << 30)
    for block_id in range(n):
        archive.add(make_block(block_id))
    assert archive.flush() == []
    return archive


def test_disk_tier_reopens_in_a_new_process(tmp_path: Path) -> None:
    folder = tmp_path / "session"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from tests.test_archive_tiers import _spill_everything
        _spill_everything(Path({str(folder)!r}), 9)
    """)
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root, env={"PYTHONPATH": str(root)})
    reopened = Archive.open(folder)
    assert len(reopened) == 9 and reopened.stats().disk_blocks == 9
    for block_id in range(9):
        assert_same(reopened.get(block_id), block_id)
    assert [i for i, _ in reopened.vectors("visual")] == list(range(9))
    reopened.add(make_block(9))  # the reopened archive keeps working: new shards follow the old ones
    reopened.flush()
    again = Archive.open(folder)
    assert len(again) == 10
    assert_same(again.get(9), 9)


def test_open_without_journal_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="holds no archive"):
        Archive.open(tmp_path)


def test_other_format_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "archive.jsonl").write_text('{"event": "header", "format": "streamvqa-archive", "version": 99}\n')
    with pytest.raises(ValueError, match="version 99.*new archive folder"):
        Archive.open(tmp_path)


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "flip":
        data[-3] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        path.unlink()


@pytest.mark.parametrize("how", ["truncate", "flip", "delete"])
def test_damaged_shard_is_skipped_counted_and_named(tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "a"
    _spill_everything(folder, 8)
    shards = sorted((folder / "shards").glob("*.safetensors"))
    assert len(shards) >= 2
    _damage(shards[0], how)
    archive = Archive.open(folder)
    damaged_ids = [i for i in range(8) if archive.disk.where[i] == f"shards/{shards[0].name}"]
    with caplog.at_level(logging.WARNING):
        for block_id in range(8):
            block = archive.get(block_id)
            if block_id in damaged_ids:
                assert block is None
            else:
                assert_same(block, block_id)
    assert archive.stats().damaged_blocks == len(damaged_ids) > 0
    assert shards[0].name in caplog.text and "delete the archive folder" in caplog.text
    assert [i for i, _ in archive.vectors("visual")] == [i for i in range(8) if i not in damaged_ids]


def test_full_disk_loses_the_blocks_being_written_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    archive = Archive(ram_bytes=2 * BLOCK_BYTES, folder=tmp_path / "a", disk_bytes=1 << 30)
    real_open = open
    full = {"on": False}

    def open_on_a_full_disk(path, mode="r", *args, **kwargs):  # noqa: ANN001 - builtin signature
        if full["on"] and str(path).endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(disk_tier_module, "open", open_on_a_full_disk, raising=False)
    for block_id in range(4):
        archive.add(make_block(block_id))
    full["on"] = True
    lost = []
    with caplog.at_level(logging.WARNING):
        for block_id in range(4, 10):
            lost += archive.add(make_block(block_id))
    assert lost and archive.stats().lost_blocks == len(lost)
    assert "disk is full" in caplog.text and "shard-000001.safetensors" in caplog.text
    assert "archive.disk_bytes" in caplog.text
    assert not list((tmp_path / "a" / "shards").glob("*.tmp"))
    full["on"] = False  # space freed: the archive keeps working
    for block_id in range(10, 16):
        assert archive.add(make_block(block_id)) == []
    for block_id in range(16):
        block = archive.get(block_id)
        assert block is None if block_id in lost else block is not None
    assert len(Archive.open(tmp_path / "a")) == archive.stats().disk_blocks
