import json

import pytest
import torch

from helpers.data import datasets
from helpers.zoo import architectures
from helpers.zoo import cpu
from helpers.zoo import outputs
from helpers.zoo import store
from helpers.zoo import training
from helpers.zoo import Recipe, ZooSpec, load_zoo, seed_lists, train_zoo
from helpers.zoo.training import new_model

TINY = Recipe(epochs=1, batch_size=64, n_train=300, min_accuracy=0.0)  # mechanics, not accuracy


def spec(n=2, **kw) -> ZooSpec:
    return ZooSpec("lenet", "mnist-5k", TINY, n, **kw)


def _states(models):
    return [{k: v.clone() for k, v in m.state_dict().items()} for m in models]


def test_same_spec_and_seeds_give_identical_weights(data_root, tmp_path, monkeypatch):
    s = spec(2)
    train_zoo(s, device="cpu", progress=False)
    first = _states(load_zoo(s, device="cpu").models)
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path / "other"))
    train_zoo(s, device="cpu", progress=False)
    second = _states(load_zoo(s, device="cpu").models)
    for a, b in zip(first, second):
        assert all(torch.equal(a[k], b[k]) for k in a)
    # different seeds give different models
    assert not torch.equal(first[0]["conv1.weight"], first[1]["conv1.weight"])


def test_init_and_data_seed_act_separately(data_root):
    ds = datasets.load_dataset("mnist-5k")
    s = spec(1)
    assert torch.equal(new_model(s, ds, 3).conv1.weight, new_model(s, ds, 3).conv1.weight)
    assert not torch.equal(new_model(s, ds, 3).conv1.weight, new_model(s, ds, 4).conv1.weight)
    same_init = ZooSpec("lenet", "mnist-5k", TINY, 2, init_seeds=(5, 5), data_seeds=(0, 1))
    train_zoo(same_init, device="cpu", progress=False)
    a, b = load_zoo(same_init, device="cpu").models
    assert not torch.equal(a.conv1.weight, b.conv1.weight)  # same start, different batch order


def test_new_model_leaves_global_rng_alone(data_root):
    ds = datasets.load_dataset("mnist-5k")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    new_model(spec(1), ds, 7)
    assert torch.equal(torch.rand(3), expected)


def test_manifest_records_seeds_accuracy_and_checksums(data_root):
    s = spec(2, init_seeds=(10, 11), data_seeds=(20, 21))
    manifest = train_zoo(s, device="cpu", progress=False)
    assert manifest["spec"]["arch"] == "lenet" and not (s.directory / "manifest.json").exists()
    entry = json.loads((s.directory / "i11_d21.json").read_text())  # each model's own record
    assert manifest["models"]["i11_d21"] == entry and entry["host"]
    assert entry["init_seed"] == 11 and entry["data_seed"] == 21
    assert entry["train_seconds"] > 0
    assert entry["sha256"] == training.sha256_file(s.directory / entry["file"])
    assert s.directory.parent.parent == data_root.resolve() / "cache"
    assert [p.name for p in s.directory.iterdir() if p.name.startswith(".")] == [".locks"], "temporary files left"
    loaded = load_zoo(s, device="cpu")
    assert [r["init_seed"] for r in loaded.records(s)] == [10, 11]
    assert all(not m.training for m in loaded.models)
    ds = datasets.load_dataset("mnist-5k")
    assert outputs.accuracy(loaded.models[1], ds.test.x, ds.test.y) == entry["test_accuracy"]


def test_key_ignores_seed_list_but_not_recipe():
    assert spec(2).key == spec(5).key == spec(2, init_seeds=(7, 8), data_seeds=(7, 8)).key
    assert spec(2).key != ZooSpec("lenet", "mnist-5k", Recipe(epochs=2, n_train=300), 2).key
    assert spec(2).key != ZooSpec("lenet-wide", "mnist-5k", TINY, 2).key
    assert spec(4).subset(2) == spec(2)


def test_interrupted_run_resumes_from_finished_models(data_root, monkeypatch):
    s = spec(3)
    real = training.train_model
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user stops the run while model 2 trains
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "train_model", flaky)
    with pytest.raises(KeyboardInterrupt):
        train_zoo(s, device="cpu", progress=False, engine="loop")  # one model at a time: train_model per model
    assert sorted(store.read_manifest(s)["models"]) == ["i0_d0"]
    calls.clear()
    monkeypatch.setattr(store, "train_model", real)
    counted = []
    monkeypatch.setattr(store, "train_model", lambda *a, **k: counted.append(a[2]) or real(*a, **k))
    train_zoo(s, device="cpu", progress=False, engine="loop")
    assert counted == [1, 2]  # model 0 was not trained again
    assert len(load_zoo(s, device="cpu").models) == 3


def test_interrupted_group_run_keeps_the_finished_groups(data_root, monkeypatch):
    s = spec(5)
    real_group, real_model = cpu.train_group, training.train_model
    groups, singles = [], []

    def flaky(spec_, ds, pairs, workers=None):
        groups.append([i for i, _ in pairs])
        if groups == [[0, 1], [2, 3]]:
            raise KeyboardInterrupt  # the user stops the run while the second group trains
        return real_group(spec_, ds, pairs, workers)

    monkeypatch.setattr(store, "train_group", flaky)
    monkeypatch.setattr(store, "train_model", lambda *a, **k: singles.append(a[2]) or real_model(*a, **k))
    with pytest.raises(KeyboardInterrupt):
        train_zoo(s, device="cpu", progress=False, group=2)
    assert groups == [[0, 1], [2, 3]] and singles == []
    assert sorted(store.read_manifest(s)["models"]) == ["i0_d0", "i1_d1"]
    groups.clear()
    train_zoo(s, device="cpu", progress=False, group=2)
    assert groups == [[2, 3], [4]] and singles == []  # the finished group is kept; a last one of one is grouped too
    assert len(load_zoo(s, device="cpu").models) == 5


def test_corrupted_weights_are_rejected(data_root):
    s = spec(1)
    train_zoo(s, device="cpu", progress=False)
    path = s.directory / "i0_d0.pt"
    blob = bytearray(path.read_bytes())
    blob[-10] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="checksum mismatch.*delete the file"):
        load_zoo(s, device="cpu")


def test_loading_an_untrained_zoo_says_what_to_do(data_root):
    with pytest.raises(FileNotFoundError, match=r"run train_zoo\(spec\) first"):
        load_zoo(spec(1), device="cpu")


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="init_seeds has 1 entries but n_models=2"):
        ZooSpec("lenet", "mnist-5k", TINY, 2, init_seeds=(1,))
    with pytest.raises(ValueError, match="same .init seed, data seed. pair"):
        ZooSpec("lenet", "mnist-5k", TINY, 2, init_seeds=(1, 1), data_seeds=(2, 2))
    with pytest.raises(ValueError, match="unknown optimizer"):
        Recipe(optimizer="adamw")


def test_seed_lists():
    assert seed_lists(3, "both", 5) == ((5, 6, 7), (5, 6, 7))
    assert seed_lists(3, "init") == ((0, 1, 2), (0, 0, 0))
    assert seed_lists(3, "data") == ((0, 0, 0), (0, 1, 2))
    with pytest.raises(ValueError, match="use 'both', 'init' or 'data'"):
        seed_lists(3, "weights")


def test_crop_flip_keeps_content():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    out = training._crop_flip(x, gen)
    assert out.shape == x.shape
    # every non-padded output value comes from the same image and channel
    for b in range(2):
        for c in range(3):
            vals = set(out[b, c].flatten().tolist()) - {0.0}
            assert vals <= set(x[b, c].flatten().tolist())


def test_amp_is_in_the_key_only_when_on():
    assert "amp" not in spec(1).identity()["recipe"]
    on = ZooSpec("lenet", "mnist-5k", Recipe(epochs=1, n_train=300, amp=True, min_accuracy=0.0), 1)
    assert on.identity()["recipe"]["amp"] is True and on.key != spec(1).key


def test_pretrained_backbone_is_read_for_training_not_for_loading(data_root, tmp_path, monkeypatch):
    from PIL import Image

    from helpers.zoo import architectures as models

    for cls in ("a", "b"):
        for split, n in (("train", 3), ("test", 1)):
            (tmp_path / "dogs" / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (40, 40), (200 if cls == "a" else 0, 50, 100)).save(
                    tmp_path / "dogs" / split / cls / f"{i}.png")
    torch.manual_seed(0)
    fake = models.from_torchvision_resnet(__import__("torchvision").models.resnet18(weights=None).state_dict())
    reads = []
    monkeypatch.setattr(models, "imagenet_resnet18_state", lambda: reads.append(1) or fake)
    s = ZooSpec("resnet18-imagenet", f"folder:{tmp_path / 'dogs'}", Recipe(epochs=1, batch_size=6, min_accuracy=0.0), 2)
    train_zoo(s, device="cpu", progress=False)
    assert len(reads) == 2  # one backbone per trained model
    a, b = load_zoo(s, device="cpu").models
    assert len(reads) == 2  # loading replaces every weight: the backbone is not read again
    assert not torch.equal(a.linear.weight, b.linear.weight)  # seeded heads


def test_cache_keys_of_existing_zoos_are_unchanged():
    # the default and smoke zoos trained before group training keep their folders
    assert ZooSpec("lenet", "mnist-5k", Recipe(epochs=6), 24).key == "b6a1b5df9b88294a"
    assert ZooSpec("lenet", "mnist-5k", Recipe(epochs=1, n_train=500), 3).key == "0a6a2604e8952c55"


def test_lenet_group_runs_each_model_on_its_own_input(data_root):
    ds = datasets.load_dataset("mnist-5k")
    models = [new_model(spec(1), ds, i) for i in range(3)]
    group = cpu.LeNetGroup(models).eval()
    x = ds.train.x[:15].view(3, 5, 1, 28, 28)
    with torch.no_grad():
        out = group(x)
        for k, m in enumerate(models):
            assert torch.allclose(out[k], m.eval()(x[k]), atol=1e-5)
        x2 = x.clone()
        x2[1] = x2[1].flip(-1)  # change model 1's images only
        out2 = group(x2)
    assert torch.equal(out2[0], out[0]) and torch.equal(out2[2], out[2]) and not torch.allclose(out2[1], out[1])
    with pytest.raises(ValueError, match="LeNetGroup takes one or more LeNets"):
        cpu.LeNetGroup([architectures.build_model("convnet", 1, 10)])


def _max_gap(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.state_dict().values(), b.state_dict().values()))


PAIRS = [(0, 0), (1, 5), (7, 3)]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("arch,recipe", [
    # SGD: a rounding difference stays a rounding difference, so the weights must agree tightly
    ("lenet-deep", Recipe(epochs=2, batch_size=64, n_train=160, optimizer="sgd", lr=0.05, schedule="cosine",
                          weight_decay=5e-4, augment="crop-flip", min_accuracy=0.0)),
    # Adam, the default recipe (ragged last batch); few steps: Adam turns a max-pool near-tie into an lr-sized step
    ("lenet", Recipe(epochs=1, batch_size=64, n_train=160, min_accuracy=0.0)),
])
def test_group_training_equals_one_at_a_time(data_root, arch, recipe, workers):
    ds = datasets.load_dataset("mnist-5k")
    s = ZooSpec(arch, "mnist-5k", recipe, len(PAIRS), init_seeds=[i for i, _ in PAIRS],
                data_seeds=[d for _, d in PAIRS])
    threads = torch.get_num_threads()
    grouped = cpu.train_group(s, ds, PAIRS, workers=workers)
    assert torch.get_num_threads() == threads  # the thread setting is restored
    alone = [training.train_model(s, ds, i, d) for i, d in PAIRS]
    x = ds.test.x[:100]
    for g, a in zip(grouped, alone):
        assert not g.training
        assert [(k, v.shape, v.dtype, v.is_contiguous()) for k, v in g.state_dict().items()] == \
            [(k, v.shape, v.dtype, v.is_contiguous()) for k, v in a.state_dict().items()]  # same file contents
        assert _max_gap(g, a) < 1e-4
        assert (outputs.logits(g, x) - outputs.logits(a, x)).abs().max() < 1e-4
    # the check can fail: a model trained with another model's data order is far off
    assert _max_gap(grouped[1], training.train_model(s, ds, 1, 3)) > 1e-3
    assert _max_gap(grouped[0], new_model(s, ds, 0)) > 1e-3  # and the trained weights were written back


def test_group_trained_models_extend_a_zoo_trained_one_at_a_time(data_root):
    s = spec(3)
    train_zoo(s.subset(1), device="cpu", progress=False, engine="loop")  # a single model trains alone
    manifest = train_zoo(s, device="cpu", progress=False)  # models 1 and 2 as a group, same folder
    assert sorted(manifest["models"]) == ["i0_d0", "i1_d1", "i2_d2"]
    loaded = load_zoo(s, device="cpu")
    ds = datasets.load_dataset("mnist-5k")
    alone = training.train_model(s, ds, 2, 2)
    assert _max_gap(loaded.models[2], alone) < 1e-4


def test_group_size_depends_on_device_and_architecture(data_root):
    ds = datasets.load_dataset("mnist-5k")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert store._group_size(spec(2), ds, cpu, None) == store.GROUP_SIZE
    assert store._group_size(spec(2), ds, cpu, 5) == 5
    assert store._group_size(spec(2), ds, cuda, None) == 1  # the GPU keeps the one-at-a-time loop
    assert store._group_size(ZooSpec("convnet", "mnist-5k", TINY, 2), ds, cpu, None) == 1  # BatchNorm: alone


def test_zoo_logits_and_ranked_classes_by_hand():
    from torch import nn

    from helpers.zoo import ranked_classes, zoo_logits

    class Fixed(nn.Module):
        def __init__(self, z):
            super().__init__()
            self.z = torch.tensor(z)

        def forward(self, x):
            return self.z.expand(x.shape[0], -1)

    models = [Fixed([1.0, 5.0, 3.0, 0.0]), Fixed([3.0, 1.0, 2.0, 2.0])]  # mean logits (2, 3, 2.5, 1)
    x = torch.zeros(2, 1, 2, 2)
    assert zoo_logits(models, x).shape == (2, 2, 4)
    ranked = ranked_classes(models, x, torch.tensor([3, 1]), 3)
    assert ranked.tolist() == [[3, 1, 2], [1, 2, 0]]  # the given class first, then by mean logit
    with pytest.raises(ValueError, match="non-empty list"):
        zoo_logits([], x)
