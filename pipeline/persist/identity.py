"""Which model a saved session belongs to: family, name, config hash, weights fingerprint, dtype.

A KV cache is only meaningful for the exact weights that wrote it, so a session resumes only on a
model with the same family, architecture config (hash of ``config.to_dict()`` without paths and
versions), dtype and weights. The weights fingerprint hashes the names, shapes and the first
``_SAMPLE`` values (as float32) of every parameter: cheap on any model size, and two random-weight
checkpoints of the same config still differ. The name or path may differ (a moved folder).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import SessionFileError

_SAMPLE = 64
_IGNORED_CONFIG_KEYS = {"_name_or_path", "transformers_version", "dtype", "torch_dtype", "_commit_hash"}


def model_identity(model: Any) -> dict[str, Any]:
    """JSON identity of a loaded :class:`~models.protocol.VideoLM`."""
    module = getattr(model, "model", None)
    dtype = getattr(model, "dtype", None)
    return {
        "family": model.family,
        "model_id": model.model_id,
        "num_layers": model.num_layers,
        "dtype": str(dtype).removeprefix("torch.") if dtype is not None else None,
        "config_sha256": _config_sha256(module),
        "weights_sha256": _weights_sha256(module),
    }


def check_same_model(saved: dict[str, Any], model: Any, folder: Path) -> None:
    """Raise :class:`SessionFileError` naming the difference when ``model`` is not the saved one."""
    here = model_identity(model)
    saved_name = f"{saved.get('family')} model {saved.get('model_id')}"
    load_it = f"load that model to resume (--model {saved.get('model_id')})"
    if saved.get("family") != here["family"]:
        raise SessionFileError(
            f"the session in {folder} was saved with the {saved_name}; this is a {here['family']} model "
            f"({here['model_id']}): {load_it}"
        )
    if saved.get("config_sha256") != here["config_sha256"] or saved.get("num_layers") != here["num_layers"]:
        raise SessionFileError(
            f"the session in {folder} was saved with the {saved_name}, whose architecture config differs from "
            f"{here['model_id']}: {load_it}"
        )
    if saved.get("dtype") != here["dtype"]:
        raise SessionFileError(
            f"the session in {folder} holds a {saved.get('dtype')} memory; this model runs in {here['dtype']}: "
            f"load it with --dtype {saved.get('dtype')}"
        )
    if saved.get("weights_sha256") != here["weights_sha256"]:
        raise SessionFileError(
            f"the session in {folder} was saved with the {saved_name}, whose weights differ from those of "
            f"{here['model_id']}: {load_it}"
        )


def _config_sha256(module: Any) -> str | None:
    config = getattr(module, "config", None)
    if config is None:
        return None
    data = {k: v for k, v in config.to_dict().items() if k not in _IGNORED_CONFIG_KEYS}
    for sub in data.values():
        if isinstance(sub, dict):
            for key in _IGNORED_CONFIG_KEYS:
                sub.pop(key, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _weights_sha256(module: Any) -> str | None:
    if not isinstance(module, torch.nn.Module):
        return None
    digest = hashlib.sha256()
    samples = []
    with torch.no_grad():
        for name, parameter in sorted(module.named_parameters()):
            digest.update(f"{name}:{tuple(parameter.shape)};".encode())
            samples.append(parameter.detach().reshape(-1)[:_SAMPLE].float())
    if samples:
        digest.update(torch.cat(samples).cpu().numpy().tobytes())
    return digest.hexdigest()
