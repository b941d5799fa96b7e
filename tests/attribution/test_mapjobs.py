import submitit
import torch

from helpers.attribution import mapcache, mapjobs, marginal
from helpers.data import datasets
from helpers.zoo import Recipe, ZooSpec, load_zoo, train_zoo


def test_maps_computed_per_model_in_jobs_are_assembled_for_the_chapter(data_root, tmp_path, monkeypatch):
    s = ZooSpec("lenet", "mnist-5k", Recipe(epochs=1, batch_size=64, n_train=300, min_accuracy=0.0), 2)
    train_zoo(s, device="cpu", progress=False)
    ds = datasets.load_dataset("mnist-5k")
    inputs, target = ds.test.x[:3], ds.test.y[:3]
    request = mapjobs.save_request(tmp_path / "request.pt", inputs, target)
    units = mapjobs.map_units([s], ["occlusion"], request)
    assert len(units) == 2  # one job per model and method
    ex = submitit.LocalExecutor(folder=tmp_path / "jobs")
    ex.update_parameters(timeout_min=5)
    assert len({j.result() for j in ex.map_array(mapjobs.run_map_unit, units)}) == 2
    assert mapjobs.map_units([s], ["occlusion"], request) == []  # a rerun submits nothing
    models = load_zoo(s, device="cpu").models
    expected = marginal.method_maps(["occlusion"], models, inputs, target, progress=False)
    monkeypatch.setattr(marginal, "method_maps", lambda *a, **k: (_ for _ in ()).throw(AssertionError("computed")))
    got = mapcache.method_maps(s.key, s.seed_pairs, models, ["occlusion"], inputs, target)
    for m in ("occlusion",):
        assert got[m].shape == (2, 3, 28, 28) and torch.allclose(got[m], expected[m], atol=1e-6)
    # the check can fail: another zoo's seeds do not assemble from these entries
    assert mapcache.assemble(s.key, [(0, 0), (5, 5)], "occlusion", {}, inputs, target) is None
