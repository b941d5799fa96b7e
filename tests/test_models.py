import pytest
import torch
from torch import nn

from helpers.models import MODELS, build_model

SMALL = ["lenet", "lenet-wide", "lenet-deep", "convnet"]


def _input(name: str) -> torch.Tensor:
    return torch.randn(2, 1, 28, 28) if name in SMALL else torch.randn(2, 3, 32, 32)


@pytest.mark.parametrize("name", list(MODELS))
def test_forward_shape_and_attribution_friendly_modules(name):
    model = build_model(name, 1 if name in SMALL else 3, 10).eval()
    x = _input(name)
    calls: dict[nn.Module, int] = {}
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    hooks = [m.register_forward_hook(lambda mod, i, o: calls.__setitem__(mod, calls.get(mod, 0) + 1)) for m in relus]
    with torch.no_grad():
        out = model(x)
    for h in hooks:
        h.remove()
    assert out.shape == (2, 10)
    assert not any(isinstance(m, nn.Flatten) for m in model.modules())
    assert relus and all(calls.get(m) == 1 for m in relus), "every ReLU module must be used exactly once"
    assert any(model.gradcam_layer is m for m in model.modules())


def test_vgg_runs_on_mnist_sized_inputs():
    model = build_model("vgg19", 1, 10).eval()
    assert model(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_width_changes_parameter_count():
    small = sum(p.numel() for p in build_model("lenet", 1, 10).parameters())
    wide = sum(p.numel() for p in build_model("lenet-wide", 1, 10).parameters())
    assert wide > 2 * small


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match="unknown architecture 'resnet19'.*resnet18"):
        build_model("resnet19", 3, 10)


@pytest.mark.parametrize("name", ["lenet", "convnet"])
def test_captum_hook_methods_run_repeatedly(name):
    from captum.attr import LRP, DeepLift, GuidedBackprop

    model = build_model(name, 1, 10).eval()
    x = torch.randn(2, 1, 28, 28)
    for method in (DeepLift(model), GuidedBackprop(model)):
        assert method.attribute(x, target=1).shape == x.shape
    if name == "lenet":  # captum LRP has no rule for BatchNorm
        for _ in range(2):
            assert torch.isfinite(LRP(model).attribute(x, target=1)).all()
