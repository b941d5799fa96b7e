import pytest
import torch
from torch import nn

from helpers.attribution import METHODS, attribute, get_method


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

    from helpers.models import build_model

    model = build_model("lenet", 1, 10).eval()
    x = torch.randn(4, 1, 28, 28)
    ours = attribute("gradient", model, x, 7)
    theirs = Saliency(model).attribute(x, target=7, abs=False)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert (ours < 0).any() and (ours > 0).any()


@pytest.mark.parametrize("method", ["gradient", "input_x_gradient"])
def test_batched_equals_one_by_one(method):
    from helpers.models import build_model

    model = build_model("convnet", 1, 10).eval()
    x = torch.randn(6, 1, 28, 28)
    y = torch.arange(6)
    batched = attribute(method, model, x, y)
    single = torch.cat([attribute(method, model, x[i:i + 1], int(y[i])) for i in range(6)])
    assert torch.allclose(batched, single, atol=1e-6)
    assert not x.requires_grad and torch.isfinite(batched).all()


def test_registry_has_metadata():
    for name in ("gradient", "input_x_gradient"):
        m = get_method(name)
        assert m.name == name and m.summary and m.reference
    assert set(METHODS) >= {"gradient", "input_x_gradient"}


def test_bad_inputs_get_one_line_errors_that_name_the_fix():
    model = LinearImage()
    x = torch.randn(2, 1, 4, 4)
    with pytest.raises(ValueError, match="unknown attribution method 'gradeint': choose one of gradient"):
        attribute("gradeint", model, x, 0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\), got \(1, 4, 4\): add a batch dimension"):
        attribute("gradient", model, x[0], 0)
    with pytest.raises(ValueError, match="one per image \\(2\\), got shape \\(3,\\)"):
        attribute("gradient", model, x, [0, 1, 2])
