import numpy as np
import pytest
import torch
from torch import nn

from helpers.attribution import perturbation as pmethods
from helpers.chapters import ch06_baselines as ch06
from helpers.evaluation import baselines
from helpers.evaluation import faithfulness as faith
from helpers.evaluation import intervals
from helpers.evaluation import ranks
from helpers.evaluation import sweeps
from helpers.figures import perturbation as pt_figures


class Linear(nn.Module):
    """Logit 0 is w·x (no bias), logit 1 is 0: with a zero baseline the exact attribution is w ⊙ x."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        z = (x * self.w).flatten(1).sum(1)
        return torch.stack([z, torch.zeros_like(z)], 1)


class OnePatch(nn.Module):
    """Looks only at the 7×7 patch at rows 14–20, cols 0–6: logit 0 = 8 × (mean of the patch − 0.5)."""

    def forward(self, x):
        z = 8 * (x[:, :, 14:21, 0:7].mean((1, 2, 3)) - 0.5)
        return torch.stack([z, torch.zeros_like(z)], 1)


@pytest.fixture(scope="module")
def lenets():
    from helpers.zoo.architectures import build_model

    torch.manual_seed(0)
    return [build_model("lenet", 1, 10).eval() for _ in range(3)]


def test_baselines_in_pixel_and_normalized_space():
    x = torch.rand(3, 1, 8, 8) * 2 - 0.5
    mean, std = (0.2,), (0.4,)
    zero = baselines.make_baseline("zero", x, mean, std)
    assert torch.allclose(zero * 0.4 + 0.2, torch.zeros_like(x))  # black in pixel space
    assert torch.equal(baselines.make_baseline("mean", x, mean, std), torch.zeros_like(x))  # 0 in normalized space
    flat = torch.full((2, 1, 8, 8), 0.7)
    assert torch.allclose(baselines.make_baseline("blur3", flat, mean, std), flat, atol=1e-6)  # blur keeps a constant
    u = baselines.make_baseline("uniform", x, mean, std, seed=4) * 0.4 + 0.2
    assert u.min() >= 0 and u.max() <= 1 and u.std() > 0.2
    pool = torch.randn(10, 1, 8, 8)
    tr = baselines.make_baseline("train", x, mean, std, seed=1, pool=pool)
    assert all(any(torch.allclose(tr[i], pool[j], atol=1e-5) for j in range(10)) for i in range(3))


@pytest.mark.parametrize("name", [n for n, b in baselines.BASELINES.items() if b.random])
def test_random_baselines_are_seeded_per_image(name):
    x, pool = torch.randn(4, 1, 6, 6), torch.randn(20, 1, 6, 6)
    a = baselines.make_baseline(name, x, seed=3, pool=pool)
    one = torch.cat([baselines.make_baseline(name, x[i:i + 1], seed=3 + i, pool=pool) for i in range(4)])
    assert torch.equal(a, one) and not torch.equal(a, baselines.make_baseline(name, x, seed=4, pool=pool))


def test_linear_model_exact_attribution_gives_the_steepest_morf_curve():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(1, 1, 8, 8, generator=g)
    model = Linear(w)
    x = torch.randn(5, 1, 8, 8, generator=g)
    t = torch.zeros(5, dtype=torch.long)
    exact = (w * x)[:, 0]
    others = torch.stack([torch.randn(5, 8, 8, generator=g) for _ in range(4)] + [w[0].expand(5, 8, 8)])
    kw = dict(n_steps=16, score="logit")
    best = faith.curves([model], x, t, exact[None], **kw)[0, 0]
    worst = faith.curves([model], x, t, exact[None], order="lerf", **kw)[0, 0]
    rest = faith.curves([model], x, t, others, **kw)[:, 0]  # (5 maps, N, S+1)
    assert (best <= rest + 1e-5).all() and (rest <= worst + 1e-5).all()
    assert (faith.auc(best) < faith.auc(rest[:4]).mean(0)).all()  # strictly better than random maps
    assert (faith.aopc(best) >= faith.aopc(rest) - 1e-9).all()
    # the full deletion with a zero baseline ends at f(0) = 0, and starts at f(x) = Σ w·x
    assert torch.allclose(best[:, 0], exact.flatten(1).sum(1), atol=1e-5) and best[:, -1].abs().max() < 1e-5


def test_auc_and_aopc_known_values():
    c = torch.tensor([1.0, 0.5, 0.0])
    assert faith.auc(c).item() == pytest.approx(0.5) and faith.aopc(c).item() == pytest.approx(0.5)
    assert faith.auc(torch.ones(7)).item() == pytest.approx(1.0) and faith.aopc(torch.ones(7)).item() == 0


@pytest.mark.parametrize("kind,order,patch,score", [("deletion", "morf", 1, "prob"), ("insertion", "morf", 4, "logit"),
                                                    ("deletion", "lerf", 3, "logit"), ("insertion", "lerf", 2, "prob")])
def test_batched_curves_equal_the_per_image_loop(lenets, kind, order, patch, score):
    g = torch.Generator().manual_seed(1)
    x, maps = torch.randn(3, 1, 28, 28, generator=g), torch.randn(2, 3, 28, 28, generator=g)
    b = baselines.make_baseline("gaussian", x, seed=2)
    t = torch.tensor([3, 5, 7])
    kw = dict(kind=kind, order=order, n_steps=9, patch=patch, score=score)
    batched = faith.curves(lenets, x, t, maps, b, chunk=50, **kw)  # small chunks: the chunking is exercised
    paired = faith.curves(lenets[:2], x, t, maps, b, paired=True, chunk=50, **kw)
    for a in range(2):
        for m in range(3):
            for i in range(3):
                ref = faith.curve_loop(lenets[m], x[i], int(t[i]), maps[a, i], b[i], **kw)
                assert torch.allclose(batched[a, m, i], ref, atol=1e-5)
                if a == m:
                    assert torch.allclose(paired[m, i], ref, atol=1e-5)


def _quantus():
    try:
        import quantus
    except Exception as e:  # quantus imports cv2 (opencv-python), which needs libGL.so.1
        pytest.skip(f"quantus is not importable here ({type(e).__name__}: {e}); install the dev extra "
                    f"(and libgl1 for opencv-python) to run the cross-check")
    return quantus


def test_agrees_with_quantus_pixel_flipping_and_region_perturbation(lenets):
    quantus = _quantus()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 1, 28, 28, generator=g)
    a = torch.randn(4, 1, 28, 28, generator=g)  # continuous maps: no ties in the ordering
    y = torch.tensor([0, 1, 2, 3])
    black = x.flatten(1).min(1).values.view(-1, 1, 1, 1).expand_as(x)  # quantus' "black": the image minimum
    model = lenets[0]
    kw = dict(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu")
    pf = torch.tensor(np.array(quantus.PixelFlipping(features_in_step=28, disable_warnings=True)(softmax=True, **kw)))
    ours = faith.curves([model], x, y, a[:, 0][None], black, n_steps=28, score="prob")[0, 0]
    assert torch.allclose(ours[:, 1:], pf.float(), atol=1e-5)
    rp = torch.tensor(np.array(quantus.RegionPerturbation(patch_size=4, regions_evaluation=49, order="morf",
                                                          disable_warnings=True)(softmax=False, **kw)))
    ours = faith.curves([model], x, y, a[:, 0][None], black, n_steps=49, patch=4, score="logit")[0, 0]
    assert torch.allclose(ours[:, :1] - ours[:, 1:], rp.float(), atol=1e-4)
    assert torch.allclose(faith.aopc(ours), rp.double().sum(1) / 50, atol=1e-5)  # AOPC = Σ_k (f(x⁰) − f(xᵏ)) / (L+1)


def test_rise_puts_its_mass_on_the_patch_the_model_looks_at():
    x = torch.ones(2, 1, 28, 28)
    sal = pmethods.rise(OnePatch(), x, torch.zeros(2, dtype=torch.long), 0.0, n_masks=600, cell=4, p=0.5, seed=0)[:, 0]
    inside = torch.zeros(28, 28, dtype=torch.bool)
    inside[14:21, 0:7] = True
    assert (sal[:, inside].mean(1) > sal[:, ~inside].mean(1) + 0.05).all()
    peak = sal.flatten(1).argmax(1)
    assert inside.flatten()[peak].all()
    # batched == one image at a time (the masks depend on the seed only)
    one = pmethods.rise(OnePatch(), x[:1], torch.zeros(1, dtype=torch.long), 0.0, n_masks=600, cell=4, seed=0)[:, 0]
    assert torch.allclose(sal[:1], one)


def test_rise_masks_keep_probability_and_shape():
    m = pmethods.rise_masks(400, 7, 0.3, (28, 28), seed=1)
    assert m.shape == (400, 28, 28) and m.min() >= 0 and m.max() <= 1
    assert abs(m.mean().item() - 0.3) < 0.03


def test_occlusion_with_a_constant_baseline_image_equals_the_scalar_baseline(lenets):
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([1, 2])
    a = pmethods.occlusion(lenets[0], x, t, torch.full_like(x, -0.4))
    assert torch.allclose(a, pmethods.occlusion(lenets[0], x, t, -0.4), atol=1e-5)


def test_bad_inputs_get_one_line_errors_that_name_the_fix(lenets):
    x, t = torch.randn(1, 1, 28, 28), torch.tensor([0])
    with pytest.raises(ValueError,
                       match=r"n_steps=800 with 784 regions: use 1 ≤ n_steps ≤ 784, or a smaller patch"):
        faith.curves(lenets, x, t, torch.randn(1, 1, 28, 28), n_steps=800)
    with pytest.raises(ValueError, match="unknown baseline 'grey': choose one of zero, mean"):
        baselines.make_baseline("grey", x)
    with pytest.raises(ValueError, match="cell=40 does not fit a 28×28 image: use a mask cell of 1 to 28 pixels"):
        pmethods.rise(lenets[0], x, t, n_masks=10, cell=40)
    with pytest.raises(ValueError, match="baseline 'train' needs training images: pass pool=ds.train.x"):
        baselines.make_baseline("train", x)
    with pytest.raises(ValueError, match="score='proba': use 'logit' or 'prob'"):
        faith.curves(lenets, x, t, torch.randn(1, 1, 28, 28), n_steps=4, score="proba")


def test_rank_correlation_blur_matching_and_ranking_agreement():
    g = torch.Generator().manual_seed(5)
    a = torch.randn(3, 10, 10, generator=g)
    assert torch.allclose(ranks.rank_correlation(a, 2 * a + 1), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(ranks.rank_correlation(a, -a), -torch.ones(3, dtype=torch.float64))
    smooth = baselines.gaussian_blur(a, 1.5)
    blurred, sigma = faith.blur_to_match(a, smooth)
    assert (sigma > 0.75).all() and (faith.total_variation(blurred) - faith.total_variation(smooth)).abs().max() < 0.1
    scores = torch.randn(4, 1, 3, 5, generator=g).expand(4, 3, 3, 5)  # same scores under every baseline
    tau, mean_tau, min_tau = ranks.ranking_agreement(scores, n_boot=20)
    assert torch.allclose(tau, torch.ones(3, 3, dtype=torch.float64)) and mean_tau.point == 1 and min_tau.low == 1
    flipped = torch.stack([scores[:, 0], -scores[:, 0]], 1)
    assert ranks.ranking_agreement(flipped, n_boot=20)[0][0, 1] == -1


def test_mean_interval_covers_the_mean():
    v = torch.arange(12.0).view(3, 4)
    iv = intervals.mean_interval(v, n_boot=200)
    assert iv.point == pytest.approx(5.5) and iv.low < 5.5 < iv.high


def test_kendall_matrix_matches_scipy():
    from scipy.stats import kendalltau

    g = torch.Generator().manual_seed(7)
    means = torch.randn(6, 4, generator=g)
    means[2, 1] = means[3, 1]  # a tie
    tau = ranks.kendall_matrix(means)
    for i in range(4):
        for j in range(4):
            assert tau[i, j].item() == pytest.approx(kendalltau(means[:, i], means[:, j]).statistic, abs=1e-9)
    assert ranks.ranking(["a", "b", "c"], torch.tensor([0.1, 0.9, 0.5])) == "b > c > a"


def test_boot_means_equal_the_looped_multi_bootstrap():
    from helpers.evaluation.intervals import draws

    v = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(8))
    reps = intervals.boot_means(v, n_boot=30, seed=3)
    models, images = draws(5, 4, 30, 3)
    looped = torch.stack([v[:, models[r]][:, :, images[r]].mean((-2, -1)) for r in range(30)])
    assert reps.shape == (30, 2) and torch.allclose(reps, looped.double())


def test_baseline_figure_frames_change_the_maps_and_the_baseline_column():
    g = torch.Generator().manual_seed(9)
    images, bases = torch.rand(2, 1, 6, 6, generator=g), torch.rand(3, 2, 1, 6, 6, generator=g)
    maps = torch.rand(3, 4, 2, 6, 6, generator=g) * 2 - 1  # 3 frames, 4 columns, 2 rows
    fig = pt_figures.baseline_figure(images, bases, maps, ["a", "b", "c"], ["m0", "m1", "m2", "m3"])
    assert len(fig.frames) == 3 and [f.name for f in fig.frames] == ["a", "b", "c"]
    assert all(len(f.traces) == len(f.data) == 2 * (1 + 4) for f in fig.frames)
    assert len(fig.layout.sliders[0].steps) == 3
    z0, z1 = (np.asarray(fig.frames[k].data[1].z) for k in (0, 1))  # row 0, first map column
    assert not np.array_equal(z0, z1)
    no_base = pt_figures.baseline_figure(images, None, maps, ["a", "b", "c"], ["m0", "m1", "m2", "m3"], prefix="cell = ")
    assert all(len(f.traces) == 2 * 4 for f in no_base.frames) and len(no_base.data) == 2 * 5


def test_faithfulness_of_identical_models_and_maps_is_the_same_for_every_kind_of_map():
    """M copies of one linear model with one map each: the leave-one-out mean, the ensemble's map and the
    smoothness-matched blur (σ = 0) are that same map, so all four areas agree; the exact map beats a random one."""
    g = torch.Generator().manual_seed(10)
    w = torch.randn(1, 1, 8, 8, generator=g)
    models = [Linear(w) for _ in range(3)]
    x = torch.randn(4, 1, 8, 8, generator=g)
    t = torch.zeros(4, dtype=torch.long)
    exact = (w * x)[:, 0]
    out = faith.faithfulness(models, x, t, exact.expand(3, -1, -1, -1), exact, 0.0, n_steps=8, score="logit")
    for kind in ("deletion", "insertion"):
        for name in ("others", "ensemble", "blurred"):
            assert torch.allclose(out[kind][name], out[kind]["single"], atol=1e-6), (kind, name)
    assert (out["sigma"]["blur"] == 0).all() and out["sigma"]["ensemble_vs_mean"] < 1e-6
    noisy = faith.faithfulness(models, x, t, torch.randn(3, 4, 8, 8, generator=g), exact, 0.0, n_steps=8, score="logit")
    assert (noisy["deletion"]["single"].mean() > out["deletion"]["single"].mean())
    rows, glue = ch06.faithfulness_rows(noisy, n_boot=50)
    assert len(rows) == 4 and glue["code_del_ensemble"] == "+"  # the exact (ensemble) map is the more faithful


def test_divergence_and_claims_follow_their_tests():
    g = torch.Generator().manual_seed(11)
    one = torch.randn(1, 2, 3, 4, 6, 6, generator=g)  # (B=1, K=2, M=3, N=4, H, W)
    same = one.expand(3, -1, -1, -1, -1, -1)  # three baselines, identical maps
    across_b, across_s = ranks.divergence(same)
    assert torch.allclose(across_b, torch.ones_like(across_b)) and (across_s < 0.9).all()
    assert ch06._status(["+", "+"]) == "confirmed" and ch06._status(["-", "-"]) == "contradicted"
    assert ch06._status(["+", "0"]) == "left open"


def test_hyper_sweep_shapes_window_stride_coupling_and_errors(lenets):
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([1, 2])
    base = {"zero": torch.zeros_like(x), "mean": torch.full_like(x, 0.3)}
    sw = sweeps.hyper_sweep("occlusion", lenets[:2], x, t, base, "window", [2, 4], stride=3)
    assert sw.shape == (2, 2, 2, 2, 28, 28)
    direct = sweeps.maps_under("occlusion", lenets[:2], x, t, base["mean"], window=4, stride=2)
    assert torch.allclose(sw[1, 1], direct)  # the window's value sets the stride to half of it
    st = sweeps.hyper_sweep("occlusion", lenets[:1], x, t, base, "stride", [1, 2], window=4)
    assert torch.allclose(st[1, 1], direct[:1])
    with pytest.raises(ValueError, match="no swept hyperparameter 'sigma'"):
        sweeps.hyper_sweep("occlusion", lenets[:1], x, t, base, "sigma", [1, 2])
    both = sweeps.hyper_sweeps({"occlusion": {"window": [2, 4]}, "rise": {"cell": [2, 4]}}, lenets[:2], x, t, base,
                          {"rise": {"n_masks": 20, "cell": 7, "seed": 0}, "occlusion": {"window": 4, "stride": 2}})
    assert set(both) == {("occlusion", "window"), ("rise", "cell")} and both[("rise", "cell")].shape[0] == 2


def test_across_values_and_hyper_rows_count_what_moves_maps():
    g = torch.Generator().manual_seed(0)
    fixed = torch.randn(1, 1, 4, 5, 8, 8, generator=g).expand(3, 2, -1, -1, -1, -1)  # same map for every value
    noisy = torch.randn(3, 2, 4, 5, 8, 8, generator=g)  # unrelated maps for every value
    assert torch.allclose(ranks.across_values(fixed).float(), torch.ones(4, 5))
    assert ranks.across_values(noisy).abs().mean() < 0.2
    seeds = torch.full((2, 4, 5), 0.5)  # a yardstick between the two
    rows, counts = ch06.hyper_rows({("rise", "cell"): fixed, ("occlusion", "window"): noisy},
                                {"rise": {"cell": [1, 2, 3]}, "occlusion": {"window": [1, 2, 3]}},
                                ["occlusion", "rise"], seeds, n_boot=100)
    assert counts == {"n_hypers": 2, "n_hyper_more": 1, "n_hyper_less": 1, "n_hyper_same": 0}
    assert rows[0]["hyperparameter"] == "cell" and rows[0]["ρ across values"].startswith("1.00")
    with pytest.raises(ValueError, match="at least two values"):
        ranks.across_values(noisy[:1])
