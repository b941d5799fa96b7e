"""LIME and KernelSHAP batched over images (helpers.surrogate): known answers, captum's LIME reproduced, the Shapley
kernel's coalition sizes, batched == one image at a time, errors."""
import pytest
import torch
from torch import nn

from helpers.attribution import surrogate as S


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0)))

    def forward(self, x):
        z = (x * self.w).flatten(1).sum(1)
        return torch.stack([z, -z], 1)


@pytest.fixture(scope="module")
def lenet():
    from helpers.zoo.architectures import build_model

    torch.manual_seed(0)
    return build_model("lenet", 1, 10).eval()


@pytest.mark.parametrize("kind", S.KINDS)
def test_a_linear_model_gets_its_exact_patch_contributions(kind):
    model, x = Linear(), torch.randn(3, 1, 8, 8)
    b = torch.full_like(x, 0.5)
    a = S.attribute(kind, model, x, torch.zeros(3, dtype=torch.long), 40, 4, b, seed=2)
    exact = nn.functional.avg_pool2d((x - b) * model.w, 4) * 16  # Σ over each 4×4 patch of w·(x − b)
    assert torch.allclose(a[:, :, ::4, ::4] * 16, exact, atol=1e-4)
    assert torch.allclose(a.flatten(1).sum(1), ((x - b) * model.w).flatten(1).sum(1), atol=1e-4)


def test_lime_reproduces_captum(lenet):
    """Same coalitions as captum's Lime after torch.manual_seed (its Bernoulli draws), same kernel, same fit."""
    from captum._utils.models.linear_model import SkLearnLinearRegression
    from captum.attr import Lime

    from helpers.attribution.registry import grid_mask

    x, y = torch.randn(2, 1, 28, 28), torch.tensor([3, 7])
    ours = S.attribute("lime", lenet, x, y, 60, 4, 0.0, seed=5)
    mask = grid_mask(28, 28, 4)
    ref = []
    for i in range(2):
        torch.manual_seed(5)
        ref.append(Lime(lenet, interpretable_model=SkLearnLinearRegression()).attribute(
            x[i:i + 1], baselines=0.0, target=y[i:i + 1], feature_mask=mask, n_samples=60, perturbations_per_eval=60))
    assert torch.allclose(ours * 16, torch.cat(ref), atol=1e-3)


def test_kernel_shap_coalitions_follow_the_shapley_kernel():
    z, w = S.coalitions("kernel_shap", 20002, 10, seed=0)
    assert torch.equal(z[0], torch.ones(10)) and torch.equal(z[1], torch.zeros(10)) and w[:2].min() == S.INF_WEIGHT
    sizes = z[2:].sum(1).long()
    k = torch.arange(1, 10, dtype=torch.double)
    expected = (9 / (k * (10 - k))) / (9 / (k * (10 - k))).sum()
    observed = torch.bincount(sizes, minlength=10)[1:].double() / len(sizes)
    assert (observed - expected).abs().max() < 0.01 and sizes.min() >= 1 and sizes.max() <= 9
    assert not torch.equal(z, S.coalitions("kernel_shap", 20002, 10, seed=1)[0])


@pytest.mark.parametrize("kind", S.KINDS)
def test_batched_equals_one_image_at_a_time_and_the_seed_matters(kind, lenet):
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    batched = S.attribute(kind, lenet, x, y, 50, 4, 0.0, seed=3, batch=120)  # two images per forward pass
    single = torch.cat([S.attribute(kind, lenet, x[i:i + 1], y[i:i + 1], 50, 4, 0.0, seed=3) for i in range(4)])
    assert torch.allclose(batched, single, atol=1e-5)
    assert not torch.allclose(batched, S.attribute(kind, lenet, x, y, 50, 4, 0.0, seed=4), atol=1e-3)


def test_bad_input_names_the_fix():
    with pytest.raises(ValueError, match="unknown surrogate 'shap'.*lime, kernel_shap"):
        S.coalitions("shap", 10, 4)
    with pytest.raises(ValueError, match="at least 3 samples"):
        S.coalitions("lime", 2, 4)
