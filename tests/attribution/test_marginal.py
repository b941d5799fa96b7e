import pytest
import torch

from helpers.attribution import attribute
from helpers.attribution.marginal import Marginalized, stacked_logit_gradients

from ..conftest import seeded_models


def _zoo(name="lenet", m=4, channels=1):
    return seeded_models(m, name, channels)


@pytest.mark.parametrize("method", ["gradient", "input_x_gradient"])
def test_mean_and_std_match_a_manual_loop(method):
    models = _zoo()
    x, y = torch.randn(5, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4])
    res = Marginalized(method, models).attribute(x, y, batch_size=2)
    manual = torch.stack([torch.stack([attribute(method, m, x[i:i + 1], int(y[i]))[0] for i in range(5)])
                          for m in models])
    assert res.per_model.shape == (4, 5, 1, 28, 28)
    assert torch.allclose(res.per_model, manual, atol=1e-6)
    assert torch.allclose(res.mean, manual.mean(0), atol=1e-6)
    assert torch.allclose(res.std, manual.std(0), atol=1e-6)


@pytest.mark.parametrize("arch,channels,size", [("convnet", 1, 28), ("resnet18", 3, 32)])
def test_vectorised_path_equals_loop_with_batchnorm(arch, channels, size):
    models = _zoo(arch, 3, channels)
    x, y = torch.randn(2, channels, size, size), torch.tensor([3, 4])
    fast = Marginalized("gradient", models, vectorize=True).attribute(x, y)
    slow = Marginalized("gradient", models, vectorize=False).attribute(x, y)
    assert Marginalized("gradient", models, vectorize=True).vectorize
    assert not Marginalized("gradient", models).vectorize  # BatchNorm on a CPU: the loop is faster
    assert torch.allclose(fast.per_model, slow.per_model, rtol=1e-4, atol=1e-6)
    chunked = stacked_logit_gradients(models, x, y, model_batch=2)
    assert torch.allclose(chunked, fast.per_model, rtol=1e-4, atol=1e-6)


def test_auto_vectorises_models_without_batchnorm_on_cpu():
    assert Marginalized("gradient", _zoo("lenet", 2)).vectorize
    assert not Marginalized("input_x_gradient", _zoo("lenet", 2), vectorize=False).vectorize


def test_identical_models_have_zero_std_and_mean_equal_to_single():
    models = _zoo(m=1) * 3
    x = torch.randn(2, 1, 28, 28)
    res = Marginalized("gradient", models).attribute(x, 5)
    assert torch.allclose(res.std, torch.zeros_like(res.std), atol=1e-7)
    assert torch.allclose(res.mean, attribute("gradient", models[0], x, 5), atol=1e-6)


def test_running_mean():
    per_model = torch.randn(6, 2, 1, 3, 3)
    from helpers.attribution.marginal import MarginalMaps

    maps = MarginalMaps(per_model)
    run = maps.running_mean()
    assert torch.allclose(run[0], per_model[0]) and torch.allclose(run[-1], maps.mean, atol=1e-6)
    assert torch.allclose(run[2], per_model[:3].mean(0), atol=1e-6)
    assert torch.equal(MarginalMaps(per_model[:1]).std, torch.zeros_like(per_model[0]))


def test_variance_of_the_mean_shrinks_like_one_over_m():
    """On a toy zoo (signal + independent noise per model), the mean's error variance falls ~ 1/M."""
    gen = torch.Generator().manual_seed(0)
    signal = torch.randn(1, 1, 16, 16, generator=gen)
    per_model = signal + 0.5 * torch.randn(64, 1, 1, 16, 16, generator=gen)
    from helpers.attribution.marginal import MarginalMaps

    run = MarginalMaps(per_model).running_mean()
    err = ((run - signal) ** 2).flatten(1).mean(1)
    assert 0.15 < (err[15] / err[3]).item() < 0.4  # expected 4/16 = 0.25
    assert 0.08 < (err[63] / err[15]).item() < 0.45  # expected 16/64 = 0.25


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one model"):
        Marginalized("gradient", [])
    with pytest.raises(ValueError, match="unknown attribution method"):
        Marginalized("saliencyy", _zoo(m=1))
    with pytest.raises(ValueError, match="add a batch dimension"):
        Marginalized("gradient", _zoo(m=1)).attribute(torch.randn(1, 28, 28), 0)


def test_marginalize_methods_matches_single_calls():
    from helpers.attribution.marginal import marginalize_methods

    models = _zoo(m=2)
    x = torch.randn(2, 1, 28, 28)
    out = marginalize_methods(["gradient", "occlusion"], models, x, 1, {"occlusion": {"window": 7, "stride": 7}},
                              progress=False)
    assert set(out) == {"gradient", "occlusion"}
    ref = Marginalized("occlusion", models, window=7, stride=7).attribute(x, 1)
    assert torch.allclose(out["occlusion"].mean, ref.mean)
    with pytest.raises(ValueError, match="unknown attribution method"):
        marginalize_methods(["gradient", "lrp"], models, x, 1)


def test_mean_of_gradients_is_the_gradient_of_the_mean_logit():
    """Marginalization = explaining the ensemble: the mean of the per-model gradients equals the gradient of the
    zoo's mean logit (linearity of the derivative)."""
    models = _zoo(m=5)
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([1, 3, 5, 7])
    mean_map = Marginalized("gradient", models).attribute(x, target=y).mean
    xr = x.clone().requires_grad_(True)
    mean_logit = torch.stack([m(xr) for m in models]).mean(0)
    (grad,) = torch.autograd.grad(mean_logit.gather(1, y[:, None]).sum(), xr)
    assert torch.allclose(mean_map, grad, atol=1e-6, rtol=1e-4)


def test_class_maps_and_of_class():
    from helpers.attribution.marginal import class_maps, of_class

    models = _zoo(m=3)
    x = torch.randn(2, 1, 28, 28)
    per_class = class_maps("gradient", models, x, 10)
    assert per_class.shape == (10, 3, 2, 28, 28)
    for k in (0, 6):
        expected = attribute("gradient", models[1], x, torch.tensor([k, k])).sum(1)
        assert torch.allclose(per_class[k, 1], expected, atol=1e-6)
    picked = of_class(per_class, torch.tensor([4, 9]))
    assert picked.shape == (3, 2, 28, 28)
    assert torch.equal(picked[:, 0], per_class[4, :, 0]) and torch.equal(picked[:, 1], per_class[9, :, 1])
