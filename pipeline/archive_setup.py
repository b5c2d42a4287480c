"""Builds a session's archive and retrieval from the ``archive`` config section."""

from __future__ import annotations

from pathlib import Path

from memory.archive import Archive
from memory.archive.journal import Journal
from memory.retrieval import ArchiveRecall, RetrievalSettings
from models.protocol import VideoLM
from pipeline.config import ArchiveConfig
from pipeline.errors import UserInputError

MIB = 1 << 20


def build_recall(config: ArchiveConfig, model: VideoLM) -> ArchiveRecall:
    """A fresh archive (RAM, plus disk when ``config.folder`` is set) with its retrieval indexes.

    Raises:
        UserInputError: the folder already holds an archive (of an earlier session).
    """
    if config.folder is not None and Journal(Path(config.folder)).exists():
        raise UserInputError(
            f"archive folder {config.folder} already holds an archive of an earlier session: choose an empty "
            "folder (archive.folder, --archive DIR), or delete that one; a resumed session re-archives its "
            "saved blocks into a folder of its own"
        )
    archive = Archive(int(config.ram_mb * MIB), config.folder, int(config.disk_mb * MIB))
    settings = RetrievalSettings(config.retriever, config.top_k, config.chunk_blocks, config.per_layer,
                                 config.recency_correction)
    return ArchiveRecall(archive, model, settings)
