"""Shared fixtures: an isolated data root per test, the offline datasets in ../shared/data, tiny models, and real
read-only folders and full disks (mounts; root ignores chmod)."""
from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def seeded_models(n: int, arch: str = "lenet", channels: int = 1) -> list[torch.nn.Module]:
    """``n`` untrained models of ``arch`` at seeds 0 … n−1 (10 classes), in eval mode: a tiny zoo."""
    from helpers.zoo.architectures import build_model

    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(build_model(arch, channels, 10).eval())
    return out


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of small tensors: on a shared 2-core machine intra-op threads only add
    contention (``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def _mount(*args: str) -> str | None:
    """Run mount/umount; the error text, or None on success."""
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    return None if r.returncode == 0 else (r.stderr.strip() or f"exit {r.returncode}")


@pytest.fixture
def read_only():
    """``with read_only(folder):`` makes ``folder`` a read-only bind mount of itself (root ignores chmod, so a
    permission bit proves nothing); skips where the machine allows no mounts."""

    @contextlib.contextmanager
    def make(folder: Path):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        err = _mount("mount", "--bind", str(folder), str(folder))
        if err is None:
            err = _mount("mount", "-o", "remount,bind,ro", str(folder))
            if err is not None:
                _mount("umount", str(folder))
        if err is not None:
            pytest.skip(f"cannot make a read-only mount here ({err}): needs root and mount rights")
        try:
            yield folder
        finally:
            _mount("umount", str(folder))

    return make


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a tmpfs of ``size`` bytes (a disk that fills up); skips where mounts are not allowed."""
    made = []

    def make(size: int) -> Path:
        folder = tmp_path / f"disk{len(made)}"
        folder.mkdir()
        err = _mount("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
        if err is not None:
            pytest.skip(f"cannot mount a small tmpfs here ({err}): needs root and mount rights")
        made.append(folder)
        return folder

    yield make
    for folder in made:
        _mount("umount", str(folder))


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
