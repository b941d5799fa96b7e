"""CLEAR maps (Kumar et al., CVPRW 2017): known answers on hand-built models, the unit and response starts, negative
focus, marginalization, rendering, batching and the statistics with their multi-bootstrap intervals."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from helpers.attribution import clear
from helpers.chapters import ch05_clear as ch05
from helpers.evaluation import clear_stats
from helpers.zoo import outputs
from helpers.evaluation.intervals import Interval, percentile
from helpers.zoo.architectures import build_model
from helpers.zoo.outputs import MeanLogit

H, W, K = 6, 10, 10


class Stripes(nn.Module):
    """Class k's logit is the sum of the pixels of column k (through a ReLU), so its response lives in column k."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(H * W, K, bias=False)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(K, K, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.eye(K).repeat(1, H))  # pixel (h, w) -> class w
            self.fc2.weight.copy_(torch.eye(K))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(torch.flatten(x, 1))))


class Tiny(nn.Module):
    """2×2 image → Linear(4, 3) → ReLU → Linear(3, 2): small enough to back-project by hand."""

    W1 = torch.tensor([[1.0, -1.0, 0.0, 2.0], [0.0, 1.0, 1.0, -1.0], [2.0, 0.0, -1.0, 1.0]])
    W2 = torch.tensor([[1.0, -2.0, 0.5], [-1.0, 1.0, 1.0]])

    def __init__(self, b2: tuple[float, float] = (0.0, 0.0)) -> None:
        super().__init__()
        self.fc1, self.relu, self.fc2 = nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2)
        with torch.no_grad():
            self.fc1.weight.copy_(self.W1)
            self.fc2.weight.copy_(self.W2)
            self.fc2.bias.copy_(torch.tensor(b2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(torch.flatten(x, 1))))


LAYOUT = torch.arange(W).expand(H, W)  # the class that owns each pixel


@pytest.fixture
def stripes() -> nn.Module:
    return Stripes().eval()


# --- back-projection: known answers ------------------------------------------------------------------------------


def test_tiny_net_response_maps_are_the_hand_computed_back_projections():
    x = torch.tensor([[[[1.0, 2.0], [0.5, 1.0]]]])
    net = Tiny(b2=(2.0, -4.0)).eval()
    flat = x.flatten()
    z = Tiny.W2 @ torch.relu(Tiny.W1 @ flat) + torch.tensor([2.0, -4.0])
    # deconvnet: transposed weights, ReLU on the backward signal (not the forward mask)
    unit = torch.stack([Tiny.W1.T @ torch.relu(Tiny.W2[k]) for k in range(2)]).reshape(1, 2, 2, 2)
    torch.testing.assert_close(clear.class_responses(net, x, start="unit"), unit)
    expected = unit * z.clamp_min(0).view(1, 2, 1, 1)
    torch.testing.assert_close(clear.class_responses(net, x), expected)
    assert z[0] > 0 and z[1] <= 0  # class 1 is "off": its response map is zero
    assert (clear.class_responses(net, x)[0, 1] == 0).all()


@pytest.mark.parametrize("backend", list(clear.BACKENDS))
def test_dominant_class_is_the_region_layout(stripes, backend):
    x = torch.rand(3, 1, H, W) + 0.5
    z = x[:, 0].sum(1)  # (3, W): class k's logit = the sum of column k
    base = x[:, 0] if backend == "gradient_x_input" else torch.ones(3, H, W)
    for start, scale in (("unit", torch.ones(3, H, W)), ("response", z[:, None, :].expand(3, H, W))):
        r = clear.class_responses(stripes, x, backend=backend, start=start)
        assert r.shape == (3, K, H, W)
        assert torch.equal(clear.dominant_class(r), LAYOUT.expand(3, H, W))
        torch.testing.assert_close(clear.dominant_response(r), base * scale)


def test_unit_and_response_differ_by_the_positive_response():
    torch.manual_seed(0)
    model = build_model("lenet", 1, 10).eval()
    x = torch.randn(4, 1, 28, 28)
    z = model(x).detach()
    unit, resp = clear.class_responses(model, x, start="unit"), clear.class_responses(model, x, start="response")
    on = z > 0
    assert on.any() and (~on).any()
    torch.testing.assert_close(resp[on], unit[on] * z[on][:, None, None])
    assert (resp[~on] == 0).all()
    torch.testing.assert_close(clear.scale_responses(unit, z, "response"), resp)
    assert clear.scale_responses(unit, z, "unit") is unit


@pytest.mark.parametrize("arch,channels,size", [("lenet", 1, 28), ("resnet18", 3, 16)])  # resnet: ReLU after a sum
def test_fast_deconvolution_equals_captum(arch, channels, size):
    torch.manual_seed(1)
    model = build_model(arch, channels, 10, image_size=size).eval()
    x = torch.randn(2, channels, size, size)
    rows = x.repeat_interleave(10, 0)
    captum = clear._deconvolution(model, rows, torch.arange(10).repeat(2)).sum(1).reshape(2, 10, size, size)
    torch.testing.assert_close(clear.class_responses(model, x, start="unit"), captum, rtol=1e-4, atol=1e-6)
    assert not any(m._backward_hooks for m in model.modules())  # the hooks are removed again


def test_batched_equals_unbatched_and_chunking():
    torch.manual_seed(0)
    model = build_model("lenet", 1, 10).eval()
    x = torch.randn(3, 1, 28, 28)
    for backend in clear.BACKENDS:
        full = clear.class_responses(model, x, backend)
        one_by_one = torch.cat([clear.class_responses(model, x[i:i + 1], backend) for i in range(3)])
        chunked = clear.class_responses(model, x, backend, batch_size=7)  # fewer rows than classes
        torch.testing.assert_close(full, one_by_one, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(full, chunked, rtol=1e-4, atol=1e-6)


# --- negative focus ------------------------------------------------------------------------------------------------


def test_negative_focus_picks_the_most_negative_class():
    r = torch.tensor([[[1.0, -1.0]], [[-3.0, 2.0]], [[0.5, -2.0]]])  # (K=3, H=1, W=2)
    cls, strength = clear.focus(r, "negative")
    assert cls.tolist() == [[1, 2]] and strength.tolist() == [[3.0, 2.0]]
    assert clear.negative_class(r).tolist() == [[1, 2]]
    assert clear.negative_response(r).tolist() == [[-3.0, -2.0]]
    pos_cls, pos = clear.focus(r)
    assert pos_cls.tolist() == [[0, 1]] and pos.tolist() == [[1.0, 2.0]]
    with pytest.raises(ValueError, match="positive.*negative"):
        clear.focus(r, "both")


def test_negative_focus_of_a_model_follows_the_scaled_maps():
    x = torch.tensor([[[[1.0, 2.0], [0.5, 1.0]]]])
    net = Tiny(b2=(2.0, 20.0)).eval()  # both classes on
    r = clear.class_responses(net, x)
    z = net(x).detach()[0]
    assert (z > 0).all()
    maps = r[0].flatten(1)
    assert clear.negative_class(r)[0].flatten().tolist() == maps.argmin(0).tolist()
    assert torch.equal(clear.negative_response(r)[0].flatten(), maps.amin(0))


def test_ties_go_to_the_first_class_as_argmax():
    r = torch.zeros(2, 4, 3, 3)
    r[:, 2] = 1.0
    r[:, 3] = 1.0
    assert (clear.dominant_class(r) == 2).all()
    assert (clear.negative_class(r) == 0).all()


# --- marginalization ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("start", list(clear.STARTS))
@pytest.mark.parametrize("how", list(clear.MARGINALIZATIONS))
def test_marginalized_over_identical_models_is_the_single_model(stripes, start, how):
    x = torch.rand(2, 1, H, W)
    single = clear.class_responses(stripes, x, start=start)
    twins = [stripes, copy.deepcopy(stripes), copy.deepcopy(stripes)]
    torch.testing.assert_close(clear.marginalized_responses(twins, x, start=start, how=how), single)
    unit = clear.per_model_responses(twins, x, start="unit")
    run, z = clear.running_marginalized(unit, outputs.zoo_logits(twins, x), start, how)
    torch.testing.assert_close(run[-1], single)
    torch.testing.assert_close(run[0], single)


def _two_models() -> tuple[nn.Module, nn.Module]:
    a, b = Tiny(b2=(1.0, 0.0)).eval(), Tiny(b2=(1.0, 0.0)).eval()
    with torch.no_grad():
        b.fc1.weight.mul_(torch.tensor([[0.5], [2.0], [1.0]]))  # other features, other logits
        b.fc2.bias.copy_(torch.tensor([4.0, 1.0]))
    return a, b


def test_unit_start_marginal_is_the_ensembles_deconvolution():
    a, b = _two_models()
    x = torch.tensor([[[[1.0, 2.0], [0.5, 1.0]]], [[[0.2, 0.1], [1.0, 3.0]]]])
    ens = MeanLogit([a, b]).eval()
    marg = clear.marginalized_responses([a, b], x, start="unit")
    torch.testing.assert_close(marg, clear.class_responses(ens, x, start="unit"))
    torch.testing.assert_close(marg, clear.marginalized_responses([a, b], x, start="unit", how="ensemble"))


def test_response_start_marginals_which_identity_holds():
    """mean_m z_k^(m)+ D_k^(m) (explanations) is not the ensemble's response map z̄_k+ · mean_m D_k^(m)."""
    a, b = _two_models()
    x = torch.tensor([[[[1.0, 2.0], [0.5, 1.0]]]])
    ens = MeanLogit([a, b]).eval()
    explanations = clear.marginalized_responses([a, b], x)
    ensemble = clear.marginalized_responses([a, b], x, how="ensemble")
    torch.testing.assert_close(ensemble, clear.class_responses(ens, x))  # the ensemble's own response map
    per_model = torch.stack([clear.class_responses(m, x) for m in (a, b)])
    torch.testing.assert_close(explanations, per_model.mean(0))
    assert not torch.allclose(explanations, ensemble)
    # by hand: D and z of each model
    d = torch.stack([clear.class_responses(m, x, start="unit") for m in (a, b)])
    z = torch.stack([m(x).detach() for m in (a, b)])
    torch.testing.assert_close(ensemble, d.mean(0) * z.mean(0).clamp_min(0)[..., None, None])


def test_marginalize_n_models_and_errors(stripes):
    other = copy.deepcopy(stripes)
    with torch.no_grad():
        other.fc1.weight.mul_(3)
    x = torch.ones(1, 1, H, W)
    mean = clear.marginalized_responses([stripes, other], x, start="unit")
    torch.testing.assert_close(mean, 2 * clear.class_responses(stripes, x, start="unit"))
    torch.testing.assert_close(clear.marginalized_responses([stripes, other], x, n_models=1),
                               clear.class_responses(stripes, x))


# --- rendering ---------------------------------------------------------------------------------------------------


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


def test_render_focus_negative_lights_the_negative_pixels():
    r = torch.zeros(1, 3, 2, 2)
    r[0, 1, 0, 0] = -2.0  # negative focus of class 1 at (0, 0)
    r[0, 2, 1, 1] = 1.0  # positive focus of class 2 at (1, 1)
    neg = clear.render_focus(r, sign="negative", norm="maxabs")
    pos = clear.render_focus(r, norm="maxabs")
    assert clear.palette_index(neg)[0].tolist() == [[1, -1], [-1, -1]]
    assert clear.palette_index(pos)[0].tolist() == [[-1, -1], [-1, 2]]


def test_palette_has_ten_distinct_hues():
    colours = clear.palette_rgb()
    assert len(colours) == 10
    assert np.array_equal(clear.palette_index(colours * 0.4), np.arange(10))


def test_palette_for_many_classes_renders_and_inverts():
    assert clear.palette_for(10) == clear.PALETTE
    pal = clear.palette_for(25)
    assert len(set(pal)) == 26
    classes = torch.arange(25).view(5, 5)
    rgb = clear.render(classes, torch.ones(5, 5), pal, norm="maxabs")
    assert (clear.palette_index(rgb, pal) == classes.numpy()).all()
    with pytest.raises(ValueError, match="at most 26 colours"):
        clear.palette_for(30)


# --- per-image statistics ----------------------------------------------------------------------------------------


def _constructed() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two images, 3 classes, 4 pixels. Image 0: class 0 holds 3/4 of the positive mass, class 1 holds 1/4;
    predicted 1 (wrong, true 0), second-best 0; every pixel has a negative response of −1 for the classes that do
    not dominate it (class 2's −1 at pixel 3 is the only negative there). Image 1: class 2 holds everything;
    predicted 2 = true."""
    r = torch.full((2, 3, 1, 4), -1.0)
    r[0, 0, 0, 0], r[0, 0, 0, 1], r[0, 1, 0, 2] = 2.0, 1.0, 1.0  # pixel 3: no positive response
    r[0, 1, 0, 3] = -4.0  # the strongest negative focus: class 1 at pixel 3
    r[1, 2, 0] = torch.tensor([1.0, 1.0, 1.0, 1.0])
    logits = torch.tensor([[2.0, 3.0, 0.0], [0.0, 1.0, 5.0]])
    return r, logits, torch.tensor([0, 2])


def test_stats_on_a_constructed_case():
    s = clear_stats.image_stats(*_constructed())
    torch.testing.assert_close(s.shares, torch.tensor([[0.75, 0.25, 0.0], [0.0, 0.0, 1.0]]))
    torch.testing.assert_close(s.pixel_shares, torch.tensor([[2 / 3, 1 / 3, 0.0], [0.0, 0.0, 1.0]]))
    # negative focus, image 0: pixels 0, 1 → class 1 (first of the −1s), pixel 2 → class 0, pixel 3 → class 1 (−4)
    torch.testing.assert_close(s.neg_shares[0], torch.tensor([1 / 7, 6 / 7, 0.0]))
    assert s.neg_top.tolist() == [1, 0]
    assert s.pred.tolist() == [1, 2] and s.second.tolist() == [0, 1] and s.top.tolist() == [0, 2]
    assert s.correct.tolist() == [False, True]
    assert s.strongest.tolist() == [1, 0]  # Σ|R|: image 0: 5, 7, 4; image 1: a tie of 4s → the first class
    torch.testing.assert_close(s.confidence, torch.softmax(_constructed()[1], -1).amax(-1))
    # neighbours (1×4 row, 3 pairs): image 0 pixels 0-1 same class (both positive), 1-2 differ, 2-3 not both positive
    torch.testing.assert_close(s.smoothness, torch.tensor([0.5, 1.0]))
    conf = clear_stats.dominance_confusion(s)
    assert conf.sum() == 1 and conf[0, 0] == 1
    assert clear_stats.dominance_confusion(s, wrong_only=False).sum() == 2


def test_a_map_without_positive_focus_has_no_top_class():
    r = -torch.rand(1, 3, 2, 2)
    s = clear_stats.image_stats(r, torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([0]))
    assert s.top.tolist() == [-1] and s.shares.sum() == 0
    assert torch.isnan(s.smoothness).all()
    blank = clear_stats.image_stats(torch.zeros(1, 3, 2, 2), torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([0]))
    assert blank.strongest.tolist() == [-1] and blank.top.tolist() == [-1] and blank.neg_top.tolist() == [-1]


def test_class_disagreement_known_answer():
    a = torch.zeros(2, 1, 4)
    a[0, 0] = torch.tensor([1.0, 1.0, 0.0, 0.0])
    a[1, 0] = torch.tensor([0.0, 0.0, 1.0, 0.0])
    b = a.clone()
    b[1, 0, 0] = 2.0  # pixel 0 changes class; pixel 3 has no focus in either
    assert float(clear_stats.class_disagreement(a, b)) == pytest.approx(1 / 3)
    assert torch.isnan(clear_stats.class_disagreement(-a.abs(), -a.abs()))


def test_neighbour_agreement_known_answer():
    dom = torch.tensor([[0, 0, 1], [0, 2, 1]])
    mask = torch.ones(2, 3, dtype=torch.bool)
    # horizontal pairs: (0,0) same, (0,1) differ, (0,2) differ, (2,1) differ; vertical: 0-0 same, 0-2 differ, 1-1 same
    assert float(clear_stats.neighbour_agreement(dom, mask)) == pytest.approx(3 / 7)
    mask[1, 1] = False  # drops 3 pairs that touch pixel (1, 1): (0,2) h, (2,1) h, (0,2) v
    assert float(clear_stats.neighbour_agreement(dom, mask)) == pytest.approx(3 / 4)


def test_seed_agreement_known_answer():
    dom = torch.tensor([[[0, 1]], [[0, 2]], [[1, 2]]])  # 3 models, 1×2 pixels
    mask = torch.ones_like(dom, dtype=torch.bool)
    a = clear_stats.seed_agreement(dom, mask, 3)
    # model 0: pixel 0 agrees with model 1, pixel 1 with nobody → 1/4; model 1: 1 + 1 → 2/4; model 2: 0 + 1 → 1/4
    torch.testing.assert_close(a, torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64))
    mask[2, 0, 1] = False  # model 2 has no focus at pixel 1
    torch.testing.assert_close(clear_stats.seed_agreement(dom, mask, 3), torch.tensor([1 / 3, 1 / 3, 0.0],
                                                                                dtype=torch.float64))


def test_class_correlation_known_answer():
    base = torch.rand(5, 5)
    same = base.expand(4, 5, 5)
    assert float(clear_stats.class_correlation(same)) == pytest.approx(1.0)
    flipped = torch.stack([base, -base])
    assert float(clear_stats.class_correlation(flipped)) == pytest.approx(-1.0)


# --- zoo statistics and intervals ----------------------------------------------------------------------------------


def test_zoo_stats_of_identical_models(stripes):
    x = torch.rand(4, 1, H, W) + 0.5
    y = torch.tensor([0, 1, 2, 3])
    zs, corr = clear_stats.zoo_stats([stripes, copy.deepcopy(stripes)], x, y, n_boot=7)
    assert set(zs) == {"response", "unit"} and corr.shape == (2, 4)
    for z in zs.values():
        assert z.single.shares.shape == (2, 4, K) and z.marginalized.shares.shape == (4, K)
        assert z.boot.shares.shape == (7, 4, K) and z.weights.shape == (7, 2) and z.image_weights.shape == (7, 4)
        torch.testing.assert_close(z.single.shares[0], z.marginalized.shares)
        torch.testing.assert_close(z.boot.shares, z.marginalized.shares.expand(7, 4, K))  # any draw: same map
        assert (z.agreement == 1).all()  # the twins agree everywhere
        assert (z.how_disagreement == 0).all()
    assert (zs["unit"].weights.sum(1) == 2).all() and (zs["unit"].image_weights.sum(1) == 4).all()


def test_the_two_marginalizations_agree_only_for_the_unit_start():
    torch.manual_seed(0)
    models = [build_model("lenet", 1, 10).eval() for _ in range(3)]
    x, y = torch.randn(6, 1, 28, 28), torch.randint(0, 10, (6,))
    zs, _ = clear_stats.zoo_stats(models, x, y, n_boot=3)
    assert (zs["unit"].how_disagreement == 0).all()
    assert (zs["response"].how_disagreement > 0).any()
    unit, resp = clear_stats.summarize(zs["unit"], ["top: predicted"]), clear_stats.summarize(zs["response"], ["top: predicted"])
    phrases = ch05.reading_comparisons(unit, resp)
    assert set(phrases) == {f"ur_{s}_{g}_top_pred" for s in "sm" for g in ("all", "ok", "bad")}
    d = clear_stats.difference(unit, ("single", "all", "top: predicted"), resp)
    assert d.point == pytest.approx(resp.points[("single", "all", "top: predicted")]
                                    - unit.points[("single", "all", "top: predicted")])


def test_zoo_stats_chunks_agree_with_one_pass():
    torch.manual_seed(0)
    models = [build_model("lenet", 1, 10).eval() for _ in range(3)]
    x, y = torch.randn(5, 1, 28, 28), torch.randint(0, 10, (5,))
    one, _ = clear_stats.zoo_stats(models, x, y, n_boot=4, starts=["response"])
    many, _ = clear_stats.zoo_stats(models, x, y, n_boot=4, starts=["response"], memory=1)  # one image per chunk
    for f in ("shares", "top", "smoothness"):
        torch.testing.assert_close(getattr(one["response"].boot, f), getattr(many["response"].boot, f),
                                   equal_nan=True)
    torch.testing.assert_close(one["response"].agreement, many["response"].agreement, equal_nan=True)


def test_single_replicates_known_answer():
    values = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, float("nan")]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    w = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # draw 0: model 0 twice; draw 1: both models
    u = torch.tensor([[1.0, 1.0, 1.0], [3.0, 0.0, 0.0]])  # draw 1: image 0 three times
    point, reps = clear_stats.single_replicates(values, mask, w, u)
    assert point == pytest.approx(2 / 4)  # the NaN and the unselected entry are left out
    assert reps.tolist() == pytest.approx([(2 * 1 + 2 * 0) / 4, (3 * 1 + 3 * 0) / 6])


def test_marginal_replicates_known_answer():
    values, mask = torch.tensor([1.0, 0.0, 1.0]), torch.tensor([True, True, False])
    boot_values = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    boot_mask = torch.tensor([[True, False, True], [True, True, True]])
    u = torch.tensor([[1.0, 1.0, 2.0], [0.0, 3.0, 0.0]])
    point, reps = clear_stats.marginal_replicates(values, mask, boot_values, boot_mask, u)
    raw = torch.tensor([1 / 3, 0.0], dtype=torch.float64)  # replicate means before the bias shift
    assert point == 0.5 and reps.tolist() == pytest.approx((raw - (raw.mean() - 0.5)).tolist())
    assert float(reps.mean()) == pytest.approx(point)  # centred on the estimate, spread kept


def test_marginal_interval_is_centred_on_a_noisier_bootstrap():
    """Drawn zoos repeat models, so their mean maps are noisier: the replicates' offset is removed."""
    gen = torch.Generator().manual_seed(0)
    values, mask = torch.full((50,), 0.6), torch.ones(50, dtype=torch.bool)
    boot = 0.5 + 0.01 * torch.randn(400, 50, generator=gen)  # every draw lower by 0.1
    iv = percentile(*clear_stats.marginal_replicates(values, mask, boot, torch.ones(400, 50, dtype=torch.bool),
                                                      torch.ones(400, 50)))
    assert iv.low < 0.6 < iv.high and iv.high - iv.low < 0.01
    edge = percentile(*clear_stats.marginal_replicates(torch.zeros(50), mask, boot, torch.ones(400, 50, dtype=torch.bool),
                                                        torch.ones(400, 50)))
    assert edge.low == 0.0  # a share stays a share


def test_summary_rows_keys_and_comparisons():
    r, logits, y = _constructed()
    stats = clear_stats.image_stats(r[None].expand(2, -1, -1, -1, -1), logits[None].expand(2, -1, -1), y)
    zs = clear_stats.ZooStats(stats, clear_stats.image_stats(r, logits, y), clear_stats.stack_stats([clear_stats.image_stats(r, logits, y)] * 3),
                        torch.ones(3, 2), torch.ones(3, 2), torch.ones(2, 2), torch.zeros(2))
    summary = clear_stats.summarize(zs, ["mass: predicted", "top: runner-up"])
    assert summary.counts == {("single", "all"): 4, ("marginalized", "all"): 2, ("single", "correct"): 2,
                              ("marginalized", "correct"): 1, ("single", "wrong"): 2, ("marginalized", "wrong"): 1}
    iv = summary.interval("single", "wrong", "mass: predicted")
    assert (iv.point, iv.low, iv.high) == pytest.approx((0.25, 0.25, 0.25))
    values = ch05.prose_values(summary)
    assert values["s_bad_mass_pred"] == "25.0% [25.0%, 25.0%]" and values["m_ok_n"] == 1
    phrases = ch05.comparisons(summary)
    assert phrases["d_bad_mass_pred"] == "+0.0 points [+0.0, +0.0] (no clear change)"
    assert "s_bad_second_vs_pred_top" not in phrases  # "top: predicted" was not summarized
    assert len(summary.rows()) == 6
    with pytest.raises(KeyError, match="no estimate"):
        summary.interval("single", "wrong", "smoothness")


def test_interval_words_and_text():
    assert clear_stats.interval_text(Interval(0.136, 0.121, 0.15)) == "13.6% [12.1%, 15.0%]"
    assert clear_stats.interval_text(Interval(float("nan"), float("nan"), float("nan"))) == "–"
    assert clear_stats.interval_text(Interval(0.5, float("nan"), float("nan"))) == "50.0%"
    assert ch05.contrast(Interval(0.02, 0.01, 0.03), "up", "down", "same") == "+2.0 points [+1.0, +3.0] (up)"
    assert ch05.contrast(Interval(-0.02, -0.03, -0.01), "up", "down", "same").endswith("(down)")
    assert ch05.contrast(Interval(0.02, -0.01, 0.03), "up", "down", "same").endswith("(same)")
    assert ch05.contrast(Interval(float("nan"), float("nan"), float("nan"))).startswith("not computable")
    assert ch05.key("marginalized", "confident correct", "negative top: predicted") == "m_conf_negtop_pred"


def test_bootstrap_weights_and_percentile():
    w = clear_stats.bootstrap_weights(5, 100, seed=3)
    assert w.shape == (100, 5) and (w.sum(1) == 5).all() and torch.equal(w, clear_stats.bootstrap_weights(5, 100, seed=3))
    iv = percentile(0.5, torch.linspace(0, 1, 101), level=0.9)
    assert (iv.low, iv.high) == pytest.approx((0.05, 0.95))
    assert percentile(0.5, torch.tensor([float("nan")])).low != percentile(0.5, torch.zeros(1)).low


def test_frequent_top():
    conf = torch.zeros(4, 4, dtype=torch.long)
    conf[2, 0], conf[2, 1], conf[0, 3], conf[1, 1], conf[3, 0] = 5, 1, 2, 1, 1
    classes, share, rare = clear_stats.frequent_top(conf, n=2)
    assert classes == [2, 0] and share == pytest.approx(8 / 10) and rare in (1, 3)


# --- selection and errors ----------------------------------------------------------------------------------------


def test_selection_helpers():
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    pred = torch.tensor([0, 1, 0, 3, 0, 5])  # images 2 and 4 wrong
    ok, bad = clear_stats.select_examples(pred, labels, n_correct=2, n_wrong=5)
    assert len(ok) == 2 and set(ok.tolist()) <= {0, 1, 3, 5} and sorted(bad.tolist()) == [2, 4]
    sub = clear_stats.random_subset(10, 4, seed=1)
    assert len(sub) == 4 and sub.tolist() == sorted(set(sub.tolist())) and torch.equal(sub, clear_stats.random_subset(10, 4, 1))
    assert torch.equal(clear_stats.random_subset(3, None), torch.arange(3))
    with pytest.raises(ValueError, match="one model's predictions"):
        clear_stats.select_examples(pred[None], labels, 1, 1)
    with pytest.raises(ValueError, match="one entry per model"):
        clear.running_mean(torch.zeros(3))


def test_errors(stripes):
    x = torch.rand(2, 1, H, W)
    with pytest.raises(ValueError, match="unknown CLEAR backend"):
        clear.class_responses(stripes, x, backend="lrp")
    with pytest.raises(ValueError, match="unknown start"):
        clear.class_responses(stripes, x, start="logit")
    with pytest.raises(ValueError, match="unknown marginalization"):
        clear.marginalized_responses([stripes], x, how="median")
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
    with pytest.raises(ValueError, match="one logit per map"):
        clear.scale_responses(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4))
    r, logits, y = _constructed()
    with pytest.raises(ValueError, match="logits"):
        clear_stats.image_stats(r, logits[:, :2], y)
    with pytest.raises(ValueError, match="one label per image"):
        clear_stats.image_stats(r, logits, y[:1])


def test_render_shows_weak_maps_at_full_colour():
    """The default brightness divides R̂ by its 90th percentile over the pixels with focus: the strongest tenth of a
    heavy-tailed map is at full colour (the 99th percentile over all pixels left most of the stroke dim)."""
    resp = torch.zeros(20, 20)
    resp[2:18, 2:18] = torch.logspace(-3, 0, 256).reshape(16, 16)  # heavy-tailed focus, black border
    cls = torch.zeros(20, 20, dtype=torch.long)
    bright = clear.render(cls, resp).max(-1)
    dim = clear.render(cls, resp, norm="quantile", q=0.99).max(-1)
    inside = resp > 0
    assert (bright[inside.numpy()] >= 0.999 * clear.palette_rgb()[0].max()).mean() == pytest.approx(0.1, abs=0.01)
    assert (dim[inside.numpy()] >= 0.999 * clear.palette_rgb()[0].max()).mean() < 0.03
    assert (bright[~inside.numpy()] == 0).all() and (bright >= dim - 1e-6).all()
    with pytest.raises(ValueError, match="gamma"):
        clear.render(cls, resp, gamma=0)
