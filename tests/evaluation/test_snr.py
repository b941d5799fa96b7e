import math

import pytest
import torch

from helpers.evaluation import intervals, snr


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (tests/conftest.py)


def _zoo(m: int, n: int = 8, size: int = 16, theta: float | torch.Tensor = 1.0, sigma: float = 1.0, seed: int = 0,
         model_scale: float = 0.0, noise_seed: int | None = None) -> torch.Tensor:
    """Maps μ_n + σ_m ε_mn (float64) whose single-model SNR ‖μ_c‖² / E tr Σ is ``theta`` (per image if a tensor).

    μ is centred and scaled so that ‖μ‖² = θ σ² (P − 1): centring leaves the noise P − 1 dimensions of variance σ².
    ``model_scale`` > 0 gives each model its own noise variance σ² exp(s z − s²/2) (mean σ²). ``noise_seed``
    draws fresh noise for the same signal (a second method on the same images)."""
    gen = torch.Generator().manual_seed(seed)
    p = size * size
    theta = torch.as_tensor(theta, dtype=torch.float64).expand(n)
    mu = snr.centre(torch.randn(n, size, size, generator=gen, dtype=torch.float64))
    mu = mu / mu.pow(2).sum((-2, -1), keepdim=True).sqrt() * (theta * sigma ** 2 * (p - 1)).sqrt().view(n, 1, 1)
    if noise_seed is not None:
        gen = torch.Generator().manual_seed(noise_seed)
    s = model_scale
    var = sigma ** 2 * torch.exp(s * torch.randn(m, generator=gen, dtype=torch.float64) - s * s / 2)
    return mu + var.sqrt().view(m, 1, 1, 1) * torch.randn(m, n, size, size, generator=gen, dtype=torch.float64)


def test_energy_snr_by_hand():
    # Two models, one image of 1×2 pixels: [1, 3] and [3, 1]. Centred: [−1, 1] and [1, −1]. The old uncentred SNR
    # called the shared mean (2, 2) signal and gave 2; the maps point in opposite directions: G = [[2, −2], [−2, 2]],
    # signal = mean ⟨a_i, a_j⟩ over i ≠ j = −2, noise = ‖a_1 − a_2‖²/2 = 4, SNR = −1/2.
    two = torch.tensor([[[[1.0, 3.0]]], [[[3.0, 1.0]]]])
    assert torch.allclose(snr.energy_snr(two), torch.tensor([-0.5], dtype=torch.float64))
    # Three models: [3, 1], [5, 1], [4, 6] -> centred c = [1, −1], [2, −2], [−1, 1].
    # Gram: G11 = 2, G22 = 8, G33 = 2, G12 = 4, G13 = −2, G23 = −4.
    # ā = [2/3, −2/3], ‖ā‖² = 8/9; pixel 1 takes 1, 2, −1: unbiased variance 7/3, pixel 2 the same: tr Σ̂ = 14/3.
    # signal = 8/9 − (14/3)/3 = −2/3 (= (4 − 2 − 4)/3, the mean off-diagonal G); SNR = (−2/3)/(14/3) = −1/7.
    three = torch.tensor([[[[3.0, 1.0]]], [[[5.0, 1.0]]], [[[4.0, 6.0]]]])
    g = torch.tensor([[[2.0, 4.0, -2.0], [4.0, 8.0, -4.0], [-2.0, -4.0, 2.0]]], dtype=torch.float64)
    assert torch.allclose(snr.gram(three), g)
    assert torch.allclose(snr.energy_snr(three), torch.tensor([-1 / 7], dtype=torch.float64))
    assert torch.allclose(snr.energy_snr(g), torch.tensor([-1 / 7], dtype=torch.float64))  # from the Gram matrix
    # scale="rms": the centred maps become [1, −1], [1, −1], [−1, 1]; signal (2 − 2 − 2)/3 = −2/3,
    # noise (0 + 4 + 4)/3 = 8/3, SNR = −1/4 = ρ̄/(1 − ρ̄) with the pairwise correlations 1, −1, −1 (ρ̄ = −1/3).
    assert torch.allclose(snr.energy_snr(three, scale="rms"), torch.tensor([-0.25], dtype=torch.float64))
    assert snr.snr_of_mean(-0.25, 3) == -0.75


def test_rms_scaled_snr_is_the_pairwise_correlation_in_other_units():
    maps = _zoo(6, n=4, size=5, theta=0.5, seed=11) * torch.tensor([1.0, 3, 0.5, 2, 1, 7]).view(6, 1, 1, 1)
    rho = snr.pairwise_correlation(maps)  # helpers.metrics, a separate code path
    assert torch.allclose(snr.energy_snr(maps, scale="rms"), rho / (1 - rho))
    assert torch.allclose(snr.snr(maps, "energy", scale="rms"), rho / (1 - rho))
    assert not torch.allclose(snr.energy_snr(maps), rho / (1 - rho), rtol=0.05)  # unscaled: big maps weigh more


def test_known_snr_is_recovered_at_24_models():
    for theta in (0.25, 1.0, 4.0):
        maps = _zoo(24, n=16, theta=theta, sigma=3.0, seed=int(theta * 8))
        got = snr.energy_snr(maps).mean().item()
        assert got == pytest.approx(theta, rel=0.05), (theta, got)
        single = snr.energy_snr(maps.float()).mean().item()  # float32 maps give the same answer
        assert single == pytest.approx(got, rel=1e-4)


def test_constant_offset_is_not_signal():
    noise = _zoo(24, n=40, theta=0.0, seed=5)
    offset = noise + 5.0 + torch.randn(24, 1, 1, 1, generator=torch.Generator().manual_seed(1))  # shared + per seed
    pure, shifted = snr.energy_snr(noise), snr.energy_snr(offset)
    assert torch.allclose(shifted, pure)
    assert abs(shifted.mean().item()) < 0.01
    assert 0.2 < (shifted < 0).double().mean().item() < 0.8  # pure noise scatters around 0; negatives are kept
    # what this guards against: the old statistic (no centring, unit RMS, +1/M kept) calls the offset signal
    a = snr.unit_rms(offset)
    old = a.mean(0).pow(2).sum((-2, -1)) / a.var(0).sum((-2, -1))
    assert old.mean().item() > 10


def test_expected_snr_does_not_depend_on_m():
    pool = _zoo(240, n=8, theta=0.5, seed=7)  # disjoint zoos of 4 and of 24 models, same images
    small = torch.stack([snr.energy_snr(z) for z in pool.split(4)]).mean().item()
    large = torch.stack([snr.energy_snr(z) for z in pool.split(24)]).mean().item()
    assert small == pytest.approx(large, rel=0.04), (small, large)
    assert small == pytest.approx(0.5, rel=0.05) and large == pytest.approx(0.5, rel=0.05)
    # the SNR of the mean of M maps is M times it: check on means of 4 maps (a zoo of 60 "models")
    means = pool.view(60, 4, 8, 16, 16).mean(1)
    assert snr.energy_snr(means).mean().item() == pytest.approx(snr.snr_of_mean(large, 4), rel=0.05)


def test_pairwise_correlation_and_split_half_by_hand():
    a = torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 1, 3)
    maps = torch.cat([a, a * 2, -a])  # correlations: (1,2)=1, (1,3)=-1, (2,3)=-1
    assert torch.allclose(snr.pairwise_correlation(maps), torch.tensor([-1 / 3]))
    twins = torch.cat([a, a + 4, a, a * 3])  # every centred map points the same way
    assert torch.allclose(snr.split_half(twins, n_splits=3), torch.ones(1, dtype=torch.float64))
    # M = 1: one model against another, each of the three pairs equally likely: mean correlation −1/3
    assert snr.split_half_curve(maps, [1], n_draws=3000).item() == pytest.approx(-1 / 3, abs=0.03)


def test_split_half_of_pure_noise_stays_near_zero():
    curve = snr.split_half_curve(_zoo(24, n=10, theta=0.0, seed=3), [1, 2, 4, 8, 12], n_draws=20)
    assert curve.mean(1).abs().max().item() < 0.03, curve.mean(1)


def test_split_half_follows_spearman_brown_for_independent_noise():
    ms = [1, 2, 4, 8, 12]
    curve = snr.split_half_curve(_zoo(24, n=10, theta=0.25, seed=4), ms, n_draws=20).mean(1)
    rho1 = 0.25 / 1.25  # ‖μ‖² / (‖μ‖² + tr Σ)
    expected = torch.tensor([m * rho1 / (1 + (m - 1) * rho1) for m in ms], dtype=torch.float64)
    assert torch.allclose(curve, expected, atol=0.04), (curve, expected)
    half = snr.split_half(_zoo(24, n=10, theta=0.25, seed=4))
    assert half.mean().item() == pytest.approx(0.75, abs=0.04)
    assert (snr.split_half(_zoo(24, n=10, theta=0.25, seed=4), spearman_brown=True) > half).all()


def test_interval_format_excludes_and_verdict():
    iv = intervals.Interval(1.234, 1.1, 1.37, 0.9)
    assert str(iv) == "1.23 [1.10, 1.37]" and f"{iv:.1f}" == "1.2 [1.1, 1.4]"
    assert iv.excludes(0) and iv.excludes(1.5) and not iv.excludes(1.2)
    assert intervals.verdict(iv, "A is noisier", "B is noisier", "no difference") == "A is noisier"
    assert intervals.verdict(intervals.Interval(-1, -2, -0.5, 0.9), "up", "down", "same") == "down"
    assert intervals.verdict(intervals.Interval(0.1, -0.2, 0.4, 0.9), "up", "down", "same") == "same"


def test_bootstrap_replicates_are_centred_on_the_estimate():
    # a bootstrap sample repeats models; counting a model paired with its own copy would put the replicates about
    # (1 + SNR) / M ≈ 25 % above the estimate here
    g = snr.gram(_zoo(8, n=20, size=8, theta=1.0, seed=9))
    point = snr.energy_snr(g).mean().item()
    reps = snr._replicates([g], 2000, seed=0)[0]
    assert reps.mean().item() == pytest.approx(point, rel=0.04)
    iv = snr.bootstrap_snr(g, n_boot=2000)
    assert iv.point == point and iv.low < point < iv.high


def test_interval_coverage_is_close_to_nominal():
    # 200 synthetic zoos, 16 models whose noise level differs, 30 images whose SNR differs (uniform 0.2…1.8): the
    # true mean SNR is 1. Measured: 0.885 at level 0.9 (percentile; basic 0.88, bias-corrected 0.895).
    gen = torch.Generator().manual_seed(1)
    hits = 0
    for z in range(200):
        theta = 0.2 + 1.6 * torch.rand(30, generator=gen, dtype=torch.float64)
        maps = _zoo(16, n=30, size=6, theta=theta, seed=1000 + z, model_scale=0.3)
        iv = snr.bootstrap_snr(snr.gram(maps), n_boot=400, level=0.9, seed=z)
        hits += iv.low <= 1.0 <= iv.high
    assert 0.8 <= hits / 200 <= 0.97, hits / 200


def test_compare_detects_a_difference_and_not_a_fake_one():
    noisy = _zoo(12, n=10, size=8, theta=0.5, seed=12)
    clean = _zoo(12, n=10, size=8, theta=2.0, seed=12, noise_seed=13)  # same signal, half the noise amplitude
    iv = snr.compare(clean, noisy, n_boot=500)
    assert iv.point == pytest.approx(1.5, abs=0.3) and iv.low > 0
    assert intervals.verdict(iv, "A is less noisy", "A is noisier", "no difference") == "A is less noisy"
    assert intervals.verdict(snr.compare(noisy, clean, n_boot=500), "A is less noisy", "A is noisier", "?") == "A is noisier"
    # identically distributed methods (same signal, same noise level, fresh noise): the interval contains 0 in
    # about 90 % of zoos
    contains = sum(not snr.compare(_zoo(12, n=10, size=8, theta=0.5, seed=100 + s),
                                   _zoo(12, n=10, size=8, theta=0.5, seed=100 + s, noise_seed=500 + s),
                                   n_boot=300, seed=s).excludes(0) for s in range(30))
    assert contains >= 24, contains


def test_compare_is_paired():
    # B is A plus a little extra noise: their SNRs move together over resampled models and images, so the paired
    # interval of the difference is far narrower than the interval of either SNR
    a = _zoo(12, n=10, size=8, theta=0.5, seed=21, model_scale=0.5)
    b = a + 0.1 * _zoo(12, n=10, size=8, theta=0.0, seed=22)
    diff, alone = snr.compare(a, b, n_boot=500), snr.bootstrap_snr(a, n_boot=500)
    assert (diff.high - diff.low) < 0.2 * (alone.high - alone.low), (diff, alone)


def test_contrast_of_two_zoos_recovers_the_difference_and_accepts_different_sizes():
    # trained-like zoo (SNR 2) and untrained-like zoo (SNR 0.5) of different sizes on the same images
    trained = _zoo(16, n=12, size=8, theta=2.0, seed=31)
    untrained = _zoo(10, n=12, size=8, theta=0.5, seed=31, noise_seed=32)
    iv = snr.contrast(trained, untrained, n_boot=500)
    assert iv.point == pytest.approx(1.5, abs=0.35) and iv.low > 0.5 and iv.low <= iv.point <= iv.high
    assert iv.point == pytest.approx((snr.energy_snr(trained).mean() - snr.energy_snr(untrained).mean()).item())
    back = snr.contrast(untrained, trained, n_boot=500)
    assert back.point == pytest.approx(-iv.point) and back.high < -0.5
    # grams are accepted and give the same answer
    assert snr.contrast(snr.gram(trained), snr.gram(untrained), n_boot=500) == iv
    with pytest.raises(ValueError, match="same images"):
        snr.contrast(trained, untrained[:, :5])


def test_contrast_can_fail_and_is_paired_over_images():
    # two zoos of the same kind (same signal, fresh noise, other models): the interval contains 0 in most zoos
    contains = sum(not snr.contrast(_zoo(12, n=10, size=8, theta=0.5, seed=200 + s),
                                    _zoo(8, n=10, size=8, theta=0.5, seed=200 + s, noise_seed=600 + s),
                                    n_boot=300, seed=s).excludes(0) for s in range(30))
    assert contains >= 24, contains
    # images differ a lot in SNR but equally in both zoos: resampling the images once for both cancels that spread,
    # so the contrast's interval is much narrower than either zoo's own interval
    theta = torch.linspace(0.2, 4.0, 12)
    a = _zoo(24, n=12, size=8, theta=theta, seed=41)
    b = _zoo(24, n=12, size=8, theta=theta, seed=41, noise_seed=42)
    diff, alone = snr.contrast(a, b, n_boot=500), snr.bootstrap_snr(a, n_boot=500)
    assert (diff.high - diff.low) < 0.3 * (alone.high - alone.low), (diff, alone)


def test_pairwise_contrast_is_the_agreement_contrast():
    from helpers.evaluation import agreement

    trained = _zoo(12, n=10, size=8, theta=2.0, seed=51, model_scale=0.5)
    untrained = _zoo(8, n=10, size=8, theta=0.2, seed=51, noise_seed=52)
    iv = snr.contrast(trained, untrained, n_boot=500, measure="pairwise")
    ref = agreement.contrast(trained, untrained, n_boot=500)["pairwise"]
    assert iv.point == pytest.approx(ref.point, abs=1e-9)
    assert iv.low == pytest.approx(ref.low, abs=0.05) and iv.high == pytest.approx(ref.high, abs=0.05)
    with pytest.raises(ValueError, match="measure"):
        snr.contrast(trained, untrained, measure="energy")


def test_split_half_intervals_cover_the_curve():
    ms = [1, 4, 8]
    rho1 = 0.25 / 1.25
    ivs = snr.split_half_intervals(_zoo(16, n=12, size=8, theta=0.25, seed=31), ms, n_draws=10, n_boot=300)
    for m, iv in zip(ms, ivs):
        assert iv.low < m * rho1 / (1 + (m - 1) * rho1) < iv.high, (m, iv)
        assert iv.high - iv.low < 0.3
    # a bootstrap sample repeats models; halves sharing a model would agree by construction (replicates ≈ 0.07
    # above the estimate here), and dropping such pairs as if worth 0 would put them ≈ 0.02–0.03 below
    g = snr.gram(_zoo(16, n=12, size=8, theta=0.25, seed=31))
    point = snr.split_half_curve(g, [4, 8], n_draws=10).mean(1)
    assert torch.allclose(snr._boot_curves(g, [4, 8], 10, 300, seed=0).mean(1), point, atol=0.015)


def test_models_needed_measured_and_extrapolated():
    # SNR 0.5 per model: the mean of M models correlates M·0.5 / (1 + M·0.5) with the mean of M others,
    # which reaches 0.9 at M = 0.9 / (0.5 · 0.1) = 18
    measured = snr.models_needed(_zoo(48, n=8, theta=0.5, seed=41), r=0.9, n_draws=5, n_boot=50)
    assert not measured.extrapolated and measured.measured_up_to == 24
    assert 16 <= measured.point <= 20 and measured.low - 1 <= 18 <= measured.high + 1, measured
    # 16 models measure the curve up to M = 8 (ρ_8 = 0.8): Spearman–Brown needs k = 0.9·0.2/(0.8·0.1) = 2.25 → 18
    extrapolated = snr.models_needed(_zoo(16, n=8, theta=0.5, seed=42), r=0.9, n_draws=10, n_boot=100)
    assert extrapolated.extrapolated and extrapolated.measured_up_to == 8
    assert 15 <= extrapolated.point <= 21 and extrapolated.low - 1 <= 18 <= extrapolated.high + 1, extrapolated
    assert "extrapolated beyond M = 8" in str(extrapolated)
    # pure noise never gets there
    assert snr.models_needed(_zoo(16, n=8, theta=0.0, seed=43), n_draws=10, n_boot=20).point > 500


def test_per_class_means_and_missing_classes():
    values = torch.tensor([1.0, 3.0, 5.0, 7.0])
    labels = torch.tensor([0, 0, 2, 2])
    out = snr.per_class(values, labels, 3)
    assert out[0] == 2 and out[2] == 6 and math.isnan(out[1])


def test_per_class_intervals():
    theta = torch.tensor([0.25] * 6 + [2.0] * 6, dtype=torch.float64)
    maps = _zoo(12, n=12, size=8, theta=theta, seed=51)
    labels = torch.tensor([0] * 6 + [2] * 6)
    low, empty, high = snr.per_class_intervals(maps, labels, 3, n_boot=300)
    assert low.low < 0.25 < low.high and high.low < 2.0 < high.high and low.high < high.low
    assert math.isnan(empty.point) and not empty.excludes(0)


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="at least 2 models"):
        snr.energy_snr(torch.randn(1, 2, 4, 4))
    with pytest.raises(ValueError, match="at least 2 models"):
        snr.bootstrap_snr(torch.randn(1, 2, 4, 4))
    with pytest.raises(ValueError, match="to_2d"):
        snr.energy_snr(torch.randn(3, 2, 1, 4, 4))
    with pytest.raises(ValueError, match="to_2d"):
        snr.energy_snr(torch.randn(3, 4, 5))  # (M, H, W): the image axis is missing
    with pytest.raises(ValueError, match="unknown SNR measure 'psnr'"):
        snr.snr(torch.randn(3, 2, 4, 4), "psnr")
    with pytest.raises(ValueError, match=r"M=3 is outside 1…2 .*n_models // 2"):
        snr.split_half_curve(torch.randn(5, 1, 4, 4), [1, 3])
    with pytest.raises(ValueError, match="same models and images"):
        snr.compare(torch.randn(4, 2, 4, 4), torch.randn(5, 2, 4, 4))
    with pytest.raises(ValueError, match=r"level must lie in \(0, 1\)"):
        snr.bootstrap_snr(torch.randn(4, 2, 4, 4), level=90)
    with pytest.raises(ValueError, match="unknown scale 'max'"):
        snr.gram(torch.randn(4, 2, 4, 4), scale="max")


def test_rank_agreement_by_hand():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    rho = snr.rank_agreement({"x": a, "y": a ** 3, "z": -a})  # same order, same order (monotone), reversed
    assert rho.shape == (3, 3)
    assert torch.allclose(rho, torch.tensor([[1.0, 1, -1], [1, 1, -1], [-1, -1, 1]], dtype=torch.float64))
    two = snr.rank_agreement({"x": a, "y": torch.tensor([2.0, 1.0, 3.0, 4.0])})
    assert two.shape == (2, 2) and math.isclose(two[0, 1].item(), 0.8)  # 1 - 6·2/(4·15)
    with pytest.raises(ValueError, match="at least two methods"):
        snr.rank_agreement({"x": a})
