"""Shared fixtures: tiny checkpoints (tests/model_fixtures.py); the ``slow`` marker's gating.

Tests marked ``@pytest.mark.slow`` run only when asked for: ``pytest -m slow`` or ``STREAMVQA_SLOW=1``.
"""

from __future__ import annotations

import os

import pytest

from tests.model_fixtures import tiny_checkpoints, tiny_models  # noqa: F401


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = "slow" in (config.getoption("-m") or "") or os.environ.get("STREAMVQA_SLOW") == "1"
    if wanted:
        return
    skip = pytest.mark.skip(reason="slow test: run with `pytest -m slow` or STREAMVQA_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
