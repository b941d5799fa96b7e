"""The calibration simulation: it knows the truth, it can fail a design, and the jackknife-t interval keeps its
coverage where the percentile multi-bootstrap does not."""
from __future__ import annotations

import pytest
import torch

from helpers.evaluation import calibration as cal
from helpers.evaluation.agreement import pairwise_jackknife
from helpers.evaluation.correlation import mean_pairwise_correlation


def test_the_truth_is_what_many_zoos_measure_on_average():
    """The mean over 20 zoos of 40 models × 150 images (each zoo a sample of seeds and images) is the truth."""
    gen = torch.Generator().manual_seed(3)
    zoos = [float(mean_pairwise_correlation(cal.synthetic_maps(40, 150, gen)).mean()) for _ in range(20)]
    assert abs(sum(zoos) / len(zoos) - cal.true_pairwise()) < 0.015
    assert max(zoos) - min(zoos) > 0.02  # one zoo alone is a noisy estimate: the seeds are a sample too


def test_a_deliberately_small_design_fails_and_a_large_one_passes():
    small = cal.simulate(cal.Design("tiny", "pairwise", 3, 3, n_boot=100), n_sim=100)
    assert small.coverage < cal.MIN_COVERAGE and not small.ok()
    with pytest.raises(ValueError, match=r"tiny \(M=3, N=3\): coverage 0\.\d\d .*use more images or models"):
        cal.check([small])
    big = cal.simulate(cal.Design("jackknife", "pairwise", 24, 30, interval="jackknife-t"), n_sim=100)
    assert big.ok() and big.power > 0.9
    cal.check([big])


def test_the_null_is_a_null_and_the_alternative_is_found():
    r = cal.simulate(cal.Design("table", "mean", 12, 30, n_boot=200), n_sim=100)
    assert r.false_verdicts <= 0.1 and r.power > 0.9 and r.coverage > 0.8


def test_jackknife_difference_is_zero_for_identical_maps_and_matches_the_point():
    gen = torch.Generator().manual_seed(0)
    a = cal.synthetic_maps(5, 4, gen)
    same = pairwise_jackknife(a, a)
    assert same.point == 0 and same.low == same.high == 0
    iv = pairwise_jackknife(a)
    assert iv.point == pytest.approx(float(mean_pairwise_correlation(a).mean()), abs=1e-6) and iv.low < iv.point
    with pytest.raises(ValueError, match="needs ≥ 3 models and ≥ 2 images"):
        pairwise_jackknife(a[:2])


def test_designs_follow_the_profile():
    from helpers.book import trust

    got = {d.name: (d.statistic, d.n_models, d.n_images) for d in trust.designs("default")}
    assert got["01 agreement between models"] == ("pairwise", 24, 6)
    assert got["07 randomization scores (models × images)"] == ("mean", 6, 8)
    assert got["08 closeness to the held-out mean (replicates × images)"] == ("mean", 12, 30)
    smoke = {d.name: (d.n_models, d.n_images) for d in trust.designs("smoke")}
    assert smoke["01 agreement between models"] == (3, 2)
