"""Archive tiers for frame blocks that left the device: CPU RAM, then disk shards, then dropped."""

from memory.archive.archive import Archive, ArchiveStats
from memory.archive.block import ArchivedBlock

__all__ = ["Archive", "ArchiveStats", "ArchivedBlock"]
