"""Session-wide tiny checkpoints of the real architectures, built offline once per test run."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import load_model, make_tiny

FAMILIES = ["qwen2_vl", "qwen2_5_vl"]


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``family -> folder`` of a tiny random-weight checkpoint written with save_pretrained."""
    root = tmp_path_factory.mktemp("tiny")
    return {family: make_tiny(root / family, family) for family in FAMILIES}


@pytest.fixture(scope="session")
def tiny_models(tiny_checkpoints: dict[str, Path]) -> dict:
    """``family -> VideoLM`` loaded back through the same from_pretrained path users take."""
    return {
        family: load_model(str(path), device="cpu", dtype="float32", local_files_only=True)
        for family, path in tiny_checkpoints.items()
    }


NEW_FAMILIES = ["qwen3_vl", "llava_onevision", "smolvlm"]


@pytest.fixture(scope="session")
def family_checkpoints(tiny_checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every registered family's tiny checkpoint: the Qwen2 ones above plus the newer families.

    Built in a fixture of its own so that tests which use only ``tiny_checkpoints`` do not pay for them.
    """
    root = tmp_path_factory.mktemp("tiny_families")
    return {**tiny_checkpoints, **{family: make_tiny(root / family, family) for family in NEW_FAMILIES}}


@pytest.fixture(scope="session")
def family_models(tiny_models: dict, family_checkpoints: dict[str, Path]) -> dict:
    """``family -> VideoLM`` for every registered family, loaded through ``load_model``."""
    new = {
        family: load_model(str(family_checkpoints[family]), device="cpu", dtype="float32", local_files_only=True)
        for family in NEW_FAMILIES
    }
    return {**tiny_models, **new}
