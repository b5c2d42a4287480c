"""Session persistence: ``session.save(folder)`` and ``VideoQA.resume(folder)``.

A resumed session continues the stream exactly: the same memory (cache tensors, lengths, origin
indices, block ledger, counters, policy), the same positions (cursor, re-index shifts), the same
clock, frame grid, pending frames and token-drop reference; the next answer is the one the
uninterrupted session would give (same tokens, greedy).

**Contract for components.** Every stateful per-stream component implements
``state_dict() -> (dict[str, Tensor], dict JSON-meta)`` and ``load_state_dict(tensors, meta)``
(see :mod:`memory.stateful`). Composites nest their parts by name; the session's parts are listed in
``pipeline/persist/session_state.py`` and the memory bank's in ``MemoryBank.stateful_parts``. A new
tier (an archive, a quantised KV tier) joins saved sessions by implementing the two methods and being
added to its owner's parts; the on-disk format does not change.

**Format** ``streamvqa-session/1`` (:mod:`pipeline.persist.files`): tensors in safetensors shards,
meta in JSON, a manifest with the model identity and a sha256 per file, written atomically (a
temporary snapshot folder, fsync, rename, then an atomic manifest replace); a damaged, truncated,
foreign-model or other-version folder is refused with a :class:`~pipeline.errors.SessionFileError`
that names the file and what to do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import StreamConfig
from pipeline.errors import SessionFileError
from pipeline.persist.files import (
    FORMAT,
    FRESH_START,
    read_manifest,
    read_session,
    state_file,
    verify_files,
    write_session,
)
from pipeline.persist.identity import check_same_model, model_identity
from pipeline.persist.session_state import session_state

if TYPE_CHECKING:
    from models.protocol import VideoLM
    from pipeline.session import StreamSession

# Sections that shape what memory holds: a resumed session must keep them as saved.
STATE_SECTIONS = ("memory", "ingest", "question")


def save_session(session: StreamSession, folder: str | os.PathLike[str]) -> Path:
    """Write ``session`` to ``folder`` atomically (see :mod:`pipeline.persist.files`)."""
    tensors, meta = session_state(session)
    return write_session(folder, tensors, meta, model_identity(session.model))


def saved_config(folder: str | os.PathLike[str]) -> StreamConfig:
    """The configuration a session folder was saved with (format and ``state.json`` checksum checked)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    verify_files(folder, manifest, [state_file(manifest)])
    return _config_from(read_session_meta(folder, manifest), folder)


def saved_model_id(folder: str | os.PathLike[str]) -> str:
    """The name or path of the model a session folder was saved with."""
    return str(read_manifest(folder)["model"].get("model_id"))


def read_session_meta(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The saved meta alone (no tensors loaded), for a quick look at the configuration."""
    path = folder / state_file(manifest)
    try:
        return json.loads(path.read_text())["meta"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SessionFileError(f"session file {path} is unreadable ({error}); {FRESH_START}") from error


def load_session(
    model: VideoLM, folder: str | os.PathLike[str], config: StreamConfig | None = None
) -> StreamSession:
    """A session on ``model`` that continues the one saved in ``folder``.

    Args:
        model: the model the session was saved with (checked: family, config, dtype, weights).
        folder: a folder written by :meth:`StreamSession.save`.
        config: the configuration to continue with (None: the saved one). Its ``memory``, ``ingest``
            and ``question`` sections must equal the saved ones; ``source`` and ``sampling`` may differ.
    """
    from pipeline.session import StreamSession

    folder = Path(folder)
    manifest = read_manifest(folder)
    check_same_model(manifest.get("model", {}), model, folder)
    tensors, meta = read_session(folder, manifest, device=getattr(model, "device", "cpu"))
    saved = _config_from(meta, folder)
    config = _continuing_config(saved, config, folder)
    session = StreamSession(model, config)
    try:
        session.load_state_dict(tensors, meta)
    except (KeyError, ValueError, TypeError, IndexError) as error:
        raise SessionFileError(
            f"the session in {folder} does not fit this model or version ({error}); {FRESH_START}"
        ) from error
    return session


def _config_from(meta: dict[str, Any], folder: Path) -> StreamConfig:
    try:
        data = dict(meta["config"])
        sampling = dict(data.get("sampling", {}))
        if "stop" in sampling:
            sampling["stop"] = tuple(sampling["stop"])
        data["sampling"] = sampling
        return StreamConfig.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        raise SessionFileError(f"the configuration saved in {folder} is unreadable ({error}); {FRESH_START}") from error


def _continuing_config(saved: StreamConfig, wanted: StreamConfig | None, folder: Path) -> StreamConfig:
    if wanted is None:
        return saved
    for section in STATE_SECTIONS:
        old, new = getattr(saved, section).__dict__, getattr(wanted, section).__dict__
        changed = [key for key in old if old[key] != new[key]]
        if changed:
            key = changed[0]
            raise SessionFileError(
                f"the session in {folder} was saved with {section}.{key}={old[key]!r}; this run asks for "
                f"{new[key]!r}: keep the saved setting to resume (drop the flag), or start a new session"
            )
    return wanted


__all__ = ["FORMAT", "STATE_SECTIONS", "load_session", "save_session", "saved_config", "saved_model_id"]
