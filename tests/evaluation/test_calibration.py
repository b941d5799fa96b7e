"""The calibration simulation: it knows the truth, it can fail a design, the batched simulation computes what the
chapters' own interval functions compute, and the jackknife-t interval keeps its coverage where the percentile
multi-bootstrap does not."""
from __future__ import annotations

import pytest
import torch

from helpers.evaluation import calibration as cal
from helpers.evaluation.agreement import _pair_means, pairwise_jackknife
from helpers.evaluation.correlation import correlation_matrix, mean_pairwise_correlation
from helpers.evaluation.intervals import mean_interval


def test_the_truth_is_what_many_zoos_measure_on_average():
    """The mean over 20 zoos of 40 models × 150 images (each zoo a sample of seeds and images) is the truth."""
    gen = torch.Generator().manual_seed(3)
    zoos = [float(mean_pairwise_correlation(cal.synthetic_maps(40, 150, gen)).mean()) for _ in range(20)]
    assert abs(sum(zoos) / len(zoos) - cal.true_pairwise()) < 0.015
    assert max(zoos) - min(zoos) > 0.02  # one zoo alone is a noisy estimate: the seeds are a sample too


def test_correlations_drawn_from_their_law_match_correlations_of_pixel_maps():
    """The exact draw of :func:`cal._corr` (no pixels) against maps drawn pixel by pixel, at fixed noise scales:
    same mean and spread of the correlation, and the same population truth."""
    sigma = torch.tensor([0.5, 1.0, 2.5], dtype=torch.float64)
    k = 4000
    r = torch.distributions.Chi2(torch.tensor(float(cal.PIXELS - 1))).sample((k, 1)).double().sqrt()
    torch.manual_seed(0)
    drawn = cal._corr(sigma.expand(k, 1, 3), r)[:, 0]  # (k, 3, 3)
    gen = torch.Generator().manual_seed(1)
    s = torch.randn(k, 1, cal.PIXELS, generator=gen, dtype=torch.float64)
    maps = s + sigma[None, :, None] * torch.randn(k, 3, cal.PIXELS, generator=gen, dtype=torch.float64)
    pixels = correlation_matrix(maps.permute(1, 0, 2)[..., None])  # (k, 3, 3)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        a, b = drawn[:, i, j], pixels[:, i, j]
        se = (a.var() / k + b.var() / k).sqrt()
        assert abs(a.mean() - b.mean()) < 4 * se, (i, j)
        assert abs(a.std() / b.std() - 1) < 0.08, (i, j)
    assert torch.allclose(torch.diagonal(drawn, dim1=-2, dim2=-1), torch.ones(k, 3, dtype=torch.float64))
    assert cal.true_pairwise(60_000, pixels=True) == pytest.approx(cal.true_pairwise(), abs=2.5e-3)


def _corr_of(maps: torch.Tensor) -> torch.Tensor:
    return correlation_matrix(maps).double()[None]  # (1, N, M, M)


def test_batched_jackknife_is_the_chapters_jackknife():
    gen = torch.Generator().manual_seed(0)
    a, b = cal.synthetic_maps(5, 4, gen), cal.synthetic_maps(5, 4, gen, 2.0)
    for got, want in ((cal._pair_jack_interval(_corr_of(a), None, 0.9), pairwise_jackknife(a)),
                      (cal._pair_jack_interval(_corr_of(a), _corr_of(b), 0.9), pairwise_jackknife(a, b))):
        assert [float(x) for x in got] == pytest.approx([want.point, want.low, want.high], abs=1e-6)


def test_batched_bootstrap_replicates_are_the_chapters_replicates():
    """Replicate b of :func:`cal._pair_reps` is agreement._pair_means over the drawn models, averaged over the
    drawn images (as pairwise_interval computes it); a draw of one model only is NaN, not ±inf."""
    gen = torch.Generator().manual_seed(0)
    maps = cal.synthetic_maps(3, 5, gen)
    corr = correlation_matrix(maps).double()
    wm, wi = cal._counts(1, 300, 3, gen), cal._counts(1, 300, 5, gen)
    got = cal._pair_reps(corr[None], wm, wi)[0]
    want = (_pair_means(corr, wm[0]) * wi[0]).sum(1) / 5
    single = (wm[0] > 0).sum(1) == 1
    assert single.any() and torch.isnan(got[single]).all() and not torch.isinf(got).any()
    assert torch.allclose(got[~single], want[~single], atol=1e-5)
    v = cal.synthetic_table(4, 6, gen)
    _, lo, hi = cal._table_boot(v[None], torch.ones(1, 1, 4, dtype=torch.float64),
                                torch.ones(1, 1, 6, dtype=torch.float64), 0.9)  # replicate = the table itself
    assert float(lo) == pytest.approx(float(v.mean())) and float(hi) == pytest.approx(float(v.mean()))


def test_table_jackknife_known_answer_and_limits():
    v = torch.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])  # row means 2, 4; column means 2, 3, 4
    iv = cal.table_jackknife(v)
    from scipy.stats import t

    half = t.ppf(0.95, 1) * (2.0 / 2 + 1.0 / 3) ** 0.5  # s²(rows) = 2, s²(columns) = 1
    assert iv.point == 3.0 and iv.high - iv.point == pytest.approx(half)
    with pytest.raises(ValueError, match="needs ≥ 2 models and ≥ 2 images"):
        cal.table_jackknife(v[:1])


def test_simulate_is_deterministic_and_agrees_with_the_loop_through_the_chapters_functions():
    """The batched simulation draws other numbers than the one-zoo-at-a-time loop (which calls the chapters'
    pairwise_interval, pairwise_difference, mean_interval), but the same model: equal rates within Monte Carlo
    error."""
    d = cal.Design("table", "mean", 4, 5, n_boot=100)
    fast = cal.simulate(d, 400, seed=2)
    assert fast == cal.simulate(d, 400, seed=2) and fast != cal.simulate(d, 400, seed=3)
    slow = cal.simulate_loop(d, 60, seed=2)
    se = (fast.coverage * (1 - fast.coverage) / 60) ** 0.5
    assert abs(fast.coverage - slow.coverage) < 3.5 * se + 0.02
    assert abs(fast.power - slow.power) < 0.2
    iv = mean_interval(cal.synthetic_table(4, 5, torch.Generator().manual_seed(0)), 100)
    assert iv.low < iv.point < iv.high


def test_a_deliberately_small_design_fails_and_a_large_one_passes():
    small = cal.simulate(cal.Design("tiny", "pairwise", 3, 3, n_boot=100), n_sim=200)
    assert small.coverage < cal.MIN_COVERAGE and not small.ok()
    with pytest.raises(ValueError, match=r"^designs that fail calibration: tiny \(M=3, N=3\): coverage 0\.\d\d ± 0\.\d\d "
                                         r"of the 90% bootstrap intervals .*: use more images or models$"):
        cal.check([small])
    big = cal.simulate(cal.Design("jackknife", "pairwise", 24, 30, interval="jackknife-t"), n_sim=200)
    assert big.ok() and big.power > 0.9
    cal.check([big])


def test_the_null_is_a_null_and_the_alternative_is_found():
    for interval in cal.INTERVALS:
        r = cal.simulate(cal.Design("table", "mean", 12, 30, n_boot=200, interval=interval), n_sim=300)
        assert r.false_verdicts <= 0.1 and r.power > 0.9 and r.coverage > 0.8, interval


def test_jackknife_t_keeps_the_coverage_where_the_bootstrap_loses_it():
    """Few images (24 models × 3 images, chapter 2's old design): the percentile multi-bootstrap undercovers, the
    two-way jackknife-t does not."""
    boot = cal.simulate(cal.Design("few", "pairwise", 24, 3), 300)
    jack = cal.simulate(cal.Design("few", "pairwise", 24, 3, interval="jackknife-t"), 300)
    assert boot.coverage < cal.MIN_COVERAGE <= jack.coverage
    assert jack.coverage - boot.coverage > 3 * (boot.coverage_se ** 2 + jack.coverage_se ** 2) ** 0.5


def test_jackknife_difference_is_zero_for_identical_maps_and_matches_the_point():
    gen = torch.Generator().manual_seed(0)
    a = cal.synthetic_maps(5, 4, gen)
    same = pairwise_jackknife(a, a)
    assert same.point == 0 and same.low == same.high == 0
    iv = pairwise_jackknife(a)
    assert iv.point == pytest.approx(float(mean_pairwise_correlation(a).mean()), abs=1e-6) and iv.low < iv.point
    with pytest.raises(ValueError, match="needs ≥ 3 models and ≥ 2 images"):
        pairwise_jackknife(a[:2])
    with pytest.raises(ValueError, match="needs ≥ 3 models"):
        cal.simulate(cal.Design("two", "pairwise", 2, 6, interval="jackknife-t"), 10)


def test_simulate_keeps_its_result_in_the_cache_and_replaces_a_bad_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path))
    d = cal.Design("cached", "mean", 4, 6)
    first = cal.simulate(d, 20, seed=1)
    files = list((tmp_path / "cache" / "calibration").glob("*.json"))
    assert len(files) == 1
    assert cal.simulate(d, 20, seed=1).coverage == first.coverage
    files[0].write_text("{not json")
    again = cal.simulate(d, 20, seed=1)
    assert again.coverage == first.coverage and again.false_verdicts == first.false_verdicts
    assert cal.simulate(d, 20, seed=1, cache=False).power == first.power
    cal.simulate(d, 20, seed=2)  # another seed is another entry
    assert len(list((tmp_path / "cache" / "calibration").glob("*.json"))) == 2
