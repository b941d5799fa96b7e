"""Known answers for helpers.positive: GradCAM++, FullGrad, LRP and RectGrad, positive and signed."""
import pytest
import torch
from torch import nn

from helpers.attribution import positive
from helpers.attribution import METHODS, attribute
from helpers.zoo.architectures import build_model

NEW = ["gradcam_pp", "gradcam_pp_signed", "fullgrad", "fullgrad_signed", "lrp_epsilon", "lrp_zplus", "rectgrad"]


def _model(arch: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    c, s = (1, 28) if arch in ("lenet", "lenet-wide", "lenet-deep", "convnet") else (3, 32)
    return build_model(arch, c, 10, image_size=s).eval()


def _x(model: nn.Module, n: int = 3, seed: int = 1) -> torch.Tensor:
    c = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    s = 28 if c == 1 else 32
    return torch.randn(n, c, s, s, generator=torch.Generator().manual_seed(seed))


class BiasFree(nn.Module):
    """A small ReLU network without biases: conv → ReLU → max-pool → conv → ReLU → linear."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, bias=False)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(6 * 4 * 4, 5, bias=False)
        self.gradcam_layer = self.relu2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu2(self.conv2(self.pool(self.relu1(self.conv1(x)))))
        return self.fc(torch.flatten(x, 1))


def test_methods_are_registered_with_a_paper():
    for name in NEW:
        assert name in METHODS and "20" in METHODS[name].reference
    from helpers.attribution import CORE_METHODS

    assert not set(NEW) & set(CORE_METHODS)  # chapters 1–6 keep their methods


# ------------------------------------------------------------------------------------------------ GradCAM++

def test_gradcam_pp_weights_equal_the_closed_form_on_a_tiny_layer():
    act = torch.tensor([[[[1.0, 2.0], [0.0, 3.0]], [[0.5, 0.0], [1.0, 1.0]]]])  # (1, 2, 2, 2)
    grad = torch.tensor([[[[0.5, -1.0], [0.0, 2.0]], [[-0.5, 0.25], [1.0, 0.0]]]])
    expected_pos, expected_signed = [], []
    for k in range(2):
        s = float(act[0, k].sum())
        wp = ws = 0.0
        for g in grad[0, k].flatten().tolist():
            if g == 0:
                continue
            alpha = g * g / (2 * g * g + s * g ** 3 + 1e-6)
            wp += alpha * max(g, 0.0)
            ws += alpha * g
        expected_pos.append(wp)
        expected_signed.append(ws)
    assert torch.allclose(positive.gradcam_pp_weights(act, grad), torch.tensor([expected_pos]), atol=1e-6)
    assert torch.allclose(positive.gradcam_pp_weights(act, grad, positive=False), torch.tensor([expected_signed]),
                          atol=1e-6)


def test_gradcam_pp_matches_pytorch_grad_cam():
    gc = pytest.importorskip("pytorch_grad_cam", reason="grad-cam (pytorch-grad-cam) is not installed")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = _model("lenet")
    x, y = _x(model), torch.tensor([1, 4, 7])
    act, grad = positive.layer_gradients(model, model.gradcam_layer, x, y)
    theirs_w = gc.GradCAMPlusPlus(model, [model.gradcam_layer]).get_cam_weights(
        x, None, None, act.numpy(), grad.numpy())
    assert torch.allclose(positive.gradcam_pp_weights(act, grad), torch.from_numpy(theirs_w).float(), rtol=1e-4,
                          atol=1e-7)
    with gc.GradCAMPlusPlus(model, [model.gradcam_layer]) as cam:
        theirs = torch.from_numpy(cam(x, [ClassifierOutputTarget(int(c)) for c in y]))
    ours = attribute("gradcam_pp", model, x, y).sum(1)
    flat = ours.flatten(1) - ours.flatten(1).amin(1, keepdim=True)
    ours = (flat / (flat.amax(1, keepdim=True) + 1e-7)).view_as(ours)  # grad-cam scales each map to [0, 1]
    assert torch.allclose(ours, theirs, atol=2e-3)


def test_gradcam_pp_positive_is_nonnegative_and_signed_is_not():
    model = _model("lenet", seed=2)
    x, y = _x(model, 4), torch.tensor([0, 1, 2, 3])
    assert (attribute("gradcam_pp", model, x, y) >= 0).all()
    signed = attribute("gradcam_pp_signed", model, x, y)
    assert (signed < 0).any() and (signed > 0).any()


# ------------------------------------------------------------------------------------------------ FullGrad

@pytest.mark.parametrize("arch", ["lenet", "convnet", "resnet18"])
def test_fullgrad_completeness(arch):
    """Input-gradient and bias-gradient terms sum to the logit (BatchNorm in eval mode: an affine map)."""
    model = _model(arch)
    for m in model.modules():  # non-trivial BatchNorm statistics, so that BatchNorm biases are not zero
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.bias.data.uniform_(-0.3, 0.3)
    x, y = _x(model, 2), torch.tensor([2, 5])
    grad_x, terms = positive.fullgrad_terms(model, x, y)
    total = grad_x.flatten(1).sum(1) + sum(t.flatten(1).sum(1) for _, t in terms)
    logit = model(x).gather(1, y[:, None]).squeeze(1).detach()
    assert torch.allclose(total, logit, rtol=1e-4, atol=1e-5 * logit.abs().max())
    assert {"fc3", "linear", "fc"} & {name for name, _ in terms}  # linear layers' biases count too


def test_fullgrad_refuses_batchnorm_in_training_mode():
    model = _model("convnet").train()
    with pytest.raises(ValueError, match="eval mode"):
        positive.fullgrad_terms(model, torch.randn(2, 1, 28, 28), torch.tensor([0, 1]))


def test_fullgrad_terms_match_pytorch_grad_cam():
    """grad-cam's FullGrad (convolution and BatchNorm biases, per-channel scaling) rebuilt from our terms."""
    gc = pytest.importorskip("pytorch_grad_cam", reason="grad-cam (pytorch-grad-cam) is not installed")
    import numpy as np
    from pytorch_grad_cam.utils.image import scale_accross_batch_and_channels, scale_cam_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = _model("convnet")
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.bias.data.uniform_(-0.3, 0.3)
    x, y = _x(model, 2), torch.tensor([3, 8])
    size = (28, 28)
    grad_x, terms = positive.fullgrad_terms(model, x, y)
    layers = [scale_accross_batch_and_channels(grad_x.abs().numpy(), size)]
    layers += [scale_accross_batch_and_channels(t.abs().numpy(), size).sum(1, keepdims=True)
               for _, t in terms if t.ndim == 4]
    ours = scale_cam_image(np.concatenate(layers, axis=1).sum(1))
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        cam = gc.FullGrad(model, [])
    theirs = cam(x, [ClassifierOutputTarget(int(c)) for c in y])
    assert np.allclose(ours, theirs, atol=1e-4)


def test_fullgrad_positive_vs_signed():
    model = _model("lenet")
    x, y = _x(model), torch.tensor([1, 2, 3])
    assert (attribute("fullgrad", model, x, y) >= 0).all()
    signed = attribute("fullgrad_signed", model, x, y)
    assert (signed < 0).any() and (signed > 0).any()


# ------------------------------------------------------------------------------------------------ LRP

@pytest.mark.parametrize("rule", ["epsilon", "zplus"])
def test_lrp_conserves_relevance_on_a_small_relu_net(rule):
    model = BiasFree().eval()
    x, y = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 4])
    r = positive.lrp(model, x, y, rule, epsilon=1e-9)
    logit = model(x).gather(1, y[:, None]).squeeze(1).detach()
    assert torch.allclose(r.flatten(1).sum(1), logit, rtol=1e-4, atol=1e-6)


def test_lrp_epsilon_with_tiny_epsilon_is_input_times_gradient():
    """Ancona et al. (ICLR 2018): on a ReLU network, LRP-ε with ε → 0 equals gradient ⊙ input."""
    model = BiasFree().eval()
    x, y = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 3, 4])
    assert torch.allclose(attribute("lrp_epsilon", model, x, y, epsilon=1e-12),
                          attribute("input_x_gradient", model, x, y), atol=1e-5)


def test_lrp_conserves_through_batchnorm_and_residual_connections():
    """ResNet18 with bias-free merged BatchNorm: relevance is conserved only if the skip additions split it."""
    model = _model("resnet18")
    nn.init.zeros_(model.linear.bias)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2.0)  # BatchNorm scales, but adds no bias (mean 0, β 0)
            m.weight.data.uniform_(0.5, 1.5)
    x, y = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2)), torch.tensor([1, 6])
    logit = model(x).gather(1, y[:, None]).squeeze(1).detach()
    for rule in ("epsilon", "zplus"):
        r = positive.lrp(model, x, y, rule, epsilon=1e-9)
        assert torch.allclose(r.flatten(1).sum(1), logit, rtol=1e-3), rule


def test_lrp_leaves_the_model_unchanged_and_refuses_unknown_rules():
    model = _model("convnet")
    x = torch.randn(2, 1, 28, 28)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = model(x)
    attribute("lrp_zplus", model, x, [0, 1])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(model(x), out) and not model._forward_hooks and not model.features[0]._forward_hooks
    with pytest.raises(ValueError, match="unknown LRP rule 'gamma': use 'epsilon' or 'zplus'"):
        positive.lrp(model, x, torch.tensor([0, 1]), "gamma", 0.0)


def test_lrp_zplus_is_positive_and_epsilon_is_signed():
    model = BiasFree().eval()
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(4))  # non-negative inputs
    y = torch.tensor([0, 1, 2])
    logit = model(x).gather(1, y[:, None]).squeeze(1).detach()
    zplus = attribute("lrp_zplus", model, x, y)
    assert ((zplus * logit.sign().view(-1, 1, 1, 1)) >= -1e-7).all()  # every pixel's relevance has the logit's sign
    eps = attribute("lrp_epsilon", model, x, y)
    assert (eps < 0).any() and (eps > 0).any()


# ------------------------------------------------------------------------------------------------ RectGrad

def test_rectgrad_with_q0_is_input_times_gradient():
    model = _model("lenet")
    x, y = _x(model), torch.tensor([1, 4, 7])
    assert torch.allclose(attribute("rectgrad", model, x, y, q=0.0), attribute("input_x_gradient", model, x, y),
                          atol=1e-7)


def test_rectgrad_keeps_fewer_paths_as_q_grows_and_removes_its_hooks():
    model = _model("lenet")
    x, y = _x(model), torch.tensor([1, 4, 7])
    grad = attribute("input_x_gradient", model, x, y)
    r98 = attribute("rectgrad", model, x, y)
    assert (r98 != 0).sum() < (grad != 0).sum() and (r98 != 0).any()
    assert torch.equal(attribute("input_x_gradient", model, x, y), grad)  # hooks gone
    with pytest.raises(ValueError, match="q=120: use a percentile between 0 and 100"):
        attribute("rectgrad", model, x, y, q=120)


# ------------------------------------------------------------------------------------------------ all of them

@pytest.mark.parametrize("arch", ["convnet", "resnet18"])
def test_batched_equals_looped_with_batchnorm_and_residuals(arch):
    model = _model(arch)
    x = _x(model, 3)
    y = torch.tensor([1, 4, 7])
    for name in NEW:
        batched = attribute(name, model, x, y)
        looped = torch.cat([attribute(name, model, x[i:i + 1], int(y[i])) for i in range(3)])
        assert batched.shape == x.shape and torch.isfinite(batched).all(), name
        assert torch.allclose(batched, looped, rtol=1e-4, atol=1e-4 * batched.abs().max()), name


def test_models_without_a_cam_layer_or_relu_get_one_line_errors():
    class NoCam(nn.Module):
        def forward(self, x):
            return torch.flatten(x, 1)[:, :3]

    x = torch.randn(2, 1, 4, 4)
    with pytest.raises(ValueError, match="has no gradcam_layer: build it with helpers.models.build_model"):
        attribute("gradcam_pp", NoCam(), x, 0)
    with pytest.raises(ValueError, match="has no nn.ReLU module"):
        attribute("rectgrad", NoCam(), x, 0)
