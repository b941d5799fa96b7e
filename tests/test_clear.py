"""CLEAR maps (Kumar et al., CVPRW 2017): known answers on a hand-built model, rendering, batching, statistics."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from helpers import clear
from helpers.models import build_model

H, W, K = 6, 10, 10


class Stripes(nn.Module):
    """Class k's logit is the sum of the pixels of column k (through a ReLU), so its response lives in column k."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(H * W, K, bias=False)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(K, K, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.eye(K).repeat_interleave(1, 1).repeat(1, H))  # pixel (h, w) -> class w
            self.fc2.weight.copy_(torch.eye(K))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(torch.flatten(x, 1))))


LAYOUT = torch.arange(W).expand(H, W)  # the class that owns each pixel


@pytest.fixture
def stripes() -> nn.Module:
    return Stripes().eval()


@pytest.mark.parametrize("backend", list(clear.BACKENDS))
def test_dominant_class_is_the_region_layout(stripes, backend):
    x = torch.rand(3, 1, H, W) + 0.5
    r = clear.class_responses(stripes, x, backend=backend)
    assert r.shape == (3, K, H, W)
    assert torch.equal(clear.dominant_class(r), LAYOUT.expand(3, H, W))
    expected = x[:, 0] if backend == "gradient_x_input" else torch.ones(3, H, W)
    torch.testing.assert_close(clear.dominant_response(r), expected)


def test_render_hue_maps_back_to_the_class():
    gen = torch.Generator().manual_seed(0)
    cls = torch.randint(0, K, (2, 8, 8), generator=gen)
    resp = torch.rand(2, 8, 8, generator=gen) * 2 - 0.5  # some pixels negative → black
    rgb = clear.render(cls, resp, norm="maxabs")
    assert rgb.shape == (2, 8, 8, 3) and rgb.min() >= 0 and rgb.max() <= 1
    back = clear.palette_index(rgb)
    positive = resp.numpy() > 0
    assert np.array_equal(back[positive], cls.numpy()[positive])
    assert (back[~positive] == -1).all() and (rgb[~positive] == 0).all()
    brightest = resp.flatten(1).argmax(1)  # the strongest pixel of each map has its class's full colour
    for i in range(2):
        p = divmod(int(brightest[i]), 8)
        np.testing.assert_allclose(rgb[i, p[0], p[1]], clear.palette_rgb()[cls[i, p[0], p[1]]], atol=1e-6)


def test_palette_has_ten_distinct_hues():
    colours = clear.palette_rgb()
    assert len(colours) == 10
    assert np.array_equal(clear.palette_index(colours * 0.4), np.arange(10))


def test_batched_equals_unbatched_and_chunking():
    torch.manual_seed(0)
    model = build_model("lenet", 1, 10).eval()
    x = torch.randn(3, 1, 28, 28)
    full = clear.class_responses(model, x)
    one_by_one = torch.cat([clear.class_responses(model, x[i:i + 1]) for i in range(3)])
    chunked = clear.class_responses(model, x, batch_size=7)  # fewer rows than classes: one image per pass
    torch.testing.assert_close(full, one_by_one, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(full, chunked, rtol=1e-4, atol=1e-6)


def test_marginalized_over_identical_models_is_the_single_model(stripes):
    x = torch.rand(2, 1, H, W)
    single = clear.class_responses(stripes, x)
    twins = [stripes, copy.deepcopy(stripes), copy.deepcopy(stripes)]
    torch.testing.assert_close(clear.marginalized_responses(twins, x), single)
    per_model = clear.per_model_responses(twins, x)
    torch.testing.assert_close(clear.running_mean(per_model)[-1], single)


def test_marginalized_is_the_mean_before_the_argmax(stripes):
    other = copy.deepcopy(stripes)
    with torch.no_grad():
        other.fc1.weight.mul_(3)
    x = torch.ones(1, 1, H, W)
    mean = clear.marginalized_responses([stripes, other], x)
    torch.testing.assert_close(mean, 2 * clear.class_responses(stripes, x))
    torch.testing.assert_close(clear.marginalized_responses([stripes, other], x, n_models=1),
                               clear.class_responses(stripes, x))


def _constructed() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two images, 3 classes, 4 pixels. Image 0: class 0 holds 3/4 of the positive mass, class 1 holds 1/4;
    predicted 1 (wrong, true 0), second-best 0. Image 1: class 2 holds everything; predicted 2 = true."""
    r = torch.full((2, 3, 1, 4), -1.0)
    r[0, 0, 0, 0], r[0, 0, 0, 1], r[0, 1, 0, 2] = 2.0, 1.0, 1.0  # pixel 3: no positive response
    r[1, 2, 0] = torch.tensor([1.0, 1.0, 1.0, 1.0])
    logits = torch.tensor([[2.0, 3.0, 0.0], [0.0, 1.0, 5.0]])
    return r, logits, torch.tensor([0, 2])


def test_stats_on_a_constructed_case():
    s = clear.image_stats(*_constructed())
    torch.testing.assert_close(s.shares, torch.tensor([[0.75, 0.25, 0.0], [0.0, 0.0, 1.0]]))
    assert s.pred.tolist() == [1, 2] and s.second.tolist() == [0, 1] and s.top.tolist() == [0, 2]
    assert s.correct.tolist() == [False, True]
    correct, wrong = clear.summarize(s)
    assert correct["n"] == 1 and correct["share_pred"] == 1.0 and correct["top_is_pred"] == 1.0
    assert wrong["n"] == 1 and wrong["share_pred"] == 0.25 and wrong["share_true"] == 0.75
    assert wrong["share_second"] == 0.75 and wrong["top_is_second"] == 1.0 and wrong["top_is_pred"] == 0.0
    conf = clear.dominance_confusion(s)
    assert conf.sum() == 1 and conf[0, 0] == 1
    assert clear.dominance_confusion(s, wrong_only=False).sum() == 2


def test_zoo_stats_single_and_marginalized(stripes):
    x = torch.rand(4, 1, H, W) + 0.5
    y = torch.tensor([0, 1, 2, 3])
    single, marg = clear.zoo_stats([stripes, copy.deepcopy(stripes)], x, y)
    assert single.shares.shape == (2, 4, K) and marg.shares.shape == (4, K)
    torch.testing.assert_close(single.shares[0], marg.shares)
    rows = clear.summarize(single)
    assert sum(r["n"] for r in rows) == 8


def test_errors(stripes):
    x = torch.rand(2, 1, H, W)
    with pytest.raises(ValueError, match="unknown CLEAR backend"):
        clear.class_responses(stripes, x, backend="lrp")
    with pytest.raises(ValueError, match="unsqueeze"):
        clear.class_responses(stripes, x[0])
    with pytest.raises(ValueError, match="n_models=5"):
        clear.marginalized_responses([stripes], x, n_models=5)
    with pytest.raises(ValueError, match="non-empty"):
        clear.marginalized_responses([], x)
    with pytest.raises(ValueError, match="model.eval"):
        clear.class_responses(Stripes().train(), x)
    with pytest.raises(ValueError, match="at least 3 axes"):
        clear.dominant_class(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="one shape"):
        clear.render(torch.zeros(4, 4, dtype=torch.long), torch.zeros(4, 5))
    with pytest.raises(ValueError, match="integer"):
        clear.render(torch.zeros(4, 4), torch.zeros(4, 4))
    with pytest.raises(ValueError, match="at least 12 colours"):
        clear.render(torch.full((4, 4), 11), torch.ones(4, 4))
    r, logits, y = _constructed()
    with pytest.raises(ValueError, match="logits"):
        clear.image_stats(r, logits[:, :2], y)
    with pytest.raises(ValueError, match="one label per image"):
        clear.image_stats(r, logits, y[:1])


def test_selection_helpers():
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    pred = torch.tensor([0, 1, 0, 3, 0, 5])  # images 2 and 4 wrong
    ok, bad = clear.select_examples(pred, labels, n_correct=2, n_wrong=5)
    assert len(ok) == 2 and set(ok.tolist()) <= {0, 1, 3, 5} and sorted(bad.tolist()) == [2, 4]
    idx = clear.stats_subset(torch.stack([pred, labels]), labels, n_random=1)
    assert {2, 4} <= set(idx.tolist()) and len(idx) in (2, 3) and idx.tolist() == sorted(idx.tolist())
    assert len(clear.stats_subset(torch.stack([pred, labels]), labels, n_random=0, max_wrong=1)) == 1
    with pytest.raises(ValueError, match="one model's predictions"):
        clear.select_examples(pred[None], labels, 1, 1)
    with pytest.raises(ValueError, match="one entry per model"):
        clear.running_mean(torch.zeros(3))


def test_palette_for_many_classes_renders_and_inverts():
    from helpers import clear as clear_mod

    assert clear_mod.palette_for(10) == clear_mod.PALETTE
    pal = clear_mod.palette_for(25)
    assert len(set(pal)) == 26
    classes = torch.arange(25).view(5, 5)
    rgb = clear_mod.render(classes, torch.ones(5, 5), pal, norm="maxabs")
    assert (clear_mod.palette_index(rgb, pal) == classes.numpy()).all()
    with pytest.raises(ValueError, match="at most 26 colours"):
        clear_mod.palette_for(30)
