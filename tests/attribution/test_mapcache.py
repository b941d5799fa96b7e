import os

import pytest
import torch

from helpers.attribution import mapcache
from helpers.attribution.marginal import method_maps

from ..conftest import seeded_models


def _models(m=3):
    return seeded_models(m)


def test_hit_returns_the_recomputed_maps_and_a_changed_parameter_misses(data_root, monkeypatch):
    models = _models()
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    pairs = [(i, i) for i in range(3)]
    kw = {"smoothgrad": {"seed": 0, "n_samples": 4}}
    first = mapcache.method_maps("zookey", pairs, models, ["gradient", "smoothgrad"], x, y, kw, progress=False)
    assert len(list((data_root / "cache" / "maps").glob("*.pt"))) == 2
    fresh = method_maps(["gradient", "smoothgrad"], models, x, y, kw, progress=False)
    calls = []
    monkeypatch.setattr("helpers.attribution.marginal.method_maps", lambda *a, **k: calls.append(a) or fresh)
    again = mapcache.method_maps("zookey", pairs, models, ["gradient", "smoothgrad"], x, y, kw, progress=False)
    assert not calls  # both from the cache
    for m in ("gradient", "smoothgrad"):
        assert torch.equal(again[m], first[m]) and torch.allclose(again[m], fresh[m], atol=1e-6)
    mapcache.method_maps("zookey", pairs, models, ["smoothgrad"], x, y, {"smoothgrad": {"seed": 1, "n_samples": 4}},
                         progress=False)
    mapcache.method_maps("zookey", pairs, models, ["gradient"], x, torch.tensor([4, 1, 2, 3]), progress=False)
    mapcache.method_maps("zookey", pairs, models, ["gradient"], x + 1e-3, y, progress=False)
    mapcache.method_maps("otherzoo", pairs, models, ["gradient"], x, y, progress=False)
    assert len(calls) == 4  # method seed, a target, an image, the zoo: each a miss


def test_keys_cover_code_and_seed_pairs(monkeypatch):
    x, y = torch.zeros(1, 1, 4, 4), torch.tensor([0])
    base = mapcache.key("z", [(0, 0)], "gradient", {}, x, y)
    assert base == mapcache.key("z", [(0, 0)], "gradient", {}, x.clone(), y.clone())
    assert base != mapcache.key("z", [(0, 1)], "gradient", {}, x, y)
    monkeypatch.setattr(mapcache, "code_version", lambda method=None: "edited")
    assert base != mapcache.key("z", [(0, 0)], "gradient", {}, x, y)


def test_code_version_follows_the_module_that_defines_the_method():
    """An edit to perturbation.py (RISE) or positive.py (chapter 7) must not invalidate the gradient's maps."""
    from helpers.attribution import METHODS

    names = lambda m: {f"{p.parent.name}/{p.name}" for p in mapcache.code_files(m)}  # noqa: E731
    shared = {"attribution/registry.py", "attribution/marginal.py", "zoo/architectures.py"}
    assert names("gradient") == shared | {"attribution/gradients.py"}
    assert names("rise") == names("occlusion") == shared | {"attribution/perturbation.py"}
    assert names("lime") == shared | {"attribution/surrogate.py"}
    assert names("gradcam_pp") == shared | {"attribution/positive.py"}
    assert all(len(names(m)) == 4 for m in METHODS)  # each method's own module on top of the shared three
    assert mapcache.code_version("gradient") != mapcache.code_version("rise")
    assert mapcache.code_version("gradient") == mapcache.code_version("input_x_gradient")  # one module


def test_a_damaged_file_is_a_miss(data_root):
    folder = data_root / "cache" / "maps"
    folder.mkdir(parents=True)
    (folder / "abc.pt").write_bytes(b"not a tensor")
    with pytest.warns(UserWarning, match="abc.pt was bad .*cannot be read"):
        assert mapcache.load("abc") is None
    assert not (folder / "abc.pt").exists() and mapcache.load("missing") is None
    assert mapcache.save("abc", torch.ones(2, 2))
    assert torch.equal(mapcache.load("abc"), torch.ones(2, 2)) and not list(folder.glob("*.tmp*"))
    assert (folder / "abc.pt").stat().st_mode & 0o777 == 0o644  # like the zoo's files


def _entry(folder, k):
    return torch.load(folder / f"{k}.pt", weights_only=True)


def _flip_a_bit_in_the_data(path, index):
    """Flip one exponent bit of the float at ``index`` of the tensor data inside the zip, as a disk fault would."""
    import numpy as np

    raw = bytearray(path.read_bytes())
    value = np.float32(torch.load(path, weights_only=True)["maps"].flatten()[index].item()).tobytes()
    at = raw.find(value)
    assert at > 0
    raw[at + 3] ^= 0x40  # the exponent's high bits: 0.0015 becomes ~1e-23 or ~1e+16
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("fault", ["bit flip", "wrong shape", "all zero (hand-made)", "nan", "bare tensor"])
def test_a_bad_entry_is_deleted_recomputed_and_reported(data_root, fault):
    models = _models()
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    pairs = [(i, i) for i in range(3)]
    good = mapcache.method_maps("z", pairs, models, ["gradient"], x, y, progress=False)["gradient"]
    folder = data_root / "cache" / "maps"
    (path,) = folder.glob("*.pt")
    k = path.stem
    entry = _entry(folder, k)
    if fault == "bit flip":
        _flip_a_bit_in_the_data(path, 123)
    elif fault == "wrong shape":
        torch.save({**entry, "maps": entry["maps"][:, :2], "shape": [3, 2, 28, 28],
                    "sha256": mapcache.tensor_digest(entry["maps"][:, :2])}, path)
    elif fault == "all zero (hand-made)":
        torch.save({**entry, "maps": torch.zeros_like(entry["maps"])}, path)  # checksum of the old maps
    elif fault == "nan":
        bad = entry["maps"].clone()
        bad[0, 0, 0, 0] = float("nan")
        torch.save({**entry, "maps": bad, "sha256": mapcache.tensor_digest(bad)}, path)
    else:
        torch.save(entry["maps"], path)  # what an older version wrote
    with pytest.warns(UserWarning, match=f"{k}.pt was bad"):
        again = mapcache.method_maps("z", pairs, models, ["gradient"], x, y, progress=False)["gradient"]
    assert torch.equal(again, good)  # recomputed, not the bad entry
    assert torch.equal(_entry(folder, k)["maps"], good)  # and stored again


def test_non_finite_maps_are_an_error_and_not_cached(data_root, monkeypatch):
    models = _models()
    x, y = torch.randn(2, 1, 28, 28), torch.tensor([0, 1])
    nan_maps = torch.full((3, 2, 28, 28), float("nan"))
    monkeypatch.setattr("helpers.attribution.marginal.method_maps", lambda *a, **k: {"gradient": nan_maps})
    with pytest.raises(ValueError, match=r"gradient returned non-finite maps for 2 of 2 images .*nothing was cached"):
        mapcache.method_maps("z", [(i, i) for i in range(3)], models, ["gradient"], x, y, progress=False)
    assert not list((data_root / "cache" / "maps").glob("*.pt"))


def test_stale_temporaries_of_killed_runs_are_removed(data_root):
    import subprocess

    folder = data_root / "cache" / "maps"
    folder.mkdir(parents=True)
    dead = subprocess.Popen(["true"])  # a process that has ended: its pid names no running process
    dead.wait()
    stale = folder / f".tmp-{dead.pid}-abc-k.pt"
    mine = folder / f".tmp-{os.getpid()}-def-k.pt"
    stale.write_bytes(b"x")
    mine.write_bytes(b"y")
    mapcache._CLEANED.discard(folder)
    mapcache.save("k", torch.ones(1))
    assert not stale.exists() and mine.exists()  # a live process's file is kept


def test_a_read_only_cache_is_used_read_only(data_root, read_only):
    """A cache that already holds the maps serves them; missing ones are computed without saving, with a warning."""
    models = _models()
    x, y = torch.randn(2, 1, 28, 28), torch.tensor([0, 1])
    pairs = [(i, i) for i in range(3)]
    held = mapcache.method_maps("z", pairs, models, ["gradient"], x, y, progress=False)["gradient"]
    with read_only(data_root / "cache"):
        again = mapcache.method_maps("z", pairs, models, ["gradient"], x, y, progress=False)["gradient"]
        assert torch.equal(again, held)
        with pytest.warns(UserWarning, match="read-only: computing the missing maps without saving"):
            fresh = mapcache.method_maps("z", pairs, models, ["input_x_gradient"], x, y, progress=False)
        assert fresh["input_x_gradient"].shape == (3, 2, 28, 28)
    assert len(list((data_root / "cache" / "maps").glob("*.pt"))) == 1
