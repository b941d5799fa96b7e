import pytest
import torch
from torch import nn

from helpers.zoo.architectures import MODELS, build_model

SMALL = ["lenet", "lenet-wide", "lenet-deep", "convnet"]


def _input(name: str) -> torch.Tensor:
    return torch.randn(2, 1, 28, 28) if name in SMALL else torch.randn(2, 3, 32, 32)


def _build(name: str):
    extra = {"pretrained": False} if name == "resnet18-imagenet" else {}  # no download in tests
    return build_model(name, 1 if name in SMALL else 3, 10, **extra)


@pytest.mark.parametrize("name", list(MODELS))
def test_forward_shape_and_attribution_friendly_modules(name):
    model = _build(name).eval()
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


def test_imagenet_resnet18_matches_torchvision_with_the_same_weights():
    import torchvision

    from helpers.zoo.architectures import from_torchvision_resnet

    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None).eval()
    ours = build_model("resnet18-imagenet", 3, 1000, pretrained=False).eval()
    ours.load_state_dict(from_torchvision_resnet(reference.state_dict()))  # strict: every name maps
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), reference(x), atol=1e-5)


def test_pretrained_weights_are_not_downloaded_offline(monkeypatch, tmp_path):
    monkeypatch.delenv("HELPERS_ALLOW_DOWNLOAD", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(RuntimeError, match="HELPERS_ALLOW_DOWNLOAD=1 to download them"):
        build_model("resnet18-imagenet", 3, 25)
    with pytest.raises(ValueError, match="needs 3 input channels"):
        build_model("resnet18-imagenet", 1, 25)


def test_seeded_head_on_a_shared_backbone():
    from helpers.zoo.architectures import ImageNetResNet18

    def head(seed):
        torch.manual_seed(seed)
        return ImageNetResNet18(3, 25, pretrained=False).linear.weight

    assert torch.equal(head(1), head(1)) and not torch.equal(head(1), head(2))


@pytest.mark.parametrize("name,size", [("vgg19", 4), ("resnet18", 8), ("resnet101", 8), ("lenet", 10)])
def test_gradcam_layer_is_not_a_one_pixel_map(name, size):
    model = _build(name).eval()
    seen = []
    hook = model.gradcam_layer.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    with torch.no_grad():
        model(_input(name))
    hook.remove()
    assert seen == [size]


class _Planted:
    """A pickle that runs code when it is unpickled (what a planted checkpoint could do)."""

    def __reduce__(self):
        import os

        return (os.system, ("touch planted-code-ran",))


def test_a_planted_hub_checkpoint_is_refused_before_it_is_read(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    planted = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    planted.parent.mkdir(parents=True)
    torch.save({"fc.weight": _Planted()}, planted)
    with pytest.raises(RuntimeError, match=r"does not match its checksum .* delete it"):
        build_model("resnet18-imagenet", 3, 25)
    assert not (tmp_path / "planted-code-ran").exists()


def test_every_load_of_weights_is_safe():
    """No torch.load without weights_only=True, and no torchvision get_state_dict (it unpickles unsafely)."""
    import re
    from pathlib import Path

    import helpers

    bad = []
    for path in Path(helpers.__file__).parent.rglob("*.py"):
        code = path.read_text()
        for m in re.finditer(r"torch\.load\(([^)]*)\)", code):
            if "weights_only=True" not in m.group(1):
                bad.append(f"{path.name}: {m.group(0)}")
        bad += [f"{path.name}: get_state_dict(" for _ in re.finditer(r"\.get_state_dict\(", code)]
        for m in re.finditer(r"load_state_dict_from_url\(([^)]*)\)", code):
            if "weights_only=True" not in m.group(1) or "check_hash=True" not in m.group(1):
                bad.append(f"{path.name}: {m.group(0)}")
    assert bad == []
