"""Deep dream of one network and of an ensemble (helpers.dream, helpers.viz_dream)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from helpers import viz_dream
from helpers.dream import (DreamConfig, Ensemble, _tv, dream, pixel_bounds, split_zoo, start_images,
                           target_scores)

SHAPE = (1, 8, 8)
MEAN, STD = (0.5,), (0.25,)  # valid normalised range [-2, 2]


@pytest.fixture(autouse=True)
def _one_thread(_threads):
    """Tiny networks: one thread is faster than two on a shared CPU (no spinning OpenMP workers)."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(2)


PLAIN = DreamConfig(steps=1, step_size=0.1, normalize_grad=False, jitter=0, blur_every=0, clamp=False, start="mean")


class Linear(nn.Module):
    def __init__(self, k: int = 4, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(int(np.prod(SHAPE)), k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(x, 1))


class TinyCNN(nn.Module):
    def __init__(self, seed: int = 0, k: int = 3) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4 * 4 * 4, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.max_pool2d(self.relu(self.conv(x)), 2), 1))


def cnns(n: int) -> list[nn.Module]:
    return [TinyCNN(seed=s).eval() for s in range(n)]


def test_linear_model_ascends_along_the_weight_row():
    model = Linear().eval()
    w = model.fc.weight.detach()
    r = dream(model, [0, 1, 2, 3], SHAPE, MEAN, STD, PLAIN)
    # from x0 = 0 one step of size eta moves exactly by eta * W[c] (the known gradient of a linear logit)
    assert torch.allclose(r.images.flatten(1), 0.1 * w, atol=1e-6)
    # with gradient normalisation: the same direction, scaled to a mean |step| of eta
    r2 = dream(model, [2], SHAPE, MEAN, STD, PLAIN.replace(normalize_grad=True))
    assert torch.allclose(r2.images.flatten(1)[0], 0.1 * w[2] / w[2].abs().mean(), atol=1e-6)
    assert r.logits.shape == (2, 4, 4)
    assert torch.allclose(r.logits[0], model.fc.bias.detach().expand(4, 4), atol=1e-6)


def test_target_logit_rises_monotonically_on_a_small_cnn():
    cfg = DreamConfig(steps=30, step_size=0.02, jitter=0, blur_every=0, start="noise", seed=3)
    r = dream(cnns(1), [0, 1, 2], SHAPE, MEAN, STD, cfg)
    tl = r.target_logits()  # (T+1, B)
    assert (tl[-1] > tl[0] + 0.5).all()
    assert (tl.diff(dim=0) > 0).float().mean() > 0.9
    # with jitter and blur (the regularised dream) it still climbs overall
    r2 = dream(cnns(1), [0, 1, 2], SHAPE, MEAN, STD, DreamConfig(steps=30, step_size=0.05, jitter=1, blur_every=3))
    assert (r2.target_logits()[-1] > r2.target_logits()[0]).all()


def test_ensemble_of_identical_models_equals_the_single_model():
    m = TinyCNN(seed=1).eval()
    cfg = DreamConfig(steps=8, snapshot_every=3, jitter=1, blur_every=2, tv=0.01, l2=0.01)
    single = dream(m, [0, 2], SHAPE, MEAN, STD, cfg)
    for mode in ("loop", "vmap"):
        many = dream([m, copy.deepcopy(m), copy.deepcopy(m)], [0, 2], SHAPE, MEAN, STD, cfg, mode=mode)
        assert torch.allclose(many.images, single.images, atol=1e-5)
        assert torch.allclose(many.logits, single.logits, atol=1e-4)


def test_vmap_and_loop_agree_and_average_the_logits():
    models = cnns(3)
    x = torch.randn(5, *SHAPE)
    loop, vm = Ensemble(models, "loop")(x), Ensemble(models, "vmap")(x)
    assert loop.shape == (3, 5, 3) and torch.allclose(loop, vm, atol=1e-5)
    r = dream(models, [1], SHAPE, MEAN, STD, DreamConfig(steps=2))
    x0 = start_images(1, SHAPE, MEAN, STD, DreamConfig(steps=2))
    with torch.no_grad():
        assert torch.allclose(r.logits[0], torch.stack([m(x0) for m in models]).mean(0), atol=1e-5)
        assert torch.allclose(r.probs[0], torch.stack([m(x0).softmax(-1) for m in models]).mean(0), atol=1e-5)


def test_same_seed_same_dream_other_seed_other_dream():
    cfg = DreamConfig(steps=6, jitter=2, blur_every=2, start="noise", seed=7)
    a = dream(cnns(2), [0, 1], SHAPE, MEAN, STD, cfg)
    b = dream(cnns(2), [0, 1], SHAPE, MEAN, STD, cfg)
    c = dream(cnns(2), [0, 1], SHAPE, MEAN, STD, cfg.replace(seed=8))
    assert torch.equal(a.images, b.images) and torch.equal(a.logits, b.logits)
    assert not torch.allclose(a.images, c.images)


def test_output_shapes_snapshots_and_clamp():
    cfg = DreamConfig(steps=7, snapshot_every=3, step_size=1.0)  # big steps: the clamp must hold
    r = dream(cnns(2), [0, 1, 2, 0], SHAPE, MEAN, STD, cfg)
    assert r.images.shape == (4, *SHAPE)
    assert r.snapshot_steps == [0, 3, 6, 7]
    assert r.snapshots.shape == (4, 4, *SHAPE) and torch.equal(r.snapshots[-1], r.images)
    assert r.logits.shape == r.probs.shape == (8, 4, 3)
    assert torch.allclose(r.probs.sum(-1), torch.ones(8, 4), atol=1e-5)
    assert r.target_logits().shape == r.target_probs().shape == (8, 4)
    lo, hi = pixel_bounds(MEAN, STD)
    assert r.images.min() >= lo.min() - 1e-6 and r.images.max() <= hi.max() + 1e-6
    assert r.images.max() > hi.max() - 1e-3  # some pixels reached the top of the range
    grey = start_images(2, (3, 4, 4), (0.5, 0.4, 0.3), (0.2, 0.2, 0.2), DreamConfig(start="grey"))
    assert torch.allclose(grey[:, :, 0, 0], torch.tensor([0.0, 0.5, 1.0]).expand(2, 3))


def test_penalties_pull_towards_smooth_small_images():
    cfg = DreamConfig(steps=15, jitter=0, blur_every=0, start="noise", noise_std=1.0, clamp=False)
    free = dream(cnns(1), [0], SHAPE, MEAN, STD, cfg)
    tv = dream(cnns(1), [0], SHAPE, MEAN, STD, cfg.replace(tv=0.02))
    l2 = dream(cnns(1), [0], SHAPE, MEAN, STD, cfg.replace(l2=0.2))
    assert _tv(tv.images) < _tv(free.images)
    assert l2.images.norm() < free.images.norm()


def test_target_scores_and_split_zoo():
    models = cnns(3)
    x = torch.randn(2, 3, *SHAPE)  # (S, B, C, H, W)
    logit, prob, margin, hit = target_scores(models, x, [0, 1, 2])
    assert logit.shape == prob.shape == margin.shape == hit.shape == (3, 2, 3)
    with torch.no_grad():
        z = models[1](x[1])
    assert torch.allclose(logit[1, 1], z[torch.arange(3), torch.tensor([0, 1, 2])], atol=1e-5)
    assert torch.equal(hit > 0, margin > 0)
    members, held = split_zoo(models, 2)
    assert len(members) == 2 and held == models[2:]


def test_errors_name_the_fix():
    m = TinyCNN().eval()
    with pytest.raises(ValueError, match="unknown class 3.*0 … 2"):
        dream(m, [0, 3], SHAPE, MEAN, STD, DreamConfig(steps=1))
    with pytest.raises(ValueError, match="unknown class -1"):
        dream(m, [-1], SHAPE, MEAN, STD, DreamConfig(steps=1))
    with pytest.raises(ValueError, match="empty model list"):
        dream([], [0], SHAPE, MEAN, STD)
    with pytest.raises(ValueError, match="no classes"):
        dream(m, [], SHAPE, MEAN, STD)
    with pytest.raises(ValueError, match="x0 has shape"):
        dream(m, [0, 1], SHAPE, MEAN, STD, x0=torch.zeros(1, *SHAPE))
    with pytest.raises(ValueError, match="not \\(C, H, W\\)"):
        dream(m, [0], (8, 8), MEAN, STD)
    with pytest.raises(ValueError, match="channels"):
        dream(m, [0], SHAPE, (0.5, 0.5), (0.2, 0.2))
    with pytest.raises(ValueError, match="unknown mode"):
        Ensemble([m], mode="fast")
    with pytest.raises(ValueError, match="at least one network must be held out"):
        split_zoo(cnns(2), 2)
    for bad in (dict(steps=0), dict(step_size=0), dict(snapshot_every=0), dict(jitter=-1), dict(start="white"),
                dict(tv=-1.0), dict(blur_sigma=0.0)):
        with pytest.raises(ValueError):
            DreamConfig(**bad)
    with pytest.raises(ValueError, match="one image per class"):
        target_scores([m], torch.zeros(2, *SHAPE), [0])


def test_figures():
    r = dream(cnns(2), [0, 1, 2], SHAPE, MEAN, STD, DreamConfig(steps=4, snapshot_every=2))
    snaps = (r.snapshots * 0.25 + 0.5).clamp(0, 1)
    fig = viz_dream.dream_slider_figure([snaps, snaps], ["a", "b"], ["0", "1", "2"], r.snapshot_steps)
    assert len(fig.data) == 1 and len(fig.frames) == 3
    assert fig.frames[0].data[0].source.startswith("data:image/png;base64,")
    assert fig.layout.sliders[0].active == 2
    with pytest.raises(ValueError, match="matching"):
        viz_dream.dream_slider_figure([snaps], ["a"], ["0", "1"], r.snapshot_steps)
    assert viz_dream.mosaic(np.zeros((2, 3, 1, 4, 5)), gap=1, scale=2).shape == (2 * 8 + 1, 3 * 10 + 2)
    tl = r.target_logits().T.numpy()
    cf = viz_dream.curves_figure({"own": (list(range(5)), tl, r.target_probs().T.numpy())}, reference=(1.0, 0.5))
    assert len(cf.data) == 5  # band + line in two panels, one legend entry for the reference
    pm = viz_dream.per_model_figure({"d": np.ones((3, 2))}, {"d": ["own", "other", "other"]})
    assert len(pm.data) == 3
    md = viz_dream.transfer_table({"x": {"logit": 12.345, "p": 0.5}}).data
    assert "| x | 12.3 | 0.500 |" in md
