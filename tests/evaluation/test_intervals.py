import math

import pytest
import torch

from helpers.evaluation import intervals
from helpers.evaluation.intervals import Interval, draws, percentile, verdict


def test_interval_formats_and_excludes():
    iv = Interval(0.5, 0.25, 0.75, 0.9)
    assert f"{iv:.2f}" == "0.50 [0.25, 0.75]" and str(iv) == "0.50 [0.25, 0.75]" and f"{iv:.0%}" == "50% [25%, 75%]"
    assert iv.excludes(0.0) and not iv.excludes(0.5) and not Interval(1.0, math.nan, math.nan).excludes(0.0)


def test_verdict_picks_by_the_interval():
    assert verdict(Interval(1.0, 0.2, 1.5), "up", "down", "same") == "up"
    assert verdict(Interval(-1.0, -1.5, -0.1), "up", "down", "same") == "down"
    assert verdict(Interval(0.1, -0.2, 0.4), "up", "down", "same") == "same"


def test_percentile_known_answer_and_nan_handling():
    iv = percentile(0.5, torch.linspace(0, 1, 101), level=0.9)
    assert abs(iv.low - 0.05) < 1e-6 and abs(iv.high - 0.95) < 1e-6 and iv.point == 0.5
    assert math.isnan(percentile(0.5, torch.tensor([float("nan")])).low)
    assert percentile(0.5, torch.tensor([float("nan"), 0.2, 0.4]), level=0.5).low > 0.2
    with pytest.raises(ValueError, match="coverage between 0 and 1"):
        percentile(0.0, torch.zeros(3), level=1.5)


def test_draws_resample_models_and_images_with_replacement():
    models, images = draws(5, 7, n_boot=400, seed=3)
    assert models.shape == (400, 5) and images.shape == (400, 7)
    assert models.min() == 0 and models.max() == 4 and images.max() == 6
    repeats = sum(len(set(r.tolist())) < 5 for r in models)
    assert 0.9 * 400 < repeats  # with replacement: P(no repeat among 5 of 5) = 5!/5^5 ≈ 0.04
    again = draws(5, 7, n_boot=400, seed=3)
    assert torch.equal(again[0], models) and torch.equal(again[1], images)


def test_table_interval_picks_the_procedure_and_the_jackknife_widens_with_few_models():
    gen = torch.Generator().manual_seed(3)
    v = torch.randn(3, 30, generator=gen, dtype=torch.float64) * 0.2 + torch.randn(3, 1, generator=gen,
                                                                                   dtype=torch.float64)
    boot = intervals.table_interval(v, 500, 0.9, 0, "bootstrap")
    jack = intervals.table_interval(v, 500, 0.9, 0, "jackknife-t")
    assert boot.point == pytest.approx(jack.point) == pytest.approx(float(v.mean()))
    assert jack.high - jack.low > boot.high - boot.low  # t with 2 df against a bootstrap over 3 models
    with pytest.raises(ValueError, match="procedure='bca'"):
        intervals.table_interval(v, procedure="bca")
    with pytest.raises(ValueError, match="≥ 2 models"):
        intervals.mean_jackknife(v[:1])
