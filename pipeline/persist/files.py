"""The on-disk format ``streamvqa-session/1``: atomic writes, a checksummed manifest, verified reads.

Layout of a session folder::

    DIR/manifest.json                          format, model identity, snapshot name, sha256 + bytes per file
    DIR/snapshot-<time>-<id>/state.json        every component's JSON meta + which shard holds which tensor
    DIR/snapshot-<time>-<id>/tensors-00001-of-0000N.safetensors

Writing is atomic: the snapshot is written into ``DIR/.tmp-<snapshot>``, every file and the folder
are fsynced, the folder is renamed to its final name, then ``manifest.json`` is replaced with
``os.replace`` (atomic) and only then are older snapshots deleted. A crash or a full disk at any
point leaves the previous ``manifest.json`` pointing at the previous, intact snapshot.

Reading verifies before it trusts: the manifest's format version, then every listed file's size
(truncation) and sha256 (corruption) before a single tensor is loaded. Every failure is a
:class:`SessionFileError` that names the file and says what to do.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pipeline.errors import SessionFileError, SessionSaveError

logger = logging.getLogger(__name__)

FORMAT = "streamvqa-session/1"
MANIFEST = "manifest.json"
STATE = "state.json"
SHARD_BYTES = 1 << 30  # tensors per safetensors file, at most (one tensor larger than this gets its own)
_READ_BLOCK = 1 << 22

FRESH_START = "start a new session instead (drop --resume), or resume from another saved folder"


# ------------------------------------------------------------------------------------------ write
def write_session(
    folder: str | os.PathLike[str],
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    model: dict[str, Any],
    shard_bytes: int = SHARD_BYTES,
) -> Path:
    """Write a session atomically into ``folder`` (created, or replaced if it holds a session).

    Args:
        folder: the session folder.
        tensors: every tensor of the session state, by key (any device; copied to CPU).
        meta: the JSON meta of the session state.
        model: the model identity (``pipeline.persist.identity.model_identity``).
        shard_bytes: most bytes of tensors per safetensors file.

    Raises:
        SessionSaveError: the disk is full or not writable; the previous save (if any) is intact.
    """
    folder = Path(folder)
    _check_writable_target(folder)
    snapshot = f"snapshot-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    temp, final = folder / f".tmp-{snapshot}", folder / snapshot
    manifest_temp = folder / f".{MANIFEST}.tmp-{snapshot}"
    shards = _shards(tensors, shard_bytes)
    names = [f"tensors-{number:05d}-of-{len(shards):05d}.safetensors" for number in range(1, len(shards) + 1)]
    index = {key: name for name, shard in zip(names, shards) for key in shard}
    state_bytes = _json_bytes({"format": FORMAT, "tensor_index": index, "meta": meta})  # fails before any write
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temp.mkdir()
        files: dict[str, dict[str, Any]] = {}
        for name, shard in zip(names, shards):
            files[f"{snapshot}/{name}"] = write_tensor_file(temp / name, shard)
        files[f"{snapshot}/{STATE}"] = write_bytes_file(temp / STATE, state_bytes)
        _fsync(temp)
        os.rename(temp, final)
        _fsync(folder)
        manifest = {
            "format": FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "snapshot": snapshot,
            "model": model,
            "files": files,
        }
        write_bytes_file(manifest_temp, _json_bytes(manifest))
        os.replace(manifest_temp, folder / MANIFEST)
        _fsync(folder)
    except BaseException as error:  # nothing half-written stays behind, whatever failed
        _discard(temp, manifest_temp)
        if final.exists() and _current_snapshot(folder) != snapshot:
            _discard(final)
        if isinstance(error, OSError):
            raise _save_error(folder, error) from error
        raise
    _remove_stale(folder, keep=snapshot)
    logger.info("saved session to %s (%d tensors in %d files)", folder, len(tensors), len(files))
    return folder


def write_tensor_file(path: Path, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Write one safetensors file, fsync it; returns its ``{"bytes", "sha256"}`` record."""
    save_file(tensors, str(path))
    _fsync(path)
    return {"bytes": path.stat().st_size, "sha256": file_sha256(path)}


def write_bytes_file(path: Path, data: bytes) -> dict[str, Any]:
    """Write ``data`` to ``path`` and fsync it; returns its ``{"bytes", "sha256"}`` record."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _check_writable_target(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise SessionSaveError(f"cannot save the session to {folder}: it is a file; pass a folder path")
    if folder.is_dir() and not (folder / MANIFEST).exists():
        others = [p.name for p in folder.iterdir() if not p.name.startswith((".tmp-snapshot-", f".{MANIFEST}.tmp-"))]
        if others:
            raise SessionSaveError(
                f"cannot save the session to {folder}: the folder holds other files ({', '.join(sorted(others)[:3])}) "
                "and no saved session; pass a new or empty folder"
            )


def _shards(tensors: dict[str, torch.Tensor], shard_bytes: int) -> list[dict[str, torch.Tensor]]:
    """Tensors on CPU, contiguous, unshared, packed in key order into groups of at most ``shard_bytes``."""
    shards: list[dict[str, torch.Tensor]] = []
    size = shard_bytes
    seen: set[int] = set()
    for key in sorted(tensors):
        tensor = tensors[key].detach().to("cpu").contiguous()
        if tensor.numel() and tensor.untyped_storage().data_ptr() in seen:
            tensor = tensor.clone()  # safetensors refuses tensors that share memory
        if tensor.numel():
            seen.add(tensor.untyped_storage().data_ptr())
        nbytes = tensor.numel() * tensor.element_size()
        if not shards or size + nbytes > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes
    return shards


def _save_error(folder: Path, error: OSError) -> SessionSaveError:
    previous = "the previous save there is intact" if (folder / MANIFEST).exists() else "nothing was saved"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return SessionSaveError(
            f"no space left on the device while saving the session to {folder} ({error.filename or error}); "
            f"{previous}: free disk space or save to another folder"
        )
    return SessionSaveError(
        f"cannot save the session to {folder}: {error.strerror or error} ({error.filename or 'folder'}); "
        f"{previous}: check the path and its permissions"
    )


def _discard(*paths: Path) -> None:
    for path in paths:
        try:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
        except OSError as error:  # cleaning up after a failure must not hide the failure
            logger.warning("could not remove %s: %s", path, error)


def _current_snapshot(folder: Path) -> str | None:
    try:
        return json.loads((folder / MANIFEST).read_text()).get("snapshot")
    except (OSError, ValueError):
        return None


def _remove_stale(folder: Path, keep: str) -> None:
    """Delete snapshots and temporaries other than ``keep`` (older saves, leftovers of crashed ones)."""
    for path in folder.iterdir():
        stale = path.name.startswith(("snapshot-", ".tmp-snapshot-", f".{MANIFEST}.tmp-")) and path.name != keep
        if stale:
            _discard(path)


def _json_bytes(data: dict[str, Any]) -> bytes:
    """JSON text; a value JSON cannot carry (NaN, an object) is a bug in a component's ``state_dict``."""
    try:
        return json.dumps(data, indent=1, allow_nan=False).encode()
    except (TypeError, ValueError) as error:
        raise TypeError(f"session state is not JSON-serialisable: {error} (fix the component's state_dict)") from error


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's entries to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------- read
def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a session folder, its format version checked."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise SessionFileError(
            f"no saved session at {folder}: the folder does not exist; pass the folder given to --save-session"
        )
    if not path.is_file():
        raise SessionFileError(
            f"no saved session in {folder}: {MANIFEST} is missing; pass the folder given to --save-session "
            "(a save that was interrupted before its manifest was written left nothing to resume)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise SessionFileError(f"{path} is damaged ({error}); {FRESH_START}") from error
    if not isinstance(manifest, dict):
        raise SessionFileError(f"{path} is not a streamvqa session manifest; {FRESH_START}")
    found = manifest.get("format")
    if found != FORMAT:
        raise SessionFileError(
            f"{path} is in format {found!r}; this streamvqa reads {FORMAT!r}: resume it with the streamvqa "
            f"version that saved it, or {FRESH_START}"
        )
    if not _well_formed(manifest):
        raise SessionFileError(f"{path} is damaged (fields missing or malformed); {FRESH_START}")
    return manifest


def _well_formed(manifest: dict[str, Any]) -> bool:
    """Every field present and typed; file names stay inside the session's snapshot folder."""
    snapshot, files = manifest.get("snapshot"), manifest.get("files")
    if not isinstance(snapshot, str) or "/" in snapshot or snapshot in ("", ".", ".."):
        return False
    if not isinstance(manifest.get("model"), dict) or not isinstance(files, dict):
        return False
    for name, record in files.items():
        parts = name.split("/")
        if len(parts) != 2 or parts[0] != snapshot or parts[1] in ("", ".", ".."):
            return False
        if not isinstance(record, dict) or not isinstance(record.get("bytes"), int):
            return False
        if not isinstance(record.get("sha256"), str):
            return False
    return f"{snapshot}/{STATE}" in files


def state_file(manifest: dict[str, Any]) -> str:
    """The manifest name of the snapshot's ``state.json``."""
    return f"{manifest['snapshot']}/{STATE}"


def verify_files(folder: Path, manifest: dict[str, Any], names: list[str] | None = None) -> None:
    """Check the files the manifest lists (or ``names`` of them): present, of the recorded size, with
    the recorded sha256."""
    for name, record in manifest["files"].items():
        if names is not None and name not in names:
            continue
        path = folder / name
        if not path.is_file():
            raise SessionFileError(f"session file {path} is missing; {FRESH_START}")
        size = path.stat().st_size
        if size != record["bytes"]:
            what = "truncated" if size < record["bytes"] else "longer than saved"
            raise SessionFileError(
                f"session file {path} is {what} ({size} bytes, {record['bytes']} saved); {FRESH_START}"
            )
        if file_sha256(path) != record["sha256"]:
            raise SessionFileError(
                f"session file {path} is corrupted (sha256 differs from the manifest); {FRESH_START}"
            )


def read_session(
    folder: str | os.PathLike[str], manifest: dict[str, Any], device: torch.device | str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verify every file, then load ``(tensors on device, meta)``."""
    folder = Path(folder)
    verify_files(folder, manifest)
    snapshot = folder / manifest["snapshot"]
    state_path = snapshot / STATE
    try:
        state = json.loads(state_path.read_text())
        index: dict[str, str] = state["tensor_index"]
        meta: dict[str, Any] = state["meta"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SessionFileError(f"session file {state_path} is unreadable ({error}); {FRESH_START}") from error
    tensors: dict[str, torch.Tensor] = {}
    for name in sorted(set(index.values())):
        path = snapshot / name
        try:
            tensors.update(load_file(str(path), device=str(device)))
        except (OSError, SafetensorError) as error:
            raise SessionFileError(f"session file {path} is unreadable ({error}); {FRESH_START}") from error
    missing = sorted(set(index) - set(tensors))
    if missing:
        raise SessionFileError(f"session tensors {missing[:3]} are missing from {snapshot}; {FRESH_START}")
    return tensors, meta
