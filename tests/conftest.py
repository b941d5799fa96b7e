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


def zoo_bytes(spec) -> dict[str, bytes]:
    """The weights files of a zoo's models, by name (for byte-for-byte comparisons)."""
    from helpers.zoo.spec import model_name

    return {model_name(i, d): (spec.directory / f"{model_name(i, d)}.pt").read_bytes() for i, d in spec.seed_pairs}


@pytest.fixture
def slurm_conf(monkeypatch) -> Path:
    """A running SLURM (``make slurm-up``): its ``SLURM_CONF``; skips with the reason where there is none."""
    import shutil
    import subprocess

    if shutil.which("sbatch") is None:
        pytest.skip("sbatch not found: SLURM is not installed (run `make slurm-up` as root to test on a real SLURM)")
    conf = Path(os.environ.get("SLURM_CONF", ROOT / "build" / "slurm" / "slurm.conf"))
    if not conf.is_file():
        pytest.skip(f"no SLURM configuration at {conf}: run `make slurm-up` as root first")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    try:
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10).stdout
    except subprocess.TimeoutExpired:
        pytest.skip("sinfo did not answer in 10 s: SLURM is down (run `make slurm-up`)")
    if not any(s in state for s in ("idle", "mixed", "allocated")):
        pytest.skip(f"SLURM has no node up ({state.strip() or 'no answer'}): run `make slurm-up`")
    return conf
