import pytest
import torch

from helpers import maps, metrics


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
    assert torch.allclose(metrics.mean_pairwise_correlation(m), expected, atol=1e-6)
    # signal + noise with equal variance: expected correlation 1/2
    signal = torch.randn(1, 1, 64, 64, generator=gen)
    noisy = signal + torch.randn(40, 1, 64, 64, generator=gen)
    assert abs(metrics.mean_pairwise_correlation(noisy).item() - 0.5) < 0.05
    with pytest.raises(ValueError, match="at least two models"):
        metrics.mean_pairwise_correlation(m[:1])


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
    from helpers.maps import pearson

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
    cm = metrics.correlation_matrix(maps)
    assert cm.shape == (2, 5, 5) and torch.allclose(cm.diagonal(dim1=1, dim2=2), torch.ones(2, 5), atol=1e-5)
    with pytest.raises(ValueError, match="at least three models"):
        metrics.extreme_pairs(maps[:2])
