"""Shared fixtures: an isolated data root per test, the offline datasets in ../shared/data, tiny models."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """Offline datasets for tests: ``$HELPERS_TEST_DATA``, else ``../shared/data`` beside the checkout."""
    return Path(os.environ.get("HELPERS_TEST_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared() -> Path:
    path = shared_data()
    if not (path / "MNIST").is_dir():
        pytest.skip(f"offline test data not found at {path} (set HELPERS_TEST_DATA to the shared data folder)")
    return path


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    """A fresh, empty HELPERS_DATA so tests never touch the user's cache."""
    root = tmp_path / "data"
    monkeypatch.setenv("HELPERS_DATA", str(root))
    monkeypatch.delenv("HELPERS_ALLOW_DOWNLOAD", raising=False)
    return root


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    yield
