
import torch

from helpers.data import settings


def test_data_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path / "x"))
    assert settings.data_root() == (tmp_path / "x").resolve()
    assert settings.cache_root() == (tmp_path / "x" / "cache").resolve()


def test_data_root_defaults_to_repo_data(monkeypatch):
    monkeypatch.delenv("HELPERS_DATA", raising=False)
    root = settings.repo_root()
    assert root is not None and (root / "pyproject.toml").is_file()
    assert settings.data_root() == root / "data"


def test_allow_download(monkeypatch):
    monkeypatch.delenv("HELPERS_ALLOW_DOWNLOAD", raising=False)
    assert settings.allow_download() is False
    for value, expected in [("1", True), ("yes", True), ("0", False), ("", False), ("TRUE", True)]:
        monkeypatch.setenv("HELPERS_ALLOW_DOWNLOAD", value)
        assert settings.allow_download() is expected


def test_device_override(monkeypatch):
    monkeypatch.setenv("HELPERS_DEVICE", "cpu")
    assert settings.default_device() == torch.device("cpu")


def test_kit_roots_search_the_kit_before_the_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("HELPERS_KIT", raising=False)
    assert settings.kit_roots() == [(tmp_path / "data").resolve()]
    monkeypatch.setenv("HELPERS_KIT", str(tmp_path / "kit"))
    assert settings.kit_roots() == [(tmp_path / "kit").resolve(), (tmp_path / "data").resolve()]
