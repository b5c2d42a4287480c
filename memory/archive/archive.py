"""The archive: frame blocks that left the device, in CPU RAM up to a budget, then on disk, then dropped.

``add`` puts a block in RAM; when RAM holds more than ``ram_bytes``, the oldest blocks are spilled to
one disk shard (down to 3/4 of the budget, so shards are not tiny); when the disk holds more than
``disk_bytes``, its oldest shard is deleted. Without a folder (or with ``disk_bytes=0``) blocks
spilled from RAM are dropped. Every block keeps its timestamps, its original logical indices and its
position. ``Archive.open(folder)`` reopens a disk tier from its journal after a restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from memory.archive.block import ArchivedBlock
from memory.archive.disk_tier import DiskTier
from memory.archive.journal import Journal
from memory.archive.ram_tier import RamTier

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchiveStats:
    """Blocks and bytes per tier, and what was lost (JSON-friendly via ``as_dict``)."""

    ram_blocks: int
    ram_bytes: int
    disk_blocks: int
    disk_bytes: int
    archived_blocks: int  # ever added
    dropped_blocks: int  # deleted to stay within the budgets (oldest first)
    damaged_blocks: int  # in shards that failed their checks (skipped, never used)
    lost_blocks: int  # could not be written (disk full, write error)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Archive:
    """Frame blocks off the device, oldest evicted first.

    Args:
        ram_bytes: most bytes kept in CPU RAM.
        folder: session folder for the disk tier (None: no disk tier).
        disk_bytes: most bytes of shards on disk.
    """

    def __init__(self, ram_bytes: int, folder: str | Path | None = None, disk_bytes: int = 0) -> None:
        if ram_bytes < 0 or disk_bytes < 0:
            raise ValueError(f"archive budgets must be >= 0 bytes, got ram {ram_bytes}, disk {disk_bytes}")
        self.ram_bytes = ram_bytes
        self.ram = RamTier()
        self.disk = DiskTier(folder, disk_bytes) if folder is not None and disk_bytes > 0 else None
        self.timestamps: dict[int, tuple[float, ...]] = {}  # every block held, by id (time order)
        if self.disk is not None:
            self.timestamps.update({i: tuple(m["timestamps"]) for i, m in self.disk.meta.items()})
        self._archived = len(self.timestamps)
        self._dropped_ram = 0

    @classmethod
    def open(cls, folder: str | Path, ram_bytes: int = 0, disk_bytes: int | None = None) -> Archive:
        """Reopen the disk tier in ``folder`` (written by an earlier process) from its journal.

        Raises:
            FileNotFoundError: ``folder`` holds no archive journal.
        """
        folder = Path(folder)
        if not Journal(folder).exists():
            raise FileNotFoundError(f"{folder} holds no archive ({Journal(folder).path} is missing): pass the folder "
                                    "an archive was written to")
        return cls(ram_bytes, folder, disk_bytes if disk_bytes is not None else 1 << 62)

    # ---------------------------------------------------------------------------------- writing
    def add(self, block: ArchivedBlock) -> list[int]:
        """Archive ``block``; returns ids of blocks that left the archive to make room (oldest first)."""
        self.ram.add(block)
        self.timestamps[block.block_id] = tuple(block.timestamps)
        self._archived += 1
        if self.ram.nbytes <= self.ram_bytes:
            return []
        spill = []
        while len(self.ram) and self.ram.nbytes > self.ram_bytes * 3 // 4:
            spill.append(self.ram.pop_oldest())
        return self._to_disk(spill)

    def flush(self) -> list[int]:
        """Move every RAM block to disk (before a process ends); returns ids of blocks that were lost."""
        spill = [self.ram.pop_oldest() for _ in range(len(self.ram))]
        return self._to_disk(spill)

    def _to_disk(self, blocks: list[ArchivedBlock]) -> list[int]:
        if self.disk is None:
            gone = [block.block_id for block in blocks]
            self._dropped_ram += len(gone)
        else:
            gone = self.disk.write(blocks)
        for block_id in gone:
            self.timestamps.pop(block_id, None)
        return gone

    # ---------------------------------------------------------------------------------- reading
    def get(self, block_id: int) -> ArchivedBlock | None:
        """The block (RAM or disk), or None when it is gone or damaged (counted, never used)."""
        block = self.ram.get(block_id)
        if block is None and self.disk is not None:
            block = self.disk.get(block_id)
        return block

    def __contains__(self, block_id: int) -> bool:
        return block_id in self.timestamps

    def __len__(self) -> int:
        return len(self.timestamps)

    def vectors(self, kind: str) -> list[tuple[int, torch.Tensor]]:
        """``(id, vector)`` of every block with a ``kind`` vector, in time order (to rebuild an index)."""
        on_disk = self.disk.vectors(kind) if self.disk is not None else []
        in_ram = [(i, b.vectors[kind]) for i, b in self.ram.blocks.items() if kind in b.vectors]
        return on_disk + in_ram

    def restore_counters(self, saved: dict[str, int]) -> None:
        """Carry a saved archive's loss counters over (after its surviving blocks were re-added)."""
        self._archived = int(saved["archived_blocks"])
        self._dropped_ram += int(saved["dropped_blocks"])
        if self.disk is not None:
            self.disk.damaged_blocks += int(saved["damaged_blocks"])
            self.disk.lost_blocks += int(saved["lost_blocks"])
        else:
            self._dropped_ram += int(saved["damaged_blocks"]) + int(saved["lost_blocks"])

    def stats(self) -> ArchiveStats:
        disk = self.disk
        return ArchiveStats(
            ram_blocks=len(self.ram),
            ram_bytes=self.ram.nbytes,
            disk_blocks=len(disk) if disk else 0,
            disk_bytes=disk.nbytes if disk else 0,
            archived_blocks=self._archived,
            dropped_blocks=self._dropped_ram + (disk.dropped_blocks if disk else 0),
            damaged_blocks=disk.damaged_blocks if disk else 0,
            lost_blocks=disk.lost_blocks if disk else 0,
        )
