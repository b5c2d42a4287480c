"""Shared fixtures: tiny checkpoints (tests/model_fixtures.py)."""

from tests.model_fixtures import tiny_checkpoints, tiny_models  # noqa: F401
