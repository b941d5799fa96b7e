"""Chapter 6's claim that baselines change the maps has an effect-size threshold and a negative control."""
from __future__ import annotations

import torch

from helpers.chapters import ch06_baselines as ch06


def _corr(value, k=2, m=2, n=30, spread=0.01):
    return value + spread * torch.randn(k, m, n, generator=torch.Generator().manual_seed(0))


def test_a_tiny_shift_is_not_a_change_and_a_real_change_is():
    out = ch06.divergence_summary(_corr(0.6), _corr(0.7), n_boot=200, control=_corr(0.998, spread=0.001))
    assert out["maps_moved"] == "confirmed" and out["control_moved"] == "not confirmed"


def test_a_change_no_larger_than_the_control_is_not_confirmed():
    out = ch06.divergence_summary(_corr(0.88), _corr(0.7), n_boot=200, control=_corr(0.875))
    assert out["maps_moved"] == "not confirmed"
    text = ch06.claims_text(out, {f"tau_{k}_min_high": 1.0 for k in ("deletion", "insertion", "aopc")} |
                            {f"distinct_{k}": 1 for k in ("deletion", "insertion", "aopc")},
                            {k: "+" for k in ("code_del_others", "code_ins_others", "code_del_blur", "code_ins_blur")} |
                            {k: "0.1" for k in ("gain_del_others", "gain_ins_others", "gain_del_blur", "gain_ins_blur")})
    assert "baselines change the maps: **not confirmed**" in text and "δ = 0.05" in text


def test_a_hyperparameter_within_the_methods_own_sampling_noise_does_not_count():
    g = torch.Generator().manual_seed(1)
    sweep = torch.randn(2, 1, 2, 30, 8, 8, generator=g)  # (values, baselines, models, images, H, W): unrelated maps
    seeds = torch.full((1, 2, 30), 0.9)  # the seed agreement is high
    rows, glue = ch06.hyper_rows({("rise", "n_masks"): sweep}, {"rise": {"n_masks": [50, 100]}}, ["rise"], seeds,
                                 n_boot=200)
    assert glue["n_hyper_more"] == 1  # against the seeds alone: the values diverge
    noisy = {"rise": torch.zeros(2, 30) + 0.01 * torch.randn(2, 30, generator=g)}  # two method seeds disagree as much
    rows, glue = ch06.hyper_rows({("rise", "n_masks"): sweep}, {"rise": {"n_masks": [50, 100]}}, ["rise"], seeds,
                                 n_boot=200, monte_carlo=noisy)
    assert glue["n_hyper_more"] == 0 and rows[0]["difference to it"] != "—"
