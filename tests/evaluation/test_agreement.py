import pytest
import torch

from helpers.attribution import maps
from helpers.evaluation import agreement as metrics
from helpers.evaluation import correlation


def test_to_2d_sums_channels_keeping_sign():
    a = torch.tensor([[[[1.0, -2.0]], [[3.0, -1.0]], [[-5.0, 0.0]]]])  # (1, 3, 1, 2)
    assert torch.equal(maps.to_2d(a), torch.tensor([[[-1.0, -3.0]]]))


def test_normalize_variants():
    m = torch.tensor([[[2.0, -4.0], [1.0, 0.0]]])
    assert torch.allclose(maps.normalize(m, "maxabs"), m / 4)
    q = maps.normalize(torch.arange(101.0).view(1, 1, 101), "quantile", q=0.5)
    assert q.max() == 1 and torch.isclose(q[0, 0, 25], torch.tensor(0.5))
    assert torch.allclose(maps.normalize(m, "std").flatten().std(), torch.tensor(1.0))
    assert torch.equal(maps.normalize(torch.zeros(1, 2, 2)), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="unknown normalization"):
        maps.normalize(m, "l2")


def test_pearson_known_values():
    a = torch.randn(3, 4, 4)
    assert torch.allclose(maps.pearson(a, 2 * a + 1), torch.ones(3), atol=1e-6)
    assert torch.allclose(maps.pearson(a, -a), -torch.ones(3), atol=1e-6)


def test_mean_pairwise_correlation_matches_hand_computation():
    gen = torch.Generator().manual_seed(1)
    m = torch.randn(4, 2, 5, 5, generator=gen)
    expected = torch.stack([torch.stack([maps.pearson(m[i, n], m[j, n]) for i in range(4) for j in range(i + 1, 4)])
                            .mean() for n in range(2)])
    assert torch.allclose(correlation.mean_pairwise_correlation(m), expected, atol=1e-6)
    # signal + noise with equal variance: expected correlation 1/2
    signal = torch.randn(1, 1, 64, 64, generator=gen)
    noisy = signal + torch.randn(40, 1, 64, 64, generator=gen)
    assert abs(correlation.mean_pairwise_correlation(noisy).item() - 0.5) < 0.05
    with pytest.raises(ValueError, match="at least two models"):
        correlation.mean_pairwise_correlation(m[:1])


def test_single_vs_rest_leaves_the_model_out():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 1, 4)
    maps = torch.cat([a, a, -a])  # rest of 0: mean(a, -a) = 0 -> undefined (0); of 2: a -> -1
    r = metrics.single_vs_rest(maps)
    assert r.shape == (3, 1) and torch.allclose(r[2], torch.tensor([-1.0])) and torch.allclose(r[0], torch.tensor([0.0]))
    # with the model inside the mean, model 2 would correlate with (a + a - a)/3 = a/3: still -1; but model 0 with a/3: +1
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(8, 4, 16, 16, generator=gen)  # pure noise: leave-one-out is about 0, the inclusive mean is not
    assert metrics.single_vs_rest(noise).mean().abs() < 0.05
    assert maps_pearson(noise, noise.mean(0, keepdim=True)).mean() > 0.3


def maps_pearson(a, b):
    from helpers.attribution.maps import pearson

    return pearson(a, b)


def test_agreement_intervals_cover_the_known_values():
    gen = torch.Generator().manual_seed(1)
    signal = torch.randn(1, 12, 16, 16, generator=gen)
    signal = (signal - signal.mean((-2, -1), keepdim=True)) / signal.std((-2, -1), keepdim=True)
    maps = signal + torch.randn(20, 12, 16, 16, generator=gen)  # signal variance = noise variance: ρ = 1/2
    agree = metrics.agreement(maps, n_boot=300)
    assert agree["pairwise"].low < 0.5 < agree["pairwise"].high
    rest = 19 * 0.5 / (1 + 18 * 0.5)  # corr(a_m, mean of 19 others) = sqrt(ρ · ρ_19) with ρ_19 the mean's reliability
    assert abs(agree["single_vs_rest"].point - (0.5 * rest) ** 0.5) < 0.05
    assert abs(agree["split_half"].point - 10 * 0.5 / (1 + 9 * 0.5)) < 0.03
    diff = metrics.pairwise_difference(maps, signal + 3 * torch.randn(20, 12, 16, 16, generator=gen), n_boot=300)
    assert diff.low > 0.2  # ρ = 1/2 against 1/10
    same = metrics.pairwise_difference(maps, signal + torch.randn(20, 12, 16, 16, generator=gen), n_boot=300)
    assert same.low < 0 < same.high


def test_extreme_pairs_finds_the_planted_pairs():
    gen = torch.Generator().manual_seed(5)
    base = torch.randn(1, 2, 6, 6, generator=gen)
    maps = base + 0.5 * torch.randn(5, 2, 6, 6, generator=gen)
    maps[3] = maps[1] + 1e-3 * torch.randn(2, 6, 6, generator=gen)  # 1 and 3 nearly identical
    maps[4] = -maps[0]  # 0 and 4 opposite
    assert metrics.extreme_pairs(maps) == ((0, 4), (1, 3))
    cm = correlation.correlation_matrix(maps)
    assert cm.shape == (2, 5, 5) and torch.allclose(cm.diagonal(dim1=1, dim2=2), torch.ones(2, 5), atol=1e-5)
    with pytest.raises(ValueError, match="at least three models"):
        metrics.extreme_pairs(maps[:2])


def _signal_plus_noise(n_models, n_images, noise_sd, gen, size=16):
    signal = torch.randn(1, n_images, size, size, generator=gen)
    signal = (signal - signal.mean((-2, -1), keepdim=True)) / signal.std((-2, -1), keepdim=True)
    return signal, signal + noise_sd * torch.randn(n_models, n_images, size, size, generator=gen)


def test_pair_means_of_bootstrap_counts_match_the_loop():
    gen = torch.Generator().manual_seed(2)
    maps = torch.randn(6, 3, 5, 5, generator=gen)
    corr = correlation.correlation_matrix(maps)
    for _ in range(5):
        idx = torch.randint(6, (6,), generator=gen)
        counts = torch.bincount(idx, minlength=6).double()[None]
        per_image = metrics._pair_means(corr, counts)
        pairs = [(a, b) for a in range(6) for b in range(6) if a != b and idx[a] != idx[b]]  # by hand
        by_hand = torch.stack([corr[:, idx[a], idx[b]] for a, b in pairs]).double().mean()
        assert torch.allclose(per_image.mean(), by_hand, atol=1e-6)
    assert torch.isnan(metrics._pair_means(corr, torch.tensor([[3.0, 0, 0, 0, 0, 0]]))).all()  # one model: no pair


def test_averaging_gain_is_spearman_brown_minus_single_and_zero_for_noise():
    gen = torch.Generator().manual_seed(3)
    _, maps = _signal_plus_noise(20, 12, 1.0, gen)  # ρ = 1/2, halves of 10: 10ρ/(1 + 9ρ)
    gain = metrics.averaging_gain(maps, n_boot=300)
    assert abs(gain.point - (10 * 0.5 / (1 + 9 * 0.5) - 0.5)) < 0.05 and gain.low > 0.25
    agree = metrics.agreement(maps, n_boot=50)
    assert abs(gain.point - (agree["split_half"].point - agree["pairwise"].point)) < 1e-6
    noise = metrics.averaging_gain(torch.randn(20, 12, 16, 16, generator=gen), n_boot=300)
    assert noise.low < 0 < noise.high


def test_seed_vs_model_tells_method_noise_from_model_noise():
    gen = torch.Generator().manual_seed(4)
    signal, models = _signal_plus_noise(12, 10, 1.0, gen)  # two models correlate 1/2
    quiet = models[0] + 0.1 * torch.randn(5, 10, 16, 16, generator=gen)  # one model, little method noise: ≈ 0.99
    assert metrics.seed_vs_model(quiet, models, n_boot=300).low > 0.3
    loud = models[0] + torch.randn(5, 10, 16, 16, generator=gen) * models[0].std()  # as noisy as the models: ≈ 1/2
    same = metrics.seed_vs_model(loud, models, n_boot=300)
    assert same.low < 0 < same.high
    with pytest.raises(ValueError, match="same images"):
        metrics.seed_vs_model(quiet[:, :3], models)


def test_split_by_verdict_and_extreme_method():
    from helpers.evaluation.intervals import Interval

    diffs = {"a": Interval(0.2, 0.1, 0.3), "b": Interval(0.0, -0.1, 0.1), "c": Interval(-0.2, -0.3, -0.1)}
    assert metrics.split_by_verdict(diffs) == {"higher": ["a"], "lower": ["c"], "same": ["b"]}
    gen = torch.Generator().manual_seed(5)
    per_method = {"quiet": _signal_plus_noise(12, 8, 0.3, gen)[1], "loud": _signal_plus_noise(12, 8, 3.0, gen)[1],
                  "loud too": _signal_plus_noise(12, 8, 3.0, gen)[1]}
    low, diffs = metrics.extreme_method(per_method, lowest=True, n_boot=200)
    assert low in ("loud", "loud too") and set(diffs) == set(per_method) - {low}
    assert diffs["quiet"].low > 0 and diffs[({"loud", "loud too"} - {low}).pop()].excludes(0) is False
    high, diffs = metrics.extreme_method(per_method, lowest=False, n_boot=200)
    assert high == "quiet" and all(d.high < 0 for d in diffs.values())


def test_busiest_model_and_its_chance():
    assert metrics.busiest_model([(1, 4), (4, 2), (0, 1)]) == (1, 2)  # 1 and 4 tie: the lower number
    assert metrics.busiest_model_chance(3, 1, 1) == 1.0
    # 4 models, 2 random pairs: some model is in both unless the second pair is the first's complement (1 in 6)
    assert abs(metrics.busiest_model_chance(4, 2, 2, n_sim=20000) - 5 / 6) < 0.01
    assert metrics.busiest_model_chance(24, 11, 5) < 0.05


def test_single_vs_rest_leaves_out_draws_of_one_model():
    gen = torch.Generator().manual_seed(7)
    one = torch.randn(1, 3, 8, 8, generator=gen)
    maps = one + 0.01 * torch.randn(2, 3, 8, 8, generator=gen)  # two nearly identical models: every "rest" ≈ 1
    rest = metrics.agreement(maps, 200)["single_vs_rest"]
    assert rest.low > 0.99  # half of the draws are one model twice; scored 0 they would pull the low end to 0


def test_pairwise_interval_contains_the_known_correlation():
    gen = torch.Generator().manual_seed(11)
    signal = torch.randn(1, 10, 12, 12, generator=gen)
    signal = (signal - signal.mean((-2, -1), keepdim=True)) / signal.std((-2, -1), keepdim=True)
    maps = signal + torch.randn(16, 10, 12, 12, generator=gen)  # ρ = 1/2
    iv = metrics.pairwise_interval(maps, n_boot=300)
    assert iv.low < 0.5 < iv.high and iv.high - iv.low < 0.2
    assert abs(iv.point - correlation.mean_pairwise_correlation(maps).mean().item()) < 1e-5
