"""The GPU recipe (helpers.gpu_train), the fast CIFAR network and the recipe's place in the zoo, in miniature on the
CPU; the CUDA-only parts (bfloat16 autocast, channels-last, torch.compile) are marked ``gpu`` and skip without CUDA."""
import pytest
import torch
import torch.nn.functional as F

from helpers.zoo import gpu as gpu_train
from helpers.attribution import marginal
from helpers.data import datasets
from helpers.zoo import training
from helpers.data import Dataset, Split
from helpers.zoo.architectures import build_model
from helpers.zoo import Recipe, ZooSpec, load_zoo, train_zoo
from helpers.zoo.training import crop_flip, crop_flip_draws, new_model, train_model

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
FAST = {"width": 0.25}  # a narrow cifar-fast: seconds on a CPU


def _split(n: int, seed: int) -> Split:
    """Four classes, each a fixed 3×16×16 pattern plus unit noise: learnable in a few steps."""
    proto = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    return Split(proto[y] + torch.randn(n, 3, 16, 16, generator=g), y)


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return Dataset("synthetic", _split(96, 1), _split(64, 2), tuple("abcd"), (0.0,) * 3, (1.0,) * 3)


def _spec(arch="cifar-fast", n=2, **recipe) -> ZooSpec:
    r = Recipe(**{"epochs": 1, "batch_size": 32, "lr": 0.05, "optimizer": "sgd", "min_accuracy": 0.0, **recipe})
    return ZooSpec(arch, "synthetic", r, n, arch_kwargs=FAST if arch == "cifar-fast" else {})


def _gap(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max((sa[k].double() - sb[k].double()).abs().max().item() for k in sa)


# ------------------------------------------------------------------------------------------------ the network

def test_cifar_fast_is_small_and_attribution_friendly():
    from captum.attr import DeepLift, GuidedBackprop

    model = build_model("cifar-fast", 3, 10, image_size=32).eval()
    assert 1.5e6 < sum(p.numel() for p in model.parameters()) < 2.5e6  # airbench94's size
    seen = {}
    model.gradcam_layer.register_forward_hook(lambda m, i, o: seen.update(shape=o.shape))
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 10) and seen["shape"] == (2, 256, 8, 8)
    for method in (DeepLift(model), GuidedBackprop(model)):
        assert method.attribute(x, target=1).shape == x.shape
    assert build_model("cifar-fast", 1, 10, image_size=28)(torch.randn(1, 1, 28, 28)).shape == (1, 10)


# ------------------------------------------------------------------------------------- the recipe and the key

def test_existing_zoo_keys_are_unchanged():
    # computed before the recipe was added: default, smoke, and the colab and paper zoos of their old recipes
    assert ZooSpec("lenet", "mnist-5k", Recipe(epochs=6), 24).key == "b6a1b5df9b88294a"
    assert ZooSpec("lenet", "mnist-5k", Recipe(epochs=1, n_train=500), 3).key == "0a6a2604e8952c55"
    old = dict(batch_size=256, optimizer="sgd", schedule="cosine", augment="crop-flip")
    assert ZooSpec("convnet", "cifar10", Recipe(epochs=15, lr=0.05, **old), 10).key == "8c9fef86dee64353"
    assert ZooSpec("resnet18", "cifar10", Recipe(epochs=30, lr=0.1, **old), 50).key == "f65ff89a4de17093"
    assert Recipe() == Recipe(weight_decay=0.0, amp=False, label_smoothing=0.0)


def test_onecycle_brings_the_speed_run_defaults_and_explicit_values_win():
    r = Recipe(schedule="onecycle")
    assert (r.label_smoothing, r.weight_decay, r.amp) == (0.2, 5e-4, True)
    plain = Recipe(schedule="onecycle", label_smoothing=0.0, weight_decay=0.0, amp=False)
    assert plain.label_smoothing == 0.0 and plain.amp is False
    keys = {ZooSpec("cifar-fast", "cifar10", x).key for x in (r, plain, Recipe(schedule="cosine"))}
    assert len(keys) == 3
    assert "label_smoothing" in ZooSpec("cifar-fast", "cifar10", r).identity()["recipe"]
    with pytest.raises(ValueError, match="label_smoothing=1.5: use a number in"):
        Recipe(label_smoothing=1.5)
    with pytest.raises(ValueError, match="'none', 'cosine' or 'onecycle'"):
        Recipe(schedule="triangle")


def test_onecycle_schedule_rises_to_lr_then_falls_linearly():
    w = torch.zeros(1, requires_grad=True)
    opt, sched = training._make_optimizer(Recipe(lr=0.4, optimizer="sgd", schedule="onecycle"), [w], 100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    peak = max(range(100), key=lrs.__getitem__)
    assert lrs[0] == pytest.approx(0.4 / 25) and lrs[peak] == pytest.approx(0.4, rel=1e-3)
    assert 20 <= peak <= 26 and lrs[-1] < 1e-4 and all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))
    assert opt.param_groups[0]["momentum"] == 0.9  # the momentum is not cycled


def test_chapter_and_runner_accept_the_gpu_profiles():
    from pathlib import Path

    from helpers.book import chapter
    from helpers.book import params
    from helpers.book import profiles

    root = Path(__file__).resolve().parents[2]
    for name in ("colab", "paper"):
        prof = profiles.load_profile(name, root / "profiles")
        declared = profiles.declared_parameters(root / "notebooks" / "06_perturbation_baselines.ipynb")
        params.validate(prof["parameters"], defaults=declared)
        assert chapter.recipe_of({**declared, **prof["parameters"]}).schedule == "onecycle"


# ------------------------------------------------------------------------------------- augmentation on device

def test_crop_flip_known_answers():
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).view(1, 2, 8, 8).repeat(4, 1, 1, 1)
    di, dj = torch.tensor([4, 0, 6, 4]), torch.tensor([4, 0, 4, 4])
    flip = torch.tensor([False, False, False, True])
    out = crop_flip(x, di, dj, flip)
    assert out.shape == x.shape and out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out[0], x[0])  # offset 4, 4: no shift
    shifted = torch.zeros(2, 8, 8)
    shifted[:, 4:, 4:] = x[1, :, :4, :4]  # offset 0, 0: the image moves 4 down and 4 right, zeros come in
    assert torch.equal(out[1], shifted)
    up = torch.zeros(2, 8, 8)
    up[:, :6] = x[2, :, 2:]  # row offset 6: two rows up
    assert torch.equal(out[2], up)
    assert torch.equal(out[3], x[3].flip(-1))


def test_epoch_draws_are_seeded_and_follow_train_models_order():
    a = gpu_train.epoch_draws(torch.Generator().manual_seed(3), 10, 4, "crop-flip")
    b = gpu_train.epoch_draws(torch.Generator().manual_seed(3), 10, 4, "crop-flip")
    c = gpu_train.epoch_draws(torch.Generator().manual_seed(4), 10, 4, "crop-flip")
    assert all(torch.equal(u, v) for u, v in zip(a, b)) and not torch.equal(a[0], c[0])
    assert [t.shape for t in a] == [(10,)] * 4 and sorted(a[0].tolist()) == list(range(10))
    g = torch.Generator().manual_seed(3)  # train_model's sequence: the permutation, then each batch's crops
    order = torch.randperm(10, generator=g)
    batches = [crop_flip_draws(k, g) for k in (4, 4, 2)]
    assert torch.equal(order, a[0])
    assert all(torch.equal(torch.cat([bt[j] for bt in batches]), a[j + 1]) for j in range(3))
    assert len(gpu_train.epoch_draws(torch.Generator().manual_seed(3), 10, 4, "none")) == 1


# ------------------------------------------------------------------------------------ training in miniature

def test_recipe_trains_loss_falls_in_twenty_steps():
    ds = Dataset("synthetic", _split(320, 1), _split(64, 2), tuple("abcd"), (0.0,) * 3, (1.0,) * 3)
    spec = _spec(epochs=2, schedule="onecycle", augment="crop-flip")  # 2 × 10 steps of 32
    before = new_model(spec, ds, 0)
    (after,) = gpu_train.train_models(spec, ds, [(0, 0)])
    with torch.no_grad():  # with batch statistics: 20 steps are too few for BatchNorm's running averages
        loss0 = F.cross_entropy(before.train()(ds.train.x), ds.train.y).item()
        loss1 = F.cross_entropy(after.train()(ds.train.x), ds.train.y).item()
        acc = (after(ds.test.x).argmax(1) == ds.test.y).float().mean().item()
    assert loss1 < 0.5 * loss0 and acc > 0.6


def test_stack_of_one_is_train_model_exactly(ds):
    spec = _spec(epochs=2, schedule="onecycle", augment="crop-flip")
    (fast,) = gpu_train.train_models(spec, ds, [(1, 2)])
    assert _gap(fast, train_model(spec, ds, 1, 2)) == 0.0


@pytest.mark.parametrize("arch,augment,epochs", [("cifar-fast", "none", 1), ("lenet", "crop-flip", 2)])
def test_stacked_training_equals_per_model_training(ds, arch, augment, epochs):
    # a few steps: over more, a rare discrete event (a max-pool near-tie that the grouped kernels of the stack break
    # the other way) can move one BatchNorm network by ~1e-3; with crop-flip the reference itself moves with the
    # memory format, as the zero padding makes exact ties
    spec = _spec(arch, epochs=epochs, schedule="onecycle", augment=augment, n_train=64)
    pairs = [(0, 0), (1, 5), (2, 2)]
    stacked = gpu_train.train_models(spec, ds, pairs)
    for (i, d), model in zip(pairs, stacked):
        assert _gap(model, train_model(spec, ds, i, d)) < 1e-5
    assert _gap(stacked[0], stacked[1]) > 1e-2  # and the models differ


def test_seeds_are_respected(ds):
    spec = _spec(schedule="onecycle", augment="crop-flip")
    a = gpu_train.train_models(spec, ds, [(0, 0), (0, 1)])
    b = gpu_train.train_models(spec, ds, [(0, 0), (0, 1)])
    assert all(_gap(u, v) == 0.0 for u, v in zip(a, b))  # same seeds, same weights
    assert _gap(a[0], a[1]) > 1e-3  # same init seed, another data seed: other weights
    with pytest.raises(ValueError, match="pass one"):
        gpu_train.train_models(spec, ds, [])


def test_train_zoo_with_the_gpu_engine_stores_loadable_models(data_root):
    spec = ZooSpec("lenet", "mnist-5k", Recipe(epochs=1, batch_size=64, n_train=128, schedule="onecycle", min_accuracy=0.0), 3)
    manifest = train_zoo(spec, device="cpu", progress=False, engine="gpu", group=2)
    assert sorted(manifest["models"]) == ["i0_d0", "i1_d1", "i2_d2"]
    models = load_zoo(spec, device="cpu").models
    ds = datasets.load_dataset("mnist-5k")
    assert _gap(models[2], gpu_train.train_models(spec, ds, [(2, 2)])[0]) < 1e-5
    with pytest.raises(ValueError, match="unknown engine 'tpu'"):
        train_zoo(ZooSpec("lenet", "mnist-5k", spec.recipe, 4), device="cpu", progress=False, engine="tpu")


# ------------------------------------------------------------------------- batched ensemble attribution

def test_measured_choice_is_cached_per_device_and_architecture(monkeypatch):
    models = [build_model("lenet", 1, 10).eval() for _ in range(3)]
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    monkeypatch.setattr(marginal, "_MEASURED", {})
    calls = []
    monkeypatch.setattr(marginal, "best_seconds", lambda fn, dev, repeat=2: calls.append(fn) or len(calls))
    assert marginal.measured_vmap_pays(models, x, y) is False  # loop timed first (1 s) beats vmap (2 s)
    assert marginal.measured_vmap_pays(models, x, y) is False and len(calls) == 2  # cached: not timed again
    assert list(marginal._MEASURED) == [("cpu", "LeNet", sum(p.numel() for p in models[0].parameters()))]


def test_stacked_gradients_shrink_their_chunks_when_memory_runs_out(monkeypatch):
    models = [build_model("lenet", 1, 10).eval() for _ in range(4)]
    x, y = torch.randn(6, 1, 28, 28), torch.arange(6)
    expected = marginal.stacked_logit_gradients(models, x, y)
    real = marginal.stacked_logit_gradients
    sizes = []

    def tight(ms, xx, t, model_batch=None):  # "out of memory" above one model × two images
        sizes.append((model_batch, len(xx)))
        if (model_batch or len(ms)) > 1 or len(xx) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(ms, xx, t, model_batch)

    monkeypatch.setattr(marginal, "stacked_logit_gradients", tight)
    maps = marginal.Marginalized("gradient", models, vectorize=True)
    assert torch.allclose(maps.attribute(x, y).per_model, expected, atol=1e-6)
    assert maps.model_batch == 1 and sizes[:3] == [(4, 6), (2, 6), (1, 6)]


# ------------------------------------------------------------------------------------------ CUDA only

@pytest.mark.parametrize("stack", [1, 2])
@pytest.mark.gpu
@needs_cuda
def test_cuda_trains_in_bfloat16_autocast_and_channels_last(ds, monkeypatch, stack):
    seen = []

    def hooked(*args, **kwargs):
        model = new_model(*args, **kwargs)
        model.stem.register_forward_hook(lambda m, i, o: seen.append((o.dtype, i[0].is_contiguous(
            memory_format=torch.channels_last), m.weight.is_contiguous(memory_format=torch.channels_last))))
        return model

    monkeypatch.setattr(gpu_train, "new_model", hooked)
    dev = torch.device("cuda")
    spec = _spec(schedule="onecycle", augment="crop-flip")
    models = gpu_train.train_models(spec, ds, [(0, 0), (1, 1)][:stack], dev)
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    assert gpu_train.autocast_dtype(dev) == expected
    if stack == 1:  # the module itself runs: its hooks fire, on channels-last input and weights
        assert seen and all(s == (expected, True, True) for s in seen)
    assert all(p.dtype == torch.float32 and p.is_cuda for m in models for p in m.parameters())
    assert all(p.is_contiguous() for m in models for p in m.parameters())  # stored in the usual layout
    cpu = gpu_train.train_models(spec, ds, [(0, 0), (1, 1)][:stack])
    with torch.no_grad():
        agree = (models[0](ds.test.x.cuda()).argmax(1).cpu() == cpu[0](ds.test.x).argmax(1)).float().mean()
    assert agree > 0.8  # bfloat16 on the GPU learns what fp32 learns on the CPU, up to rounding


@pytest.mark.gpu
@needs_cuda
def test_cuda_compiled_stack_matches_eager(ds):
    spec = _spec(schedule="onecycle", augment="none", amp=False)
    eager = gpu_train.train_models(spec, ds, [(0, 0), (1, 1)], "cuda")
    compiled = gpu_train.train_models(spec, ds, [(0, 0), (1, 1)], "cuda", compile=True)
    assert all(_gap(a, b) < 1e-3 for a, b in zip(eager, compiled))


@pytest.mark.gpu
@needs_cuda
def test_cuda_marginal_chooses_by_measurement():
    models = [build_model("cifar-fast", 3, 10).cuda().eval() for _ in range(3)]
    x, y = torch.randn(8, 3, 32, 32, device="cuda"), torch.arange(8, device="cuda")
    maps = marginal.Marginalized("gradient", models)
    assert maps.vectorize is None  # decided on the first call
    res = maps.attribute(x, y)
    assert isinstance(maps.vectorize, bool) and res.per_model.shape == (3, 8, 3, 32, 32)
