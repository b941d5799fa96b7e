import pytest
import torch
from torch import nn

from helpers.attribution import METHODS, attribute


class LinearImage(nn.Module):
    """z = W·vec(x) + b: the gradient of logit c is W[c] reshaped to the image, by hand."""

    def __init__(self, shape=(1, 4, 4), classes=3):
        super().__init__()
        torch.manual_seed(0)
        self.shape = shape
        self.fc = nn.Linear(int(torch.tensor(shape).prod()), classes)

    def forward(self, x):
        return self.fc(torch.flatten(x, 1))


class Square(nn.Module):
    """z_0 = Σ x², z_1 = Σ 3x: gradients 2x and 3 (a non-linear known answer)."""

    def forward(self, x):
        return torch.stack([(x ** 2).flatten(1).sum(1), (3 * x).flatten(1).sum(1)], dim=1)


def test_gradient_of_linear_model_is_the_weight_row():
    model = LinearImage()
    x = torch.randn(5, 1, 4, 4)
    target = torch.tensor([0, 1, 2, 1, 0])
    g = attribute("gradient", model, x, target)
    expected = model.fc.weight.detach()[target].view(5, 1, 4, 4)
    assert torch.allclose(g, expected)
    ixg = attribute("input_x_gradient", model, x, target)
    assert torch.allclose(ixg, x * expected)


def test_gradient_known_answer_nonlinear():
    x = torch.randn(3, 2, 5, 5)
    assert torch.allclose(attribute("gradient", Square(), x, 0), 2 * x)
    assert torch.allclose(attribute("gradient", Square(), x, 1), torch.full_like(x, 3.0))
    assert torch.allclose(attribute("input_x_gradient", Square(), x, 0), 2 * x * x)


def test_gradient_is_signed_and_matches_captum():
    from captum.attr import Saliency

    from helpers.zoo.architectures import build_model

    model = build_model("lenet", 1, 10).eval()
    x = torch.randn(4, 1, 28, 28)
    ours = attribute("gradient", model, x, 7)
    theirs = Saliency(model).attribute(x, target=7, abs=False)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert (ours < 0).any() and (ours > 0).any()


@pytest.mark.parametrize("method", ["gradient", "input_x_gradient"])
def test_batched_equals_one_by_one(method):
    from helpers.zoo.architectures import build_model

    model = build_model("convnet", 1, 10).eval()
    x = torch.randn(6, 1, 28, 28)
    y = torch.arange(6)
    batched = attribute(method, model, x, y)
    single = torch.cat([attribute(method, model, x[i:i + 1], int(y[i])) for i in range(6)])
    assert torch.allclose(batched, single, atol=1e-6)
    assert not x.requires_grad and torch.isfinite(batched).all()


def test_registry_metadata_matches_behaviour(lenet):
    """Every method's declared metadata is true: ``stochastic`` methods change with their seed and take one,
    deterministic ones give the same map twice and refuse a seed; each names its paper (a year in the reference)."""
    import re

    x, y = torch.randn(2, 1, 28, 28), torch.tensor([3, 7])
    for name, m in METHODS.items():
        assert m.name == name and m.summary and re.search(r"(19|20)\d\d", m.reference), name
        kw = {"n_samples": 20} if name in ("lime", "kernel_shap") else {}
        if m.stochastic:
            a = attribute(name, lenet, x, y, seed=0, **kw)
            assert not torch.allclose(a, attribute(name, lenet, x, y, seed=1, **kw)), name
        else:
            assert torch.equal(attribute(name, lenet, x, y, **kw), attribute(name, lenet, x, y, **kw)), name
            with pytest.raises((TypeError, ValueError)):
                attribute(name, lenet, x, y, seed=0, **kw)


def test_bad_inputs_get_one_line_errors_that_name_the_fix():
    model = LinearImage()
    x = torch.randn(2, 1, 4, 4)
    with pytest.raises(ValueError, match="unknown attribution method 'gradeint': choose one of gradient"):
        attribute("gradeint", model, x, 0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\), got \(1, 4, 4\): add a batch dimension"):
        attribute("gradient", model, x[0], 0)
    with pytest.raises(ValueError, match="one per image \\(2\\), got shape \\(3,\\)"):
        attribute("gradient", model, x, [0, 1, 2])


ALL = sorted(METHODS)


@pytest.fixture(scope="module")
def lenet():
    from helpers.zoo.architectures import build_model

    torch.manual_seed(0)
    return build_model("lenet", 1, 10).eval()


@pytest.mark.parametrize("method", ALL)
def test_every_method_shape_finite_and_batched_equals_unbatched(method, lenet):
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([1, 4, 7])
    kw = {"n_samples": 40} if method in ("lime", "kernel_shap") else {}
    batched = attribute(method, lenet, x, y, **kw)
    single = torch.cat([attribute(method, lenet, x[i:i + 1], int(y[i]), **kw) for i in range(3)])
    assert batched.shape == x.shape and torch.isfinite(batched).all() and batched.abs().sum() > 0
    assert torch.allclose(batched, single, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", [m for m in ALL if METHODS[m].stochastic])
def test_stochastic_methods_are_seeded(method, lenet):
    x = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    kw = {"n_samples": 30} if method != "smoothgrad" else {"n_samples": 4}
    a = attribute(method, lenet, x, 3, seed=5, **kw)
    b = attribute(method, lenet, x, 3, seed=5, **kw)
    c = attribute(method, lenet, x, 3, seed=6, **kw)
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    attribute(method, lenet, x, 3, seed=5, **kw)
    assert torch.equal(torch.rand(2), expected), "a seeded method must not move the caller's RNG"


@pytest.mark.parametrize("arch,channels,size", [("convnet", 1, 28), ("lenet-deep", 1, 28), ("vgg19", 3, 16),
                                                ("resnet18", 3, 16), ("resnet101", 3, 16)])
def test_methods_run_on_every_architecture(arch, channels, size):
    from helpers.zoo.architectures import build_model

    torch.manual_seed(0)
    model = build_model(arch, channels, 10, image_size=size).eval()
    x = torch.randn(1, channels, size, size)
    cheap = {"lime": {"n_samples": 8}, "kernel_shap": {"n_samples": 8}, "smoothgrad": {"n_samples": 2},
             "rise": {"n_samples": 8}, "integrated_gradients": {"n_steps": 4},
             "occlusion": {"window": size // 2, "stride": size // 2},
             "noisegrad": {"n_samples": 2}, "fusiongrad": {"n_samples": 2}}
    for method in ALL:
        out = attribute(method, model, x, 2, **cheap.get(method, {}))
        assert out.shape == x.shape and torch.isfinite(out).all(), (arch, method)


def test_integrated_gradients_completeness():
    from helpers.zoo.architectures import build_model

    torch.manual_seed(0)
    model = build_model("lenet", 1, 10).eval()
    x = torch.randn(2, 1, 28, 28)
    ig = attribute("integrated_gradients", model, x, 4, n_steps=128)
    with torch.no_grad():
        delta = model(x)[:, 4] - model(torch.zeros_like(x))[:, 4]
    assert torch.allclose(ig.flatten(1).sum(1), delta, rtol=0.02, atol=1e-3)


def test_known_answers_on_a_linear_model():
    model = LinearImage(shape=(1, 8, 8), classes=2)
    x = torch.randn(2, 1, 8, 8)
    w = model.fc.weight.detach()[1].view(1, 1, 8, 8)
    # linear model: IG = DeepLIFT = input × gradient (baseline 0), SmoothGrad = gradient
    for method in ("integrated_gradients", "deeplift"):
        assert torch.allclose(attribute(method, model, x, 1), x * w, atol=1e-5), method
    assert torch.allclose(attribute("smoothgrad", model, x, 1), w.expand(2, -1, -1, -1), atol=1e-5)
    # occlusion with 1×1 windows of a linear model: logit drop = w·x per pixel
    occ = attribute("occlusion", model, x, 1, window=1, stride=1)
    assert torch.allclose(occ, x * w, atol=1e-5)
    # KernelSHAP of a linear model with a zero baseline: the patch sums of w·x (exact up to sampling)
    ks = attribute("kernel_shap", model, x, 1, n_samples=400, patch=4)
    patch_sums = torch.nn.functional.avg_pool2d(x * w, 4) * 16
    assert torch.allclose(ks[:, :, ::4, ::4] * 16, patch_sums, atol=1e-3)
    with torch.no_grad():
        delta = model(x)[:, 1] - model(torch.zeros_like(x))[:, 1]
    assert torch.allclose(ks.flatten(1).sum(1), delta, atol=1e-3)  # completeness


def test_gradcam_relu_is_the_positive_part_of_signed_gradcam(lenet):
    x = torch.randn(2, 1, 28, 28)
    signed = attribute("gradcam", lenet, x, 0)
    relu = attribute("gradcam_relu", lenet, x, 0)
    assert (relu >= 0).all() and (signed < 0).any()


def test_unknown_keyword_is_refused(lenet):
    with pytest.raises(ValueError, match="integrated_gradients takes no argument.*n_stpes.*it accepts"):
        attribute("integrated_gradients", lenet, torch.randn(1, 1, 28, 28), 0, n_stpes=3)
    with pytest.raises(ValueError, match="gradient takes no argument.*seed"):
        attribute("gradient", lenet, torch.randn(1, 1, 28, 28), 0, seed=3)


def test_rise_is_registered_and_is_the_perturbation_module_s_rise(lenet):
    """RISE (Petsiuk et al. 2018) through the registry: the class *probability* under random masks, seeded, with the
    baseline filling the masked part; it equals helpers.perturbation.rise and differs between baselines."""
    from helpers.attribution.perturbation import rise

    x, y = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(4)), torch.tensor([2, 5])
    a = attribute("rise", lenet, x, y, n_samples=50, cell=7, seed=3)  # n_samples: the number of masks
    assert torch.allclose(a, rise(lenet, x, y, 0.0, n_masks=50, cell=7, p=0.5, seed=3))
    assert not torch.allclose(a, attribute("rise", lenet, x, y, n_samples=50, cell=7, seed=3, baseline=-0.42))
    assert METHODS["rise"].stochastic and "Petsiuk" in METHODS["rise"].reference
