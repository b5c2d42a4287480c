"""Resolve a model name to a backbone family and load it, with errors that say what to do.

A family is registered by one line in ``FAMILIES``: its transformers ``model_type``, the class that
implements ``VideoLM`` for it, the function that writes a tiny random-weight checkpoint, and what
``streamvqa models`` shows. ``random:<name>`` loads a real-size random-weight model
(``models/random_configs.py``) for benchmarks without downloads.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from models import llava_onevision, qwen2_vl, qwen3_vl, smolvlm
from models.protocol import VideoLM
from models.random_configs import RANDOM_CONFIGS, RANDOM_PREFIX
from pipeline.errors import ModelLoadError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Family:
    """One supported backbone family.

    Attributes:
        default_frame_hw: ``(height, width)`` frames are resized to for a 16:9 640x360 source at the
            default pixel budget (``model.max_frame_pixels`` = 448 x 448) with the released
            checkpoints' processor settings (fixed-size towers ignore the source size).
        tokens_per_frame: visual tokens per frame at that size (framing text and delimiters excluded).
    """

    model_type: str
    loader: Callable[..., VideoLM]
    build_tiny: Callable[[Path, str, str], None]
    description: str
    default_frame_hw: tuple[int, int]
    tokens_per_frame: float


# Frame sizes: Qwen2/2.5-VL round to multiples of 28 inside the pixel budget (12 x 21 merged tokens per
# 2-frame chunk); Qwen3-VL to multiples of 32 (10 x 18 per chunk); LLaVA-OneVision pools SigLIP's 27 x 27
# patches to 14 x 14; SmolVLM2-2.2B shuffles 27 x 27 patches by 3 into 9 x 9.
FAMILIES: dict[str, Family] = {
    "qwen2_vl": Family("qwen2_vl", qwen2_vl.QwenVL.from_pretrained, qwen2_vl.build_tiny, "Qwen2-VL", (336, 588), 126),
    "qwen2_5_vl": Family(
        "qwen2_5_vl", qwen2_vl.QwenVL.from_pretrained, qwen2_vl.build_tiny, "Qwen2.5-VL", (336, 588), 126
    ),
    "qwen3_vl": Family("qwen3_vl", qwen3_vl.Qwen3VL.from_pretrained, qwen3_vl.build_tiny, "Qwen3-VL", (320, 576), 90),
    "llava_onevision": Family(
        "llava_onevision", llava_onevision.LlavaOneVision.from_pretrained, llava_onevision.build_tiny,
        "LLaVA-OneVision", (384, 384), 196,
    ),
    "smolvlm": Family("smolvlm", smolvlm.SmolVLM.from_pretrained, smolvlm.build_tiny, "SmolVLM2", (384, 384), 81),
}


def family(model_type: str) -> Family:
    """The registered family for ``model_type``; unknown types list the supported ones."""
    try:
        return FAMILIES[model_type]
    except KeyError:
        raise ModelLoadError(
            f"model type {model_type!r} is not supported; supported families: {', '.join(FAMILIES)}"
        ) from None


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ModelLoadError(f"device {device!r} is not valid: use auto, cpu, cuda or cuda:N") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} was asked for but no CUDA GPU is visible: use --device cpu")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def read_model_type(name: str, local_files_only: bool) -> str:
    """``model_type`` of a local folder or hub id, raising :class:`ModelLoadError` with the fix."""
    path = Path(name)
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.is_file():
            raise ModelLoadError(
                f"{path} is a folder without config.json: point --model at a checkpoint folder "
                "(one written by save_pretrained or `streamvqa make-tiny`)"
            )
        try:
            return json.loads(config_file.read_text())["model_type"]
        except (json.JSONDecodeError, KeyError) as error:
            raise ModelLoadError(f"{config_file} is not a transformers config (no model_type)") from error
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1):
        raise ModelLoadError(
            f"model folder not found: {name}: check the path, or make one with `streamvqa make-tiny DIR`"
        )
    from transformers import AutoConfig

    if not local_files_only and not _is_cached(name) and not hub_reachable():
        raise ModelLoadError(
            f"cannot reach the Hugging Face Hub to download {name!r} and it is not in the local cache; "
            "download it where the Hub is reachable and pass the folder, or run offline with a tiny "
            "random-weight model: `streamvqa make-tiny /tmp/tiny` then `--model /tmp/tiny`"
        )
    try:
        return AutoConfig.from_pretrained(name, local_files_only=local_files_only).model_type
    except OSError as error:
        raise ModelLoadError(
            f"cannot load {name!r} from the Hugging Face Hub (offline, unknown id, or gated); "
            "download it where the Hub is reachable and pass the folder, or run offline with a tiny "
            "random-weight model: `streamvqa make-tiny /tmp/tiny && --model /tmp/tiny`"
        ) from error
    except ValueError as error:
        raise ModelLoadError(f"{name!r} is not a model transformers can load: {error}") from error


def _is_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hub endpoint accepts a TCP connection (False at once when HF_HUB_OFFLINE is set).

    Checked before any download so that an offline machine gets an answer in seconds rather than
    after the Hub client's retries (about 30 s).
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def load_model(
    name: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    attn_implementation: str = "sdpa",
    max_frame_pixels: int | None = None,
    local_files_only: bool = False,
) -> VideoLM:
    """Load the checkpoint ``name`` (hub id, folder, or ``random:<config>``) as a :class:`VideoLM`."""
    if name.startswith(RANDOM_PREFIX):
        return _load_random(name[len(RANDOM_PREFIX) :], device, dtype, attn_implementation, max_frame_pixels)
    if not local_files_only and not Path(name).is_dir() and not hub_reachable():
        local_files_only = True  # a cached hub id: load it from the cache without waiting on retries
    model_type = read_model_type(name, local_files_only)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    logger.info("loading %s (%s) on %s as %s", name, model_type, torch_device, torch_dtype)
    try:
        return family(model_type).loader(
            name,
            device=torch_device,
            dtype=torch_dtype,
            attn_implementation=attn_implementation,
            max_frame_pixels=max_frame_pixels,
            local_files_only=local_files_only,
        )
    except OSError as error:
        raise ModelLoadError(f"cannot load the weights or processor of {name!r}: {error}") from error


def _load_random(
    config_name: str, device: str, dtype: str, attn_implementation: str, max_frame_pixels: int | None
) -> VideoLM:
    from models.random_configs import load_random

    if config_name not in RANDOM_CONFIGS:
        raise ModelLoadError(
            f"unknown random config {config_name!r}; valid: "
            + ", ".join(RANDOM_PREFIX + name for name in RANDOM_CONFIGS)
        )
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    return load_random(
        config_name, device=torch_device, dtype=torch_dtype, attn_implementation=attn_implementation,
        max_frame_pixels=max_frame_pixels,
    )


def make_tiny(out_dir: str | Path, model_type: str = "qwen2_5_vl", size: str = "tiny") -> Path:
    """Write a random-weight checkpoint of a real architecture to ``out_dir`` (size: tiny or small)."""
    out = Path(out_dir)
    family(model_type).build_tiny(out, model_type, size)
    return out
