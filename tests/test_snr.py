import math

import pytest
import torch

from helpers import snr


def _synthetic(m: int, n: int = 3, size: int = 24, sigma: float = 1.0, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    signal = torch.randn(1, n, size, size, generator=gen)
    signal = signal / signal.pow(2).mean((-2, -1), keepdim=True).sqrt()  # ‖μ‖²/P = 1 per image
    return signal, signal + sigma * torch.randn(m, n, size, size, generator=gen)


def test_energy_snr_by_hand():
    maps = torch.tensor([[[[1.0, 3.0]]], [[[3.0, 1.0]]]])  # M=2, N=1, 1×2 pixels
    # mean (2, 2): energy 8; unbiased variances (2, 2): sum 4 -> 2, and both maps have the same RMS
    assert torch.allclose(snr.energy_snr(maps), torch.tensor([2.0]))
    assert torch.allclose(snr.energy_snr(maps, normalize=False), torch.tensor([2.0]))
    scaled = maps * torch.tensor([1.0, 10.0]).view(2, 1, 1, 1)  # a seed that only scales its map
    assert torch.allclose(snr.energy_snr(scaled), torch.tensor([2.0]))
    assert snr.energy_snr(scaled, normalize=False).item() < 1.5


def test_energy_snr_matches_theory_on_signal_plus_noise():
    for sigma in (0.5, 1.0, 2.0):
        _, maps = _synthetic(200, sigma=sigma, seed=1)
        expected = 1 / sigma ** 2 + 1 / 200  # ‖μ‖²/(P σ²) + 1/M
        got = snr.energy_snr(maps, normalize=False)
        assert torch.allclose(got, torch.full_like(got, expected), rtol=0.1), (sigma, got)


def test_pairwise_and_split_half_by_hand():
    a = torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 1, 3)
    maps = torch.cat([a, a * 2, -a])  # correlations: (1,2)=1, (1,3)=-1, (2,3)=-1
    assert torch.allclose(snr.pairwise_correlation(maps), torch.tensor([-1 / 3]))
    twins = torch.cat([a, a, a, a])
    assert torch.allclose(snr.split_half(twins, n_splits=3), torch.tensor([1.0]))
    # signal variance 1, noise variance 1: one model correlates 1/2 with another
    _, noisy = _synthetic(60, sigma=1.0, seed=2)
    assert torch.allclose(snr.pairwise_correlation(noisy), torch.full((3,), 0.5), atol=0.05)
    # halves of 30: correlation (30/(30+1)) ≈ 0.968; Spearman–Brown projects it up
    sh = snr.split_half(noisy, n_splits=10)
    assert torch.allclose(sh, torch.full((3,), 30 / 31), atol=0.02)
    assert (snr.split_half(noisy, n_splits=10, spearman_brown=True) > sh).all()


def test_split_half_rises_with_m():
    _, noisy = _synthetic(64, sigma=2.0, seed=3)
    values = [snr.split_half(noisy[:m], n_splits=10).mean().item() for m in (4, 8, 16, 32, 64)]
    assert all(b > a for a, b in zip(values, values[1:])), values


def test_snr_of_the_mean_grows_like_sqrt_m():
    _, noisy = _synthetic(64, sigma=3.0, seed=4)
    curve = snr.snr_vs_m(noisy, [4, 16, 64], n_draws=5).mean(1)
    assert 1.6 < (curve[1] / curve[0]).item() < 2.5  # √4 = 2
    assert 1.6 < (curve[2] / curve[1]).item() < 2.5


def test_per_class_means_and_missing_classes():
    values = torch.tensor([1.0, 3.0, 5.0, 7.0])
    labels = torch.tensor([0, 0, 2, 2])
    out = snr.per_class(values, labels, 3)
    assert out[0] == 2 and out[2] == 6 and math.isnan(out[1])


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="at least 2 models"):
        snr.energy_snr(torch.randn(1, 2, 4, 4))
    with pytest.raises(ValueError, match="to_2d"):
        snr.energy_snr(torch.randn(3, 2, 1, 4, 4))
    with pytest.raises(ValueError, match="unknown SNR measure 'psnr'"):
        snr.snr(torch.randn(3, 2, 4, 4), "psnr")
    with pytest.raises(ValueError, match="M=9 is outside 2…4"):
        snr.snr_vs_m(torch.randn(4, 1, 4, 4), [9])


def test_rank_agreement_by_hand():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    rho = snr.rank_agreement({"x": a, "y": a ** 3, "z": -a})  # same order, same order (monotone), reversed
    assert rho.shape == (3, 3)
    assert torch.allclose(rho, torch.tensor([[1.0, 1, -1], [1, 1, -1], [-1, -1, 1]], dtype=torch.float64))
    two = snr.rank_agreement({"x": a, "y": torch.tensor([2.0, 1.0, 3.0, 4.0])})
    assert two.shape == (2, 2) and math.isclose(two[0, 1].item(), 0.8)  # 1 - 6·2/(4·15)
    with pytest.raises(ValueError, match="at least two methods"):
        snr.rank_agreement({"x": a})
