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
    with pytest.raises(ValueError, match="unknown normalisation"):
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


def test_convergence_curve_rises_to_one():
    gen = torch.Generator().manual_seed(2)
    signal = torch.randn(1, 3, 32, 32, generator=gen)
    noisy = signal + torch.randn(16, 3, 32, 32, generator=gen)
    curve = metrics.convergence_to_full_mean(noisy, n_permutations=5)
    assert curve.shape == (3, 16)
    assert torch.allclose(curve[:, -1], torch.ones(3), atol=1e-5)
    assert (curve[:, 1:] >= curve[:, :-1] - 0.02).all()
    assert (curve[:, 0] < 0.8).all()


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
