"""One validated configuration tree: defaults, then a JSON file, then CLI flags.

Every field has a default that works for a user with a GPU and internet; ``StreamConfig.from_dict``
rejects unknown keys with the list of valid ones, so a typo in a config file never passes silently.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.protocol import SamplingParams
from pipeline.errors import UserInputError

# Qwen2.5-VL-3B-Instruct: the smallest Qwen2.5-VL with strong video QA; bf16 weights (~7.5 GB) leave
# room for a long KV cache on a 24 GB GPU, and it prefills several frames per second there.
DEFAULT_MODEL_ID = "Qwen/Qwen2.5-VL-3B-Instruct"


@dataclass
class ModelConfig:
    """Which checkpoint, where, in which precision.

    Attributes:
        model: hub id or local folder.
        device: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:1``...
        dtype: ``auto`` (bfloat16 on CUDA, float32 on CPU), ``float32``, ``bfloat16``, ``float16``.
        attn_implementation: ``sdpa`` (default), ``eager`` or ``flash_attention_2``.
        max_frame_pixels: most pixels per frame after resizing (bounds tokens per frame).
        local_files_only: never contact the hub.
    """

    model: str = DEFAULT_MODEL_ID
    device: str = "auto"
    dtype: str = "auto"
    attn_implementation: str = "sdpa"
    max_frame_pixels: int = 448 * 448
    local_files_only: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise UserInputError(f"dtype {self.dtype!r} is not one of auto, float32, bfloat16, float16")
        if self.attn_implementation not in ("sdpa", "eager", "flash_attention_2"):
            raise UserInputError(
                f"attn_implementation {self.attn_implementation!r} is not one of sdpa, eager, flash_attention_2"
            )
        if self.max_frame_pixels < 28 * 28:
            raise UserInputError(f"max_frame_pixels must be at least {28 * 28}, got {self.max_frame_pixels}")


@dataclass
class SourceConfig:
    """How frames are taken from a source.

    Attributes:
        fps: frames sampled per second of media (None keeps every decoded frame).
        start: first second of the clip (files).
        end: last second of the clip, inclusive (files).
        realtime: pace file sources at their real speed, like a live camera.
    """

    fps: float | None = 1.0
    start: float | None = None
    end: float | None = None
    realtime: bool = False

    def __post_init__(self) -> None:
        if self.fps is not None and self.fps <= 0:
            raise UserInputError(f"fps must be positive, got {self.fps}: pass e.g. --fps 1")
        if self.start is not None and self.start < 0:
            raise UserInputError(f"start must be >= 0 seconds, got {self.start}")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise UserInputError(f"end ({self.end}) is before start ({self.start})")


@dataclass
class MemoryConfig:
    """How the KV memory is bounded.

    Attributes:
        policy: memory policy name (``streamvqa policies`` lists them).
        window_frames: frames in the short-term window, kept at full precision (None: keep every
            frame, unbounded memory).
        budget_tokens: long-term tokens kept per layer and KV head for frames that left the window
            (None: unbounded; ``sink_window`` keeps none).
        budget_bytes: bytes the full-precision long-term memory may take over all layers and heads
            (None: no byte cap); with ``budget_tokens`` too, the tighter one wins.
    """

    policy: str = "sink_window"
    window_frames: int | None = 128
    budget_tokens: int | None = 4096
    budget_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.window_frames is not None and self.window_frames < 1:
            raise UserInputError(f"window_frames must be >= 1 (or null for unbounded), got {self.window_frames}")
        if self.budget_tokens is not None and self.budget_tokens < 0:
            raise UserInputError(f"budget_tokens must be >= 0 (or null for unbounded), got {self.budget_tokens}")
        if self.budget_bytes is not None and self.budget_bytes < 0:
            raise UserInputError(f"budget_bytes must be >= 0 (or null for no byte cap), got {self.budget_bytes}")


@dataclass
class IngestConfig:
    """How frames are batched into the model.

    Attributes:
        chunks_per_forward: temporal chunks encoded and prefilled per forward call (larger is faster
            up to memory limits; an answer never waits for more than one forward).
    """

    chunks_per_forward: int = 4

    def __post_init__(self) -> None:
        if self.chunks_per_forward < 1:
            raise UserInputError(f"chunks_per_forward must be >= 1, got {self.chunks_per_forward}")


@dataclass
class QuestionConfig:
    """What a question may be and how it is framed.

    Attributes:
        system_prompt: system turn at the head of every stream.
        max_question_tokens: longest question accepted, in tokens.
    """

    system_prompt: str = "You are a helpful assistant."
    max_question_tokens: int = 2048


@dataclass
class ArchiveConfig:
    """Where frame blocks go when they leave the short-term window, and how answers pull them back.

    Attributes:
        enabled: archive frame blocks and retrieve from them at question time.
        ram_mb: CPU RAM budget of the archive (MiB); older blocks spill to disk.
        disk_mb: disk budget (MiB) of the shards in ``folder``; the oldest are deleted beyond it.
        folder: session folder for the disk tier (None: RAM only; blocks beyond ``ram_mb`` are dropped).
            Must not hold an archive already (a saved session is resumed, not reused).
        retriever: ``auto`` (image questions: visual, text questions: internal), ``internal``, ``visual``.
        top_k: frame blocks retrieved per answer.
        chunk_blocks: consecutive frame blocks scored and retrieved together (temporal chunking).
        per_layer: internal retrieval vectors per layer instead of one shared across layers.
        recency_correction: correct the upward drift of similarity over time.
    """

    enabled: bool = False
    ram_mb: float = 2048.0
    disk_mb: float = 20480.0
    folder: str | None = None
    retriever: str = "auto"
    top_k: int = 8
    chunk_blocks: int = 1
    per_layer: bool = False
    recency_correction: bool = True

    def __post_init__(self) -> None:
        if self.ram_mb < 0 or self.disk_mb < 0:
            raise UserInputError(f"archive ram_mb and disk_mb must be >= 0, got {self.ram_mb}, {self.disk_mb}")
        if self.retriever not in ("auto", "internal", "visual"):
            raise UserInputError(f"archive retriever {self.retriever!r} is not one of auto, internal, visual")
        if self.top_k < 0 or self.chunk_blocks < 1:
            raise UserInputError(
                f"archive top_k must be >= 0 and chunk_blocks >= 1, got {self.top_k}, {self.chunk_blocks}"
            )


@dataclass
class StreamConfig:
    """The whole configuration of a :class:`~pipeline.videoqa.VideoQA` and its sessions."""

    model: ModelConfig = field(default_factory=ModelConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    question: QuestionConfig = field(default_factory=QuestionConfig)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamConfig:
        """Build from nested dicts; unknown sections or keys are errors that list the valid ones."""
        kwargs: dict[str, Any] = {}
        sections = {f.name: f for f in dataclasses.fields(cls)}
        for name, value in data.items():
            if name not in sections:
                raise UserInputError(f"unknown config section {name!r}; valid sections: {', '.join(sections)}")
            section_type = type(getattr(cls(), name))
            valid = {f.name for f in dataclasses.fields(section_type)}
            unknown = set(value) - valid
            if unknown:
                raise UserInputError(
                    f"unknown key(s) {', '.join(sorted(unknown))} in config section {name!r}; "
                    f"valid keys: {', '.join(sorted(valid))}"
                )
            try:
                kwargs[name] = section_type(**value)
            except ValueError as error:
                raise UserInputError(f"config section {name!r}: {error}") from error
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> StreamConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as error:
            raise UserInputError(f"config file not found: {path}") from error
        except json.JSONDecodeError as error:
            raise UserInputError(f"config file {path} is not valid JSON (line {error.lineno}): {error.msg}") from error
        return cls.from_dict(data)

    def replace(self, section: str, **changes: Any) -> StreamConfig:
        """A copy with some fields of one section changed (None values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        updated = dataclasses.replace(getattr(self, section), **changes)
        return dataclasses.replace(self, **{section: updated})
