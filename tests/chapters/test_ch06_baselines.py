"""Chapter 6's claim that baselines change the maps has an effect-size threshold and a negative control."""
from __future__ import annotations

import pytest
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


def test_yardstick_numbers_show_what_a_shared_method_seed_adds():
    g = torch.Generator().manual_seed(2)
    yard = {"shared": torch.stack([torch.full((6, 30), 0.8), torch.full((6, 30), 0.5)]) + 0.01 * torch.randn(2, 6, 30,
                                                                                                        generator=g),
            "independent": torch.stack([torch.full((6, 30), 0.3), torch.full((6, 30), 0.5)])
            + 0.01 * torch.randn(2, 6, 30, generator=g),
            "monte_carlo": {"rise": torch.full((6, 30), 0.35)}}
    rows, glue = ch06.yardstick_numbers(["rise", "occlusion"], yard, n_boot=200)
    assert [r["method"] for r in rows] == ["rise"]  # only the sampled method has a seed to share
    assert glue["rise_share_code"] == "+" and glue["rise_share_verdict"].startswith("sharing the method seed raises")
    assert glue["rise_shared"].startswith("0.80") and glue["rise_independent"].startswith("0.30")
    assert glue["rise_masks_only"].startswith("0.35")
    same = {**yard, "independent": yard["shared"].clone()}
    _, glue = ch06.yardstick_numbers(["rise", "occlusion"], same, n_boot=200)
    assert glue["rise_share_code"] == "0" and "no difference" in glue["rise_share_verdict"]


def test_design_numbers_state_the_yardstick_and_the_class_spread():
    d = ch06.design_numbers(6, 2, 30, 10)
    assert d["n_pairs"] == 15 and d["yardstick_note"] == "" and d["spread"] == "3 of each of the 10 classes"
    small = ch06.design_numbers(2, 2, 3, 10)
    assert small["n_pairs"] == 1 and "fewer than the 6 models" in small["yardstick_note"]
    assert small["spread"] == "one of each of 3 of the 10 classes"
    assert ch06.spread_phrase(25, 10) == "2 or 3 of each of the 10 classes"
    with pytest.raises(ValueError, match="n_baseline_models"):
        ch06.design_numbers(6, 7, 30, 10)


def test_the_divergence_table_takes_the_seed_column_from_the_whole_yardstick():
    yard = _corr(0.3, m=6)
    rows, _ = ch06.divergence_rows(["a", "b"], _corr(0.6), yard[:, :2], n_boot=100, yardstick=yard)
    assert rows[0]["ρ across seeds"].startswith("0.30")
    out = ch06.divergence_summary(_corr(0.6), yard[:, :2], n_boot=100, yardstick=_corr(0.2, m=6))
    assert out["rho_seeds"].startswith("0.20") and out["rho_diff"].startswith("0.30")
