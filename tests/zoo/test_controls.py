"""Control zoos (issue 22, Adebayo et al. 2018): untrained and random-label zoos are ordinary cache-keyed zoos."""
from __future__ import annotations

import pytest
import torch

from helpers import Recipe, ZooSpec, ensure_zoo, load_zoo, train_zoo
from helpers.data import datasets
from helpers.zoo import health, store
from helpers.zoo.outputs import accuracy
from helpers.zoo.training import new_model, random_labels, training_split

# 5 epochs on 1,000 digits: enough to fit permuted labels above the floor (1 epoch is not: see health.py)
FIT = Recipe(epochs=5, n_train=1000, lr=0.003)


def test_control_none_keeps_the_keys_and_controls_get_their_own():
    trained = ZooSpec("lenet", "mnist-5k", Recipe(epochs=6), 24)
    assert trained.key == "b6a1b5df9b88294a"  # tests/zoo/test_store.py: the default zoo's folder
    assert ZooSpec("lenet", "mnist-5k", Recipe(epochs=6), 24, control=None).key == trained.key
    assert "control" not in trained.identity() and "label_seed" not in trained.identity()
    untrained = trained.as_control("untrained")
    shuffled = trained.as_control("random-labels", n_models=6)
    assert len({trained.key, untrained.key, shuffled.key, trained.as_control("random-labels", label_seed=1).key}) == 4
    assert untrained.as_control("untrained", label_seed=5).key == untrained.key  # the seed matters for labels only
    assert shuffled.seed_pairs == trained.seed_pairs[:6] and shuffled.subset(3).control == "random-labels"
    assert untrained.as_control(None).key == trained.key
    with pytest.raises(ValueError, match="unknown control 'shuffled'"):
        ZooSpec("lenet", "mnist-5k", control="shuffled")
    with pytest.raises(ValueError, match="label_seed=-1"):
        ZooSpec("lenet", "mnist-5k", control="random-labels", label_seed=-1)


def test_an_untrained_zoo_is_the_initial_weights_and_costs_no_training(data_root, monkeypatch):
    monkeypatch.setattr(store, "train_group", lambda *a, **k: pytest.fail("an untrained zoo was trained"))
    monkeypatch.setattr(store, "train_model", lambda *a, **k: pytest.fail("an untrained zoo was trained"))
    spec = ZooSpec("lenet", "mnist-5k", Recipe(epochs=6), 3, init_seeds=(4, 5, 6)).as_control("untrained")
    zoo = ensure_zoo(spec, device="cpu", progress=False)
    ds = datasets.load_dataset("mnist-5k")
    for model, seed in zip(zoo.models, spec.init_seeds):
        fresh = new_model(spec, ds, seed).state_dict()
        assert all(torch.equal(v, fresh[k]) for k, v in model.state_dict().items())
    assert all(r["control"] == "untrained" and r["test_accuracy"] < 0.25 for r in zoo.records(spec))
    assert len(load_zoo(spec, device="cpu").models) == 3 and store.missing(spec) == []


def test_random_labels_permute_the_training_labels_only(data_root):
    ds = datasets.load_dataset("mnist-5k")
    spec = ZooSpec("lenet", "mnist-5k", FIT, 2, control="random-labels", label_seed=3)
    plain, shuffled = training_split(spec.as_control(None), ds), training_split(spec, ds)
    assert torch.equal(plain.x, shuffled.x) and torch.equal(plain.y.sort().values, shuffled.y.sort().values)
    assert (plain.y == shuffled.y).float().mean() < 0.2  # about 1 in 10 by chance
    assert torch.equal(shuffled.y, random_labels(plain, 3).y) and not torch.equal(shuffled.y, random_labels(plain, 4).y)


def test_a_random_label_zoo_learns_its_labels_and_stays_near_chance_on_the_test_split(data_root):
    spec = ZooSpec("lenet", "mnist-5k", FIT, 2, control="random-labels")
    zoo = ensure_zoo(spec, device="cpu", progress=False)
    ds = datasets.load_dataset("mnist-5k")
    fit = training_split(spec, ds)
    floor = health.random_label_floor(ds.num_classes)
    for model, rec in zip(zoo.models, zoo.records(spec)):
        assert rec["train_accuracy"] > floor and rec["control"] == "random-labels"
        assert accuracy(model, fit.x, fit.y) == pytest.approx(rec["train_accuracy"])
        assert rec["test_accuracy"] < 0.3  # true test labels: near chance (0.1; 1 in 10 permuted labels is right)
    trained = ensure_zoo(spec.as_control(None), device="cpu", progress=False)
    assert all(r["test_accuracy"] > 0.7 for r in trained.records(spec.as_control(None)))


def test_a_random_label_zoo_that_cannot_fit_its_labels_is_not_cached(data_root):
    spec = ZooSpec("lenet", "mnist-5k", Recipe(epochs=1, n_train=1000, lr=0.003), 1, control="random-labels")
    with pytest.raises(health.TrainingFailed, match=r"model i0_d0 of lenet/mnist-5k \(random labels\) reached "
                                                     r"training accuracy 0\.\d+ on its own permuted labels, not above "
                                                     r"the floor 0\.120"):
        train_zoo(spec, device="cpu", progress=False)
    assert not list(spec.directory.glob("*.pt"))


def test_health_refuses_nan_weights_in_every_control():
    torch.manual_seed(0)
    from helpers.zoo.architectures import build_model

    model = build_model("lenet", 1, 10).eval()
    base = ZooSpec("lenet", "mnist-5k", FIT, 1)
    shuffled = base.as_control("random-labels")
    health.check_trained(model, 0.1, shuffled, (0, 0), 10, train_accuracy=0.5)  # test accuracy is not checked
    with pytest.raises(health.TrainingFailed, match="random labels.*not above the floor 0.120"):
        health.check_trained(model, 0.9, shuffled, (0, 0), 10, train_accuracy=0.11)
    with torch.no_grad():
        model.fc1.weight[0, 0] = float("nan")
    for spec in (base, base.as_control("untrained"), shuffled):
        with pytest.raises(health.TrainingFailed, match="has non-finite weights"):
            health.check_trained(model, 0.9, spec, (0, 0), 10, train_accuracy=0.9)
