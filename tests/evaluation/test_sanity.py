"""helpers.sanity: seeded randomization that leaves the zoo alone, similarities with known answers, intervals."""
import hashlib

import pytest
import torch
from torch import nn

from helpers.attribution import attribute
from helpers.evaluation import sanity
from helpers.zoo.architectures import build_model


def _lenet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("lenet", 1, 10).eval()


def _x(n: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _same(a: nn.Module, b: nn.Module, prefix: str) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if k.startswith(prefix + "."))


def test_layers_run_from_input_to_logits_and_batchnorm_goes_with_its_convolution():
    assert sanity.layers(_lenet()) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    convnet = build_model("convnet", 1, 10)
    assert sanity._units(convnet)["features.0"] == ["features.0", "features.1"]
    resnet = build_model("resnet18", 3, 10)
    units = sanity._units(resnet)
    assert units["conv1"] == ["conv1", "bn1"] and units["layer2.0.shortcut.0"] == ["layer2.0.shortcut.0",
                                                                                   "layer2.0.shortcut.1"]
    assert sanity.layers(resnet)[-1] == "linear"


def test_cascade_randomizes_cumulatively_from_the_logits_and_independent_one_layer():
    model = _lenet()
    names = sanity.layers(model)
    steps = [(name, {k: v.clone() for k, v in net.state_dict().items()}) for name, net in sanity.cascade(model)]
    assert [s for s, _ in steps] == ["trained", "fc3", "fc2", "fc1", "conv2", "conv1"]
    trained = model.state_dict()
    for i, (_, state) in enumerate(steps):
        changed = {n for n in names if not torch.equal(state[n + ".weight"], trained[n + ".weight"])}
        assert changed == set(names[len(names) - i:])
    for name, net in sanity.independent(model):
        changed = {n for n in names if not _same(net, model, n)}
        assert changed == (set() if name == "trained" else {name})
        if name != "trained":  # the same new weights as in the cascade
            assert torch.equal(net.state_dict()[name + ".weight"],
                               dict(steps)[name][name + ".weight"])


def test_randomization_is_seeded_per_seed_model_and_layer():
    model = _lenet()
    a = sanity.randomized(model, ["fc2"], seed=0)
    assert torch.equal(a.fc2.weight, sanity.randomized(model, ["fc2"], seed=0).fc2.weight)
    assert not torch.equal(a.fc2.weight, sanity.randomized(model, ["fc2"], seed=1).fc2.weight)
    assert not torch.equal(a.fc2.weight, sanity.randomized(model, ["fc2"], seed=0, model_index=1).fc2.weight)
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    sanity.randomized(model, ["fc2"], seed=0)
    assert torch.equal(torch.rand(1), before)  # the caller's global RNG is untouched


def test_batchnorm_is_reset_with_its_layer():
    torch.manual_seed(0)
    model = build_model("convnet", 1, 10).eval()
    model.features[1].running_mean.fill_(0.7)
    net = sanity.randomized(model, ["features.0"])
    assert torch.equal(net.features[1].running_mean, torch.zeros(32))
    assert torch.equal(model.features[1].running_mean, torch.full((32,), 0.7))


def test_randomization_leaves_the_zoo_untouched_on_disk_and_in_memory(tmp_path):
    model = _lenet()
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = _lenet(seed=9)
    loaded.load_state_dict(torch.load(path, weights_only=True))
    before = {k: v.clone() for k, v in loaded.state_dict().items()}
    for mode in ("cascading", "independent"):
        sanity.randomization_maps(["gradient", "lrp_zplus"], [loaded], _x(2), [1, 2], mode=mode)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert all(torch.equal(before[k], v) for k, v in loaded.state_dict().items())


def test_randomization_maps_batched_equal_looped_and_per_model():
    models = [_lenet(0), _lenet(1)]
    x, y = _x(3), torch.tensor([1, 4, 7])
    r = sanity.randomization_maps(["gradient", "gradcam_pp"], models, x, y, names=["fc2", "fc3"], seed=3)
    assert r.steps == ["trained", "fc3", "fc2"] and r.maps["gradient"].shape == (3, 2, 3, 28, 28)
    one = sanity.randomization_maps(["gradient"], models, x[1:2], y[1:2], names=["fc2", "fc3"], seed=3)
    assert torch.allclose(one.maps["gradient"][:, :, 0], r.maps["gradient"][:, :, 1], atol=1e-6)
    net = sanity.randomized(models[1], ["fc2", "fc3"], seed=3, model_index=1)
    assert torch.allclose(r.maps["gradcam_pp"][2, 1], attribute("gradcam_pp", net, x, y).sum(1), atol=1e-6)
    assert torch.equal(r.maps["gradient"][0, 0], attribute("gradient", models[0], x, y).sum(1))


def test_bad_layer_method_and_mode_get_one_line_errors():
    model = _lenet()
    with pytest.raises(ValueError, match=r"unknown layer\(s\) 'fc9' of LeNet: choose from conv1, conv2"):
        sanity.randomized(model, ["fc9"])
    with pytest.raises(ValueError, match="unknown attribution method 'gradeint'"):
        sanity.randomization_maps(["gradeint"], [model], _x(1), 0)
    with pytest.raises(ValueError, match="mode='top-down': use 'cascading' or 'independent'"):
        sanity.randomization_maps(["gradient"], [model], _x(1), 0, mode="top-down")
    with pytest.raises(ValueError, match="unknown similarity 'cosine'"):
        sanity.similarity(torch.zeros(4, 4), torch.zeros(4, 4), "cosine")
    with pytest.raises(ValueError, match="other='second': use 'random' or 'runner_up'"):
        sanity.class_pair([model], _x(1), other="second")


# ------------------------------------------------------------------------------------------------ similarity

def test_similarity_known_answers():
    a = torch.randn(3, 12, 12, generator=torch.Generator().manual_seed(0))
    for metric in sanity.METRICS:
        assert torch.allclose(sanity.similarity(a, a, metric), torch.ones(3), atol=1e-5), metric
    assert torch.allclose(sanity.similarity(a, torch.exp(a), "spearman"), torch.ones(3), atol=1e-6)  # monotone
    assert torch.allclose(sanity.similarity(a, -a, "spearman"), -torch.ones(3), atol=1e-6)
    assert torch.allclose(sanity.similarity(a, -3 * a, "spearman_abs"), torch.ones(3), atol=1e-6)
    assert torch.allclose(sanity.similarity(a, 2 * a + 1, "pearson"), torch.ones(3), atol=1e-6)
    for metric in ("spearman", "spearman_abs", "pearson", "hog"):
        assert torch.equal(sanity.similarity(a, torch.zeros(12, 12), metric), torch.zeros(3)), metric


def test_similarity_matches_scipy_and_scikit_image():
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 4, 10, 10, generator=gen)
    b = b + a
    b[0, :5] = 0  # ties
    ours = sanity.similarity(a, b, "spearman")
    theirs = [spearmanr(a[i].flatten(), b[i].flatten()).statistic for i in range(4)]
    assert torch.allclose(ours, torch.tensor(theirs, dtype=torch.float32), atol=1e-5)
    pa, pb = a[2].abs() / a[2].abs().max(), b[2].abs() / b[2].abs().max()
    expected = structural_similarity(pa.numpy(), pb.numpy(), data_range=1.0, win_size=7)
    assert sanity.similarity(a, b, "ssim")[2].item() == pytest.approx(expected, abs=1e-6)


def test_marginal_similarity_compares_the_mean_of_normalized_maps():
    gen = torch.Generator().manual_seed(2)
    before = torch.randn(4, 3, 8, 8, generator=gen)  # (M, N, H, W)
    scaled = before * torch.tensor([1.0, 10.0, 0.1, 3.0]).view(4, 1, 1, 1)  # seeds change the scale only
    assert torch.allclose(sanity.marginal_similarity(before, scaled, "pearson"), torch.ones(3), atol=1e-5)
    assert sanity.single_similarity(before, scaled, "pearson").shape == (4, 3)
    assert torch.allclose(sanity.zoo_mean(scaled), sanity.zoo_mean(before), atol=1e-6)


def test_curves_start_at_one_for_the_trained_model():
    r = sanity.randomization_maps(["gradient"], [_lenet(0), _lenet(1)], _x(2), [0, 1], names=["fc3"])
    single, marginal = sanity.curves(r, "spearman_abs")["gradient"]
    assert single.shape == (2, 2, 2) and marginal.shape == (2, 2)
    assert torch.allclose(single[0], torch.ones(2, 2), atol=1e-6) and (single[1] < 0.99).all()


# ------------------------------------------------------------------------------------------------ intervals etc.

def test_intervals_and_verdicts():
    v = torch.full((4, 5), 0.3)
    iv = sanity.interval(v, n_boot=50)
    assert (iv.point, iv.low, iv.high) == pytest.approx((0.3, 0.3, 0.3))
    noisy = torch.rand(4, 5, generator=torch.Generator().manual_seed(0))
    iv = sanity.interval(noisy, n_boot=200)
    assert iv.low < iv.point < iv.high and iv.point == pytest.approx(float(noisy.mean()))
    assert sanity.interval(noisy[0], n_boot=200).point == pytest.approx(float(noisy[0].mean()))
    assert sanity.verdict(iv, threshold=iv.high + 0.01) == "passes"
    assert sanity.verdict(iv, threshold=iv.low) == "fails"
    assert sanity.verdict(iv, threshold=iv.point) == "undecided"
    assert torch.equal(sanity.cascade_score(torch.tensor([1.0, 0.2, 0.4])), torch.tensor(0.3))
    with pytest.raises(ValueError, match="pass \\(models, images\\) or \\(images,\\)"):
        sanity.interval(torch.zeros(2, 2, 2))


def test_class_pair_and_class_maps():
    models = [_lenet(0), _lenet(1)]
    x = _x(6)
    first, other = sanity.class_pair(models, x, seed=0)
    mean = torch.stack([m(x) for m in models]).mean(0)
    assert torch.equal(first, mean.argmax(1)) and (other != first).all()
    assert torch.equal(other, sanity.class_pair(models, x, seed=0)[1])
    assert torch.equal(sanity.class_pair(models, x, other="runner_up")[1], mean.argsort(1, descending=True)[:, 1])
    maps = sanity.class_maps(["gradient"], models, x, first, other)["gradient"]
    assert maps.shape == (2, 2, 6, 28, 28)
    assert torch.equal(maps[1, 1], attribute("gradient", models[1], x, other).sum(1))


def test_images_per_second_is_positive_for_every_method():
    speed = sanity.images_per_second(["gradient", "fullgrad"], _lenet(), _x(2), [0, 1])
    assert set(speed) == {"gradient", "fullgrad"} and all(v > 0 for v in speed.values())


# --- the symmetric comparison of single and zoo-mean scores --------------------------------------------------------

def _linear_scores(gen: torch.Generator, level: float, m: int = 6, n: int = 30, pool=None) -> sanity.Scores:
    """Scores whose zoo-mean reading is, in truth, the single reading: the zoo-mean value of a model draw is the
    mean of the drawn models' values (a linear statistic), with large differences between models."""
    table = level + 0.15 * torch.randn(m, 1, generator=gen) + 0.05 * torch.randn(m, n, generator=gen)
    draws = (pool / pool.sum(1, keepdim=True)).float() @ table
    return sanity.Scores(table, table.mean(0), draws)


def test_model_pool_starts_with_the_observed_zoo_and_draws_with_replacement():
    pool = sanity.model_pool(6, 50, seed=3)
    assert pool.shape == (50, 6) and torch.equal(pool[0], torch.ones(6)) and (pool.sum(1) == 6).all()
    assert (pool.max(1).values > 1).any() and torch.equal(pool, sanity.model_pool(6, 50, seed=3))


def test_symmetric_procedure_calls_no_change_where_the_readings_agree_in_truth_and_the_asymmetric_one_does():
    gen, pool = torch.Generator().manual_seed(0), sanity.model_pool(6, 100, seed=0)
    sym, asym, differ = 0, 0, 0
    for k in range(40):  # 40 "methods" near the threshold
        s = _linear_scores(gen, 0.5 + 0.1 * (k % 5 - 2), pool=pool)
        p = sanity.paired_interval(s, pool, 400, 0.9, seed=k)
        a_single, a_mean = sanity.asymmetric_interval(s, 400, 0.9, seed=k)
        sym += sanity.verdict(p.single, 0.5) != sanity.verdict(p.marginal, 0.5)
        asym += sanity.verdict(a_single, 0.5) != sanity.verdict(a_mean, 0.5)
        differ += sanity.differs(p.diff)
        assert (p.marginal.high - p.marginal.low) > 0.5 * (p.single.high - p.single.low)
    assert sym == 0 and differ == 0  # same replicates: the same numbers, the same verdicts
    assert asym >= 5  # the images-only interval is narrower: "changes" from interval width alone


def test_paired_difference_is_zero_for_identical_models_and_finds_what_averaging_does():
    gen, pool = torch.Generator().manual_seed(1), sanity.model_pool(6, 60, seed=0)
    one = torch.randn(1, 1, 10, 12, 12, generator=gen)
    before, after = one.expand(1, 6, 10, 12, 12), (one + torch.randn(1, 1, 10, 12, 12, generator=gen)).expand(
        1, 6, 10, 12, 12)
    p = sanity.paired_interval(sanity.step_scores(before, after, "pearson", pool)[0], pool, 300)
    assert abs(p.diff.point) < 1e-6 and abs(p.diff.low) < 1e-6 and abs(p.diff.high) < 1e-6
    # a shared signal plus noise of each model's own, replaced by randomization: the zoo mean averages the noise
    # away, so its similarity is higher (about M/(M+1) against 1/2 for a single model)
    signal = torch.randn(1, 1, 10, 12, 12, generator=gen)
    before = signal + torch.randn(1, 6, 10, 12, 12, generator=gen)
    after = signal + torch.randn(1, 6, 10, 12, 12, generator=gen)
    p = sanity.paired_interval(sanity.step_scores(before, after, "pearson", pool)[0], pool, 300)
    assert abs(p.single.point - 0.5) < 0.1 and p.marginal.point > 0.75 and p.diff.high < 0


def test_the_controls_have_known_answers():
    pool, x = sanity.model_pool(3, 20), _x(4)
    edge = sanity.edge_maps(x)
    assert edge.shape == (4, 28, 28) and (edge >= 0).all()
    steps = edge.expand(3, 3, 4, 28, 28)  # the same map at every step, for every model
    s = sanity.step_scores(steps[:1], steps, "spearman_abs", pool)
    p = sanity.paired_interval(sanity.mean_scores(s[1:]), pool, 200)
    assert sanity.verdict(p.single, 0.5) == sanity.verdict(p.marginal, 0.5) == "fails" and p.diff.point == 0
    noise = sanity.noise_maps((3, 3, 4, 28, 28), seed=0)
    p = sanity.paired_interval(sanity.mean_scores(sanity.step_scores(noise[:1], noise, "spearman_abs", pool)[1:]),
                               pool, 200)
    assert sanity.verdict(p.single, 0.5) == sanity.verdict(p.marginal, 0.5) == "passes"


def test_step_scores_reuse_the_trained_features_without_changing_the_numbers():
    gen, pool = torch.Generator().manual_seed(2), sanity.model_pool(3, 8)
    maps = torch.randn(4, 3, 5, 10, 10, generator=gen)
    maps[0, :, 0] = 0.0  # a constant trained map: correlation 0 with anything, itself included
    for metric in ("spearman_abs", "pearson"):
        fast = sanity.step_scores(maps[:1], maps, metric, pool)
        slow = sanity.similarity(sanity.draw_means(maps[:1], pool), sanity.draw_means(maps, pool), metric)
        assert torch.allclose(torch.stack([s.draws for s in fast], 1), slow, atol=1e-6)
        assert fast[0].draws[:, 0].abs().max() == 0 and torch.allclose(fast[0].draws[:, 1:], torch.ones(8, 4))


def test_zoo_mean_interval_holds_its_point_although_resampled_zoos_average_fewer_seeds():
    """Shared signal plus each model's own noise: a resampled zoo repeats models, so its mean map keeps more noise
    and its similarity is lower than the whole zoo's; the centred replicates keep the point inside the interval."""
    gen, pool = torch.Generator().manual_seed(4), sanity.model_pool(6, 50, seed=0)
    signal = torch.randn(1, 1, 30, 12, 12, generator=gen)
    before = signal + 1.5 * torch.randn(1, 6, 30, 12, 12, generator=gen)
    after = signal + 1.5 * torch.randn(1, 6, 30, 12, 12, generator=gen)
    s = sanity.step_scores(before, after, "pearson", pool)[0]
    _, marginal = sanity.paired_replicates(s, pool, 500)
    assert marginal.mean() < s.point.mean() - 0.02  # the resampling shift
    p = sanity.paired_interval(s, pool, 500)
    for iv in (p.single, p.marginal, p.diff):
        assert iv.low <= iv.point <= iv.high
