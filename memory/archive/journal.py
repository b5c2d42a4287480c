"""The archive folder's journal: one JSON object per line, appended and fsynced, never rewritten.

Lines (``archive.jsonl``):

* ``{"event": "header", "format": "streamvqa-archive", "version": 1}``: the first line;
* ``{"event": "shard", "file": "shards/…safetensors", "sha256": …, "bytes": …, "blocks": [meta, …]}``:
  a shard was written (``meta``: id, timestamps, position, n_tokens, logical_start, logical_end);
* ``{"event": "drop", "file": …, "reason": …}``: a shard was deleted (disk budget).

Replaying the lines gives the shards alive now, which is how ``Archive.open(folder)`` resumes after
a restart. A torn last line (a crash while appending) is skipped with a warning.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

JOURNAL_NAME = "archive.jsonl"
FORMAT = "streamvqa-archive"
VERSION = 1


class Journal:
    """Append-only JSON-lines file in an archive folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / JOURNAL_NAME

    def exists(self) -> bool:
        return self.path.exists()

    def create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.append({"event": "header", "format": FORMAT, "version": VERSION})

    def append(self, entry: dict[str, Any]) -> None:
        """Write one line and fsync it (raises ``OSError`` when the disk is full)."""
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def replay(self) -> dict[str, dict[str, Any]]:
        """``file -> shard entry`` for every shard written and not dropped, in write order.

        Raises:
            ValueError: the folder holds another format or version (the message says what to do).
        """
        shards: dict[str, dict[str, Any]] = {}
        seen_header = False
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s line %d is not valid JSON (torn write?); it is skipped", self.path, number)
                continue
            event = entry.get("event")
            if event == "header":
                seen_header = True
                if entry.get("format") != FORMAT or entry.get("version") != VERSION:
                    raise ValueError(
                        f"{self.path} is format {entry.get('format')!r} version {entry.get('version')!r}; this "
                        f"streamvqa reads {FORMAT!r} version {VERSION}: use a new archive folder"
                    )
            elif event == "shard":
                shards[entry["file"]] = entry
            elif event == "drop":
                shards.pop(entry["file"], None)
        if not seen_header:
            raise ValueError(f"{self.path} has no header line: it is not a streamvqa archive; use a new archive folder")
        return shards
