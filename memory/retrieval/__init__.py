"""Retrieval over the archive: faiss indexes of frame-block vectors, and putting blocks back for an answer."""

from memory.retrieval.recall import ArchiveRecall, RetrievalSettings
from memory.retrieval.vector_index import RunIndex

__all__ = ["ArchiveRecall", "RetrievalSettings", "RunIndex"]
