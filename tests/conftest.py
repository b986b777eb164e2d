"""Shared test setup: no windows, no writes to the real checkpoint cache."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty checkpoint cache (AIGC_LAB_CACHE)."""
    monkeypatch.setenv("AIGC_LAB_CACHE", str(tmp_path_factory.mktemp("cache")))
