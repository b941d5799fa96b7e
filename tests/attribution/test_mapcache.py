import torch

from helpers.attribution import mapcache
from helpers.attribution.marginal import method_maps
from helpers.zoo.architectures import build_model


def _models(m=3):
    out = []
    for seed in range(m):
        torch.manual_seed(seed)
        out.append(build_model("lenet", 1, 10).eval())
    return out


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
    assert mapcache.load("abc") is None and mapcache.load("missing") is None
    mapcache.save("abc", torch.ones(2, 2))
    assert torch.equal(mapcache.load("abc"), torch.ones(2, 2)) and not list(folder.glob("*.tmp"))
