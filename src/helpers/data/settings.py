"""Settings read from the environment: where data lives, whether downloads are allowed, which device to use.

Every path the library touches goes through :func:`data_root`, so a profile, a test or a user can point the whole
book at another folder with ``HELPERS_DATA`` and never edit code.
"""
from __future__ import annotations

import os
from pathlib import Path
import torch



ENV_DATA = "HELPERS_DATA"


ENV_DOWNLOAD = "HELPERS_ALLOW_DOWNLOAD"


ENV_DEVICE = "HELPERS_DEVICE"


ENV_KIT = "HELPERS_KIT"


_TRUE = {"1", "true", "yes", "on"}


def repo_root() -> Path | None:
    """The checkout this package was installed from in editable mode, or ``None`` for a regular install."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() and (root / "src" / "helpers").is_dir() else None


def data_root() -> Path:
    """Folder for downloads and caches: ``$HELPERS_DATA``, else ``<repo>/data``, else ``./data``."""
    if os.environ.get(ENV_DATA):
        return Path(os.environ[ENV_DATA]).expanduser().resolve()
    root = repo_root()
    return (root / "data") if root is not None else Path.cwd() / "data"


def cache_root() -> Path:
    """Folder for trained models and other cached artefacts (``<data root>/cache``)."""
    return data_root() / "cache"


def kit_roots() -> list[Path]:
    """Folders searched for offline dataset kits (such as the CIFAR-10 JPEG archive): ``$HELPERS_KIT`` first, then
    the data root. The kit folder is only read, so it may be a shared, read-only copy."""
    roots = [Path(os.environ[ENV_KIT]).expanduser().resolve()] if os.environ.get(ENV_KIT) else []
    return roots + [data_root()]


def allow_download() -> bool:
    """Whether loaders may fetch datasets from the internet (``HELPERS_ALLOW_DOWNLOAD=1``; off by default)."""
    return os.environ.get(ENV_DOWNLOAD, "").strip().lower() in _TRUE


def default_device() -> torch.device:
    """``$HELPERS_DEVICE`` if set, else CUDA when available, else CPU."""
    if os.environ.get(ENV_DEVICE):
        return torch.device(os.environ[ENV_DEVICE])
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
