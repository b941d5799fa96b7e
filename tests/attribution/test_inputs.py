"""Bad inputs get one line that names the fix, before any work, at every public entry point (issue: nothing wrong
gets published): NaN or inf pixels, an empty batch, channels or a size the model does not take, a non-float dtype,
a target out of range."""
from __future__ import annotations

import pytest
import torch

from helpers import Marginalized, attribute
from helpers.attribution import clear
from helpers.evaluation import faithfulness, sanity

from ..conftest import seeded_models


@pytest.fixture(scope="module")
def lenets():
    return seeded_models(2)


def _x(n=2, c=1, s=28):
    return torch.randn(n, c, s, s, generator=torch.Generator().manual_seed(0))


def _nan():
    x = _x()
    x[1, 0, 3, 4] = float("nan")
    return x


def _inf():
    x = _x()
    x[0, 0, 0, 0] = float("inf")
    return x


BAD = [  # (inputs, target, the one-line message)
    (_nan, 0, r"1 NaN or inf pixel value\(s\), in image\(s\) \[1\]: clean or drop those images"),
    (_inf, 0, r"NaN or inf pixel value\(s\), in image\(s\) \[0\]"),
    (lambda: _x(0), 0, r"empty batch \(0 images\): pass at least one image"),
    (lambda: _x(c=3), 0, r"3 channel\(s\) but lenet takes 1: explain images of the dataset"),
    (lambda: _x(s=32), 0, r"32×32 but lenet takes 28×28"),
    (lambda: (_x() * 255).to(torch.uint8), 0, r"torch.uint8: pass float images normalized like the model's dataset"),
    (_x, 10, r"target 10 is out of range for lenet with 10 classes: use 0 … 9"),
    (_x, -1, r"target -1 is out of range"),
]
IDS = ["nan", "inf", "empty", "3 channels", "32x32", "uint8", "target 10", "target -1"]


def _entry_points(models):
    return {
        "attribute": lambda x, t: attribute("gradient", models[0], x, t),
        "integrated_gradients": lambda x, t: attribute("integrated_gradients", models[0], x, t),
        "Marginalized": lambda x, t: Marginalized("gradient", models).attribute(x, t),
        "clear": lambda x, t: clear.per_model_responses(models, x),
        "sanity": lambda x, t: sanity.randomization_maps(["gradient"], models, x, t),
        "deletion curves": lambda x, t: faithfulness.curves(
            models, x, torch.full((x.shape[0],), t), torch.rand(1, x.shape[0], *x.shape[-2:])),
    }


@pytest.mark.parametrize("bad,target,message", BAD, ids=IDS)
@pytest.mark.parametrize("entry", ["attribute", "integrated_gradients", "Marginalized", "clear", "sanity",
                                   "deletion curves"])
def test_every_entry_point_refuses_bad_inputs_in_one_line(lenets, bad, target, message, entry):
    if entry == "clear" and isinstance(target, int) and target != 0:
        pytest.skip("CLEAR explains every class: it takes no target")
    x = bad()
    with pytest.raises(ValueError, match=message) as info:
        _entry_points(lenets)[entry](x, target)
    assert "\n" not in str(info.value)


def test_good_inputs_still_pass(lenets):
    x = _x()
    for name, call in _entry_points(lenets).items():
        call(x, 3)  # no error


def test_models_without_a_spec_are_checked_by_their_layers():
    """A model not built by build_model: channels from its first convolution, classes from its last layer."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 5))
    with pytest.raises(ValueError, match=r"1 channel\(s\) but Sequential takes 3"):
        attribute("gradient", net, _x(), 0)
    with pytest.raises(ValueError, match=r"target 5 is out of range for Sequential with 5 classes: use 0 … 4"):
        attribute("gradient", net, _x(c=3), 5)
    assert attribute("gradient", net, _x(c=3, s=17), 4).shape == (2, 3, 17, 17)  # any size: it pools adaptively
