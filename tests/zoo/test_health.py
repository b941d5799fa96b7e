"""Training health: a diverged or untrained model is never cached, and settings that cannot train are refused."""
from __future__ import annotations

import time

import pytest
import torch

from helpers import Recipe, ZooSpec, train_zoo
from helpers.data.files import NotWritable
from helpers.zoo import health, store
from helpers.zoo.architectures import build_model


def _spec(**recipe):
    return ZooSpec("lenet", "mnist-5k", Recipe(**{"epochs": 1, "n_train": 500, **recipe}), 2)


def _cached(spec):
    return sorted(p.name for p in spec.directory.glob("*.pt")) if spec.directory.is_dir() else []


def test_a_nan_loss_stops_training_at_once_and_nothing_is_cached(data_root):
    spec = _spec(lr=1000, optimizer="sgd")
    t0 = time.perf_counter()
    with pytest.raises(health.TrainingFailed, match=r"diverged: the training loss became nan at epoch 1, step \d+: "
                                                     r"try lr ≤ 0.01 \(lr=1000\)") as info:
        train_zoo(spec, device="cpu", progress=False)
    assert "\n" not in str(info.value) and time.perf_counter() - t0 < 5  # stopped within the first epoch
    assert _cached(spec) == [] and store.read_manifest(spec)["models"] == {}


def test_a_model_at_chance_is_not_cached(data_root):
    spec = _spec(lr=1000)  # Adam at lr=1000: finite weights, accuracy at chance
    with pytest.raises(health.TrainingFailed, match=r"model i0_d0 of lenet/mnist-5k reached test accuracy 0\.\d+, "
                                                     r"not above the floor 0.200 .*try lr ≤ 0.01"):
        train_zoo(spec, device="cpu", progress=False)
    assert _cached(spec) == []


def test_a_healthy_zoo_passes_and_the_floor_is_in_the_recipe_but_not_in_the_key(data_root):
    spec = _spec(n_train=1000, lr=0.003)
    manifest = train_zoo(spec, device="cpu", progress=False)
    assert all(m["test_accuracy"] > 0.2 for m in manifest["models"].values())
    assert _spec(n_train=1000, lr=0.003, min_accuracy=0.99).key == spec.key
    with pytest.raises(health.TrainingFailed, match="not above the floor 0.990"):
        train_zoo(ZooSpec("lenet", "mnist-5k", Recipe(epochs=1, n_train=1000, lr=0.003, min_accuracy=0.99), 3),
                  device="cpu", progress=False)
    assert _cached(spec) == ["i0_d0.pt", "i1_d1.pt"]  # the good models stay; the failed third is not cached


def test_controls_are_checked_for_finite_weights_only():
    torch.manual_seed(0)
    model = build_model("lenet", 1, 10).eval()
    spec = _spec()
    health.check_trained(model, 0.1, spec, (0, 0), 10, control="untrained")  # at chance on purpose: fine
    with pytest.raises(health.TrainingFailed, match="not above the floor"):
        health.check_trained(model, 0.1, spec, (0, 0), 10)
    with torch.no_grad():
        model.fc1.weight[0, 0] = float("nan")
    with pytest.raises(health.TrainingFailed, match="i0_d0 of lenet/mnist-5k has non-finite weights"):
        health.check_trained(model, 0.9, spec, (0, 0), 10, control="untrained")


@pytest.mark.parametrize("make,message", [
    (lambda: Recipe(epochs=0), r"epochs=0 cannot train: use a whole number ≥ 1"),
    (lambda: Recipe(lr=0), r"lr=0 cannot train: use a learning rate > 0"),
    (lambda: Recipe(lr=-1), r"lr=-1 cannot train"),
    (lambda: Recipe(lr=float("nan")), r"lr=nan cannot train"),
    (lambda: Recipe(batch_size=0), r"batch_size=0 cannot train"),
    (lambda: Recipe(n_train=0), r"n_train=0 cannot train"),
    (lambda: ZooSpec("lenet", "mnist-5k", n_models=0), r"n_models=0 cannot train: use a whole number ≥ 1"),
])
def test_settings_that_cannot_train_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_n_train_above_the_split_is_refused_before_training(data_root, monkeypatch):
    monkeypatch.setattr(store, "train_group", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match=r"n_train=100000 but mnist-5k has 4000 training images: use n_train ≤ 4000"):
        train_zoo(_spec(n_train=100000), device="cpu", progress=False)


def test_a_read_only_data_folder_fails_before_training(data_root, read_only, monkeypatch):
    monkeypatch.setattr(store, "train_group", lambda *a, **k: pytest.fail("trained before the write check"))
    with read_only(data_root):
        with pytest.raises(NotWritable, match=r"cannot write to .*: set HELPERS_DATA to a writable folder"):
            train_zoo(_spec(), device="cpu", progress=False)


def test_a_read_only_cache_that_holds_the_zoo_is_used(data_root, read_only):
    spec = _spec(n_train=1000, lr=0.003)
    train_zoo(spec, device="cpu", progress=False)
    with read_only(data_root):
        assert len(store.load_zoo(spec, device="cpu").models) == 2
        assert sorted(train_zoo(spec, device="cpu", progress=False)["models"]) == ["i0_d0", "i1_d1"]
