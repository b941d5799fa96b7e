"""Two models at a time on the CPU: the single-threaded loop's maps bit for bit, and nothing left behind."""
import warnings

import pytest
import torch

from helpers.attribution import METHODS, attribute, parallel
from helpers.attribution.marginal import Marginalized

from ..conftest import seeded_models

PARALLEL = sorted(name for name, m in METHODS.items() if m.parallel)


def _zoo(m=4):
    return seeded_models(m)


def test_the_methods_that_may_run_in_threads_are_the_ones_without_global_randomness():
    assert {"integrated_gradients", "deeplift", "lime", "kernel_shap", "occlusion", "rise", "gradcam",
            "guided_backprop"} <= set(PARALLEL)
    assert not METHODS["smoothgrad"].parallel  # it reseeds torch's global generator per image
    models, x = _zoo(), torch.randn(2, 1, 28, 28)
    assert parallel.workers_for("smoothgrad", models, x) == 1
    assert parallel.workers_for("lime", models[:1], x) == 1
    assert parallel.workers_for("lime", models, x) == 2  # the tests run with two threads


@pytest.mark.parametrize("method", PARALLEL)
def test_two_workers_give_the_loops_maps_bit_for_bit(method):
    models, x, y = _zoo(), torch.randn(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4, 5])
    kw = {"seed": 3} if METHODS[method].stochastic else {}
    if "n_samples" in METHODS[method].defaults:
        kw["n_samples"] = 40
    loop = torch.stack([attribute(method, m, x, y, **kw) for m in models])  # two threads per operation
    torch.set_num_threads(1)
    single = torch.stack([attribute(method, m, x, y, **kw) for m in models])
    torch.set_num_threads(2)
    filters = list(warnings.filters)
    both = torch.stack(parallel.per_model(method, models, x, y, **kw))
    assert torch.equal(both, single)  # each worker is the single-threaded loop: no race between them
    torch.testing.assert_close(both, loop, rtol=1e-5, atol=1e-6)  # another thread count rounds otherwise at most
    assert warnings.filters == filters and torch.get_num_threads() == 2
    assert not x.requires_grad


def test_marginalized_maps_go_through_the_workers(monkeypatch):
    models, x, y = _zoo(3), torch.randn(4, 1, 28, 28), torch.tensor([1, 2, 3, 4])
    calls = []
    real = parallel.per_model
    monkeypatch.setattr("helpers.attribution.marginal.per_model",
                        lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    maps = Marginalized("deeplift", models).attribute(x, y).per_model
    assert calls == ["deeplift"] and maps.shape == (3, 4, 1, 28, 28)
    assert torch.equal(maps, torch.stack([attribute("deeplift", m, x, y) for m in models]))
