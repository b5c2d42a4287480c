"""The archive's second tier: frame blocks in safetensors shards in a session folder.

A shard holds the blocks spilled from RAM in one go; it is written to a temporary name, renamed into
place, and then recorded in the journal with its sha256 and one sha256 per block (see
``journal.py``). Reads are lazy and memory-mapped (``safetensors.safe_open``); a shard written by an
earlier process is checked whole (size, sha256) on its first read, and every block read is checked
against its own sha256, so a file altered while the stream runs is caught too.

Faults never stop the stream:

* a missing, truncated or corrupted shard, or a checksum mismatch: a warning names the file and what
  to do; the shard's blocks are marked damaged, counted and never used;
* a full disk (``ENOSPC``) or another write error: a warning names the file; the blocks being
  written are lost (counted), and the tier keeps trying with later blocks.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save

from memory.archive.block import ArchivedBlock
from memory.archive.journal import Journal

logger = logging.getLogger(__name__)

SHARD_DIR = "shards"


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the names and raw bytes of ``tensors`` (sorted by name): one block's checksum."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


class DiskTier:
    """Shards on disk within ``budget_bytes``; the oldest shard is deleted when a new one does not fit.

    Args:
        folder: the archive folder (journal + ``shards/``); created if missing.
        budget_bytes: most bytes of shards kept.
    """

    def __init__(self, folder: str | Path, budget_bytes: int) -> None:
        self.folder = Path(folder)
        self.budget_bytes = budget_bytes
        self.journal = Journal(self.folder)
        self.shards: OrderedDict[str, dict[str, Any]] = OrderedDict()  # file -> journal entry
        self.where: dict[int, str] = {}  # block id -> shard file
        self.meta: dict[int, dict[str, Any]] = {}  # block id -> journal meta
        self._checked: dict[str, bool] = {}  # shard file -> checksum verified (False: damaged)
        self.nbytes = 0
        self.dropped_blocks = 0
        self.damaged_blocks = 0
        self.lost_blocks = 0
        self.write_failures = 0
        self._next_shard = 0
        if self.journal.exists():
            self._resume()
        else:
            (self.folder / SHARD_DIR).mkdir(parents=True, exist_ok=True)
            self.journal.create()

    def _resume(self) -> None:
        for file, entry in self.journal.replay().items():
            self._register(file, entry)
        numbers = [int(Path(f).stem.split("-")[-1]) for f in self.shards]
        self._next_shard = max(numbers, default=-1) + 1
        logger.info("reopened archive %s: %d shards, %d blocks", self.folder, len(self.shards), len(self.where))

    def _register(self, file: str, entry: dict[str, Any]) -> None:
        self.shards[file] = entry
        self.nbytes += int(entry["bytes"])
        for meta in entry["blocks"]:
            self.where[int(meta["id"])] = file
            self.meta[int(meta["id"])] = meta

    # ------------------------------------------------------------------------------------ writes
    def write(self, blocks: list[ArchivedBlock]) -> list[int]:
        """Write ``blocks`` as one shard; returns the ids of blocks that are gone (budget or write failure)."""
        if not blocks:
            return []
        file = f"{SHARD_DIR}/shard-{self._next_shard:06d}.safetensors"
        self._next_shard += 1
        path = self.folder / file
        tmp = path.with_suffix(".tmp")
        tensors: dict[str, torch.Tensor] = {}
        metas = []
        for block in blocks:
            block_tensors = block.tensors()
            tensors.update(block_tensors)
            prefix = f"b{block.block_id}."
            plain = {name[len(prefix):]: t for name, t in block_tensors.items()}
            metas.append({**block.meta(), "sha256": tensors_sha256(plain)})
        data = save(tensors)
        entry = {"event": "shard", "file": file, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                 "blocks": metas}
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            self.journal.append(entry)
        except OSError as error:
            for leftover in (tmp, path):
                leftover.unlink(missing_ok=True)
            self.write_failures += 1
            self.lost_blocks += len(blocks)
            cause = "the disk is full" if error.errno == errno.ENOSPC else f"write failed ({error})"
            logger.warning(
                "archive: %s writing %s; %d frame blocks (%.1f..%.1f s) were dropped. Free space on that disk, "
                "lower archive.disk_bytes or choose another archive folder; the stream goes on",
                cause, path, len(blocks), blocks[0].timestamps[0], blocks[-1].timestamps[-1],
            )
            return [block.block_id for block in blocks]
        self._register(file, entry)
        self._checked[file] = True  # written from the bytes just hashed
        return self._enforce_budget()

    def _enforce_budget(self) -> list[int]:
        gone: list[int] = []
        while self.nbytes > self.budget_bytes and self.shards:
            file, entry = next(iter(self.shards.items()))
            gone += self._drop(file, "disk budget")
            self.dropped_blocks += len(entry["blocks"])
        return gone

    def _drop(self, file: str, reason: str) -> list[int]:
        entry = self.shards.pop(file)
        self.nbytes -= int(entry["bytes"])
        ids = [int(meta["id"]) for meta in entry["blocks"]]
        for block_id in ids:
            self.where.pop(block_id, None)
            self.meta.pop(block_id, None)
        (self.folder / file).unlink(missing_ok=True)
        try:
            self.journal.append({"event": "drop", "file": file, "reason": reason})
        except OSError as error:
            logger.warning("archive: could not record the deletion of %s in %s (%s)", file, self.journal.path, error)
        return ids

    # ------------------------------------------------------------------------------------- reads
    def verify(self, file: str) -> bool:
        """Check a shard's size and sha256 against the journal (once); log what is wrong and what to do."""
        if file in self._checked:
            return self._checked[file]
        entry = self.shards[file]
        path = self.folder / file
        problem = None
        if not path.exists():
            problem = "is missing"
        elif path.stat().st_size != int(entry["bytes"]):
            problem = f"is truncated or altered ({path.stat().st_size} bytes, the journal says {entry['bytes']})"
        elif sha256_of(path) != entry["sha256"]:
            problem = "does not match its sha256 in the journal (corrupted)"
        ok = problem is None
        self._checked[file] = ok
        if not ok:
            self.damaged_blocks += len(entry["blocks"])
            logger.warning(
                "archive shard %s %s: its %d frame blocks are skipped. Restore the file from a backup or delete "
                "the archive folder %s to start a fresh archive; the stream goes on", path, problem,
                len(entry["blocks"]), self.folder,
            )
        return ok

    def get(self, block_id: int) -> ArchivedBlock | None:
        """The block, loaded lazily from its shard; None when it is not here or its shard is damaged."""
        file = self.where.get(block_id)
        if file is None or not self.verify(file):
            return None
        meta = self.meta[block_id]
        prefix = f"b{block_id}."
        try:
            with safe_open(str(self.folder / file), framework="pt") as shard:
                names = [n for n in shard.keys() if n.startswith(prefix)]
                tensors = {n[len(prefix):]: shard.get_tensor(n) for n in names}
        except Exception as error:  # noqa: BLE001 - safetensors raises its own error types
            self._checked[file] = False
            self.damaged_blocks += len(self.shards[file]["blocks"])
            logger.warning("archive shard %s cannot be read (%s): its blocks are skipped; delete the archive folder "
                           "%s to start a fresh archive", self.folder / file, error, self.folder)
            return None
        if "sha256" in meta and tensors_sha256(tensors) != meta["sha256"]:
            self.where.pop(block_id, None)
            self.damaged_blocks += 1
            logger.warning(
                "archive shard %s: frame block %d (%.1f s) does not match its sha256 in the journal (corrupted); it "
                "is skipped. Restore the file from a backup or delete the archive folder %s to start a fresh "
                "archive; the stream goes on", self.folder / file, block_id, meta["timestamps"][0], self.folder,
            )
            return None
        vectors = {n[len("vector."):]: t for n, t in tensors.items() if n.startswith("vector.")}
        return ArchivedBlock(block_id, tuple(meta["timestamps"]), meta["position"], tensors["logical"],
                             tensors["keys"], tensors["values"], vectors)

    def vectors(self, kind: str) -> list[tuple[int, torch.Tensor]]:
        """``(block id, vector)`` of every readable block that has a ``kind`` vector, in time order."""
        out = []
        for file, entry in self.shards.items():
            if not self.verify(file):
                continue
            with safe_open(str(self.folder / file), framework="pt") as shard:
                names = set(shard.keys())
                for meta in entry["blocks"]:
                    name = f"b{meta['id']}.vector.{kind}"
                    if name in names:
                        out.append((int(meta["id"]), shard.get_tensor(name)))
        return out

    def __len__(self) -> int:
        return len(self.where)
