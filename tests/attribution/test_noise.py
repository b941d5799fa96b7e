"""NoiseGrad and FusionGrad (Bykov et al., AAAI 2022): the caller's model untouched, σ = 0 gives the base method,
batched equals looped, independent samples (the variance of the mean is σ²w²/n on a linear model), seeds."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.attribution import attribute
from helpers.attribution.noise import input_noise, noisy_maps
from helpers.zoo.architectures import build_model


@pytest.fixture(scope="module")
def lenet() -> nn.Module:
    torch.manual_seed(0)
    return build_model("lenet", 1, 10, image_size=28).eval()


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, 1, 28, 28, generator=g), torch.tensor([0, 3, 5, 9])


def linear(d: int = 4000, k: int = 3) -> nn.Module:
    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(d, k))
    with torch.no_grad():
        model[1].weight.copy_(torch.rand(k, d) + 0.5)  # away from 0: the relative error below is well defined
    return model.eval()


@pytest.mark.parametrize("method", ["noisegrad", "fusiongrad"])
@pytest.mark.parametrize("vectorize", [True, False])
def test_weights_bit_identical(lenet, batch, method, vectorize):
    before = {k: v.clone() for k, v in lenet.state_dict().items()}
    attribute(method, lenet, *batch, n_samples=5, sigma=0.5, vectorize=vectorize)
    after = lenet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("base", ["gradient", "input_x_gradient"])
@pytest.mark.parametrize("vectorize", [True, False])
def test_sigma_zero_is_base(lenet, batch, base, vectorize):
    expected = attribute(base, lenet, *batch)
    got = attribute("noisegrad", lenet, *batch, sigma=0.0, n_samples=3, base=base, vectorize=vectorize)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


def test_sigma_zero_loop_any_base(lenet, batch):
    expected = attribute("integrated_gradients", lenet, *batch, n_steps=4)
    twin = attribute("noisegrad", lenet, *batch, sigma=0.0, n_samples=2, base="integrated_gradients")
    # the loop calls the base with its registry defaults (32 steps): compare with the same call
    torch.testing.assert_close(twin, attribute("integrated_gradients", lenet, *batch), rtol=1e-4, atol=1e-6)
    assert not torch.allclose(twin, expected)  # n_steps matters, so the comparison above is not vacuous


@pytest.mark.parametrize("method", ["noisegrad", "fusiongrad"])
@pytest.mark.parametrize("base", ["gradient", "input_x_gradient"])
def test_batched_equals_looped(lenet, batch, method, base):
    a = attribute(method, lenet, *batch, n_samples=7, base=base, vectorize=True, seed=4)
    b = attribute(method, lenet, *batch, n_samples=7, base=base, vectorize=False, seed=4)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-8)
    assert a.abs().max() > 0


def test_chunking_and_image_batching_do_not_change_maps(lenet, batch):
    x, y = batch
    whole = noisy_maps(lenet, x, y, 9, 0.3, 0.1, "gradient", seed=2, vectorize=True, chunk=16)
    chunked = noisy_maps(lenet, x, y, 9, 0.3, 0.1, "gradient", seed=2, vectorize=True, chunk=4)
    torch.testing.assert_close(whole, chunked, rtol=1e-5, atol=1e-8)
    one = noisy_maps(lenet, x[2:3], y[2:3], 9, 0.3, 0.1, "gradient", seed=2, vectorize=True)
    torch.testing.assert_close(whole[2:3], one, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("n", [1, 8])
@pytest.mark.parametrize("vectorize", [True, False])
def test_variance_of_mean_is_sigma2_w2_over_n(n, vectorize):
    """On f(x) = Wx + b the NoiseGrad map of class c is W_c ⊙ mean(η): each pixel's relative deviation
    (map / w − 1) has variance σ²/n, independently over the 4000 pixels. Shared samples give σ² (8× off at n = 8),
    compounded noise (η_1 η_2 … η_k) gives far more; the tolerance (±15 %) is 7 standard errors of the estimate."""
    model, sigma = linear(), 0.3
    x, y = torch.randn(1, 1, 40, 100), torch.tensor([1])
    w = model[1].weight[1].detach()
    rel = attribute("noisegrad", model, x, y, n_samples=n, sigma=sigma, vectorize=vectorize, seed=7).flatten() / w - 1
    assert abs(float(rel.mean())) < 4 * sigma / (n * 4000) ** 0.5  # unbiased: E[η] = 1
    ratio = float(rel.var()) / (sigma ** 2 / n)
    assert 0.85 < ratio < 1.15, ratio


def test_fusiongrad_without_input_noise_is_noisegrad(lenet, batch):
    a = attribute("fusiongrad", lenet, *batch, n_samples=5, input_sigma=0.0, seed=3)
    b = attribute("noisegrad", lenet, *batch, n_samples=5, seed=3)
    torch.testing.assert_close(a, b)


def test_input_noise_scale():
    x = torch.rand(3, 1, 50, 50) * torch.tensor([1.0, 2.0, 4.0]).view(3, 1, 1, 1)
    z = input_noise(x, 64, 0.15, seed=0)
    sd = z.flatten(2).std(dim=(0, 2))
    rng = x.flatten(1).max(1).values - x.flatten(1).min(1).values
    torch.testing.assert_close(sd, 0.15 * rng, rtol=0.02, atol=0)


@pytest.mark.parametrize("method", ["noisegrad", "fusiongrad"])
def test_seeded(lenet, batch, method):
    a = attribute(method, lenet, *batch, n_samples=4, seed=11)
    b = attribute(method, lenet, *batch, n_samples=4, seed=11)
    c = attribute(method, lenet, *batch, n_samples=4, seed=12)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3 * a.abs().max()


def test_errors(lenet, batch):
    with pytest.raises(ValueError, match="single-model method"):
        attribute("noisegrad", lenet, *batch, base="fusiongrad")
    with pytest.raises(ValueError, match="vectorize=True needs"):
        attribute("noisegrad", lenet, *batch, base="guided_backprop", vectorize=True)
    with pytest.raises(ValueError, match="n_samples"):
        attribute("noisegrad", lenet, *batch, n_samples=0)


@pytest.mark.parametrize("vectorize", [True, False])
def test_budget_maps_are_prefix_means(lenet, batch, vectorize):
    from helpers.attribution.noise import budget_maps

    got = budget_maps(lenet, *batch, [1, 3, 8], 0.2, 0.1, "gradient", seed=5, vectorize=vectorize)
    for k, b in enumerate([1, 3, 8]):
        expected = attribute("fusiongrad", lenet, *batch, n_samples=b, input_sigma=0.1, seed=5)
        torch.testing.assert_close(got[k], expected, rtol=1e-4, atol=1e-8)
