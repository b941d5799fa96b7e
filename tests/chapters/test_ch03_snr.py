"""Chapter 3's untrained control, matched resolution and calibration glue (Woerl, Disselhoff & Wand, CVPR 2023)."""
from __future__ import annotations

import pytest
import torch

from helpers.chapters import ch03_snr
from helpers.evaluation import calibration, snr
from helpers.evaluation.intervals import Interval


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (tests/conftest.py)


def _zoo(signal: torch.Tensor, noise: float, m: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return signal + noise * torch.randn(m, *signal.shape, generator=gen)


SIGNAL = torch.randn(12, 8, 8, generator=torch.Generator().manual_seed(0))
INPUTS = SIGNAL[:, None]  # (N, 1, H, W): the "image" is the signal itself


def _control(trained: dict[str, torch.Tensor], untrained: dict[str, torch.Tensor]):
    stats = ch03_snr.method_stats(trained, n_boot=200)
    return ch03_snr.control_stats(trained, untrained, stats, INPUTS, n_boot=200)


def test_a_learned_snr_is_learned_and_an_architectural_one_is_not():
    # "learned": the trained zoo shares a signal, the untrained one is noise; "arch": both zoos share the same signal
    # (what architecture and input alone would give): the contrast is about 0 and must not come out learned
    trained = {"learned": _zoo(SIGNAL, 0.7, 12, 1), "arch": _zoo(SIGNAL, 0.7, 12, 2)}
    untrained = {"learned": _zoo(torch.zeros_like(SIGNAL), 1.0, 10, 3), "arch": _zoo(SIGNAL, 0.7, 10, 4)}
    ctl = _control(trained, untrained)
    true_snr = 1 / 0.49  # ‖μ‖² / tr Σ for unit signal pixels and noise σ = 0.7
    assert ctl["learned"]["snr_contrast"].point == pytest.approx(true_snr, rel=0.25)
    assert ctl["learned"]["snr_contrast"].point == pytest.approx(
        ctl["learned"]["snr"].point - ctl["learned"]["untrained_snr"].point)
    assert abs(ctl["arch"]["snr_contrast"].point) < 0.5 and ctl["arch"]["untrained_snr"].point > 1
    assert ctl["arch"]["untrained"].point > 0.9 and ctl["learned"]["untrained"].point < 0.3  # vs untrained mean map
    assert ctl["learned"]["input"].point > 0.9
    rows = ch03_snr.control_table(ctl, 0.2, 0.05)
    assert [r["method"] for r in rows] == ["learned", "arch"]
    assert rows[0]["verdict"] == "learned" and rows[1]["verdict"] != "learned"
    assert rows[0]["verdict (ρ)"] == "learned" and rows[1]["verdict (ρ)"] != "learned"
    out = ch03_snr.control_numbers(ctl, 0.2, 0.05)
    assert all(k.startswith("untrained_") for k in out)
    assert out["untrained_snr_order"] == "learned, arch" and out["untrained_snr_learned"] == "learned"
    assert out["untrained_n_snr_learned"] == 1 and out["untrained_snr_threshold"] == "0.20"
    assert out["untrained_snr_hi"].endswith("(arch)")


def test_class_contrast_per_class_and_its_summary():
    labels = torch.arange(12) % 3
    trained = {"g": _zoo(SIGNAL, 0.7, 10, 5)}
    untrained = {"g": _zoo(torch.zeros_like(SIGNAL), 1.0, 10, 6)}
    cc = ch03_snr.class_contrast(trained, untrained, labels, 4, n_boot=200)
    assert len(cc["g"]) == 4 and cc["g"][3].point != cc["g"][3].point  # class 3 has no images: NaN
    g0 = snr.contrast(trained["g"][:, labels == 0], untrained["g"][:, labels == 0], n_boot=200)
    assert cc["g"][0].point == pytest.approx(g0.point) and all(iv.low > 0.2 for iv in cc["g"][:3])
    text = ch03_snr.class_contrast_numbers(cc, 0.2)["untrained_class_summary"]
    assert text == "g: learned in 3, not learned in 0, left open in 0 of 3 classes"


def test_pooling_lifts_a_pixel_noise_method_above_a_patch_method_and_the_sentence_says_so():
    # "pixel": a 4×4-block signal plus large pixel noise; "patch": a 4×4-block map with block-level noise. Natively
    # the patch map has the higher SNR; pooled to 4×4 blocks the pixel noise averages away and the order swaps.
    gen = torch.Generator().manual_seed(7)
    blocks = torch.randn(12, 2, 2, generator=gen)
    up = lambda t: t.repeat_interleave(4, -2).repeat_interleave(4, -1)
    pixel = up(blocks) + 2.0 * torch.randn(16, 12, 8, 8, generator=gen)
    patch = up(blocks + 0.9 * torch.randn(16, 12, 2, 2, generator=gen))
    maps = {"pixel": pixel, "patch": patch}
    native = ch03_snr.method_stats(maps, n_boot=200)
    pooled_maps, pooled = ch03_snr.pooled_stats(maps, 4, n_boot=200)
    assert torch.allclose(up(pooled_maps["patch"]), patch)  # a map made of 4×4 patches loses nothing
    assert pooled_maps["pixel"].shape == (16, 12, 2, 2)
    assert native["patch"]["snr"].point > native["pixel"]["snr"].point
    assert pooled["pixel"]["snr"].point > pooled["patch"]["snr"].point
    assert pooled["patch"]["snr"].point == pytest.approx(native["patch"]["snr"].point, rel=1e-6)  # already blocks
    assert ch03_snr.swapped_pairs(native, pooled) == [("patch", "pixel")]
    rows = ch03_snr.resolution_table(native, pooled)
    assert [(r["method"], r["rank native"], r["rank pooled"]) for r in rows] == [("patch", 1, 2), ("pixel", 2, 1)]
    out = ch03_snr.resolution_sentence(maps, pooled_maps, native, pooled, 4, "lime", n_boot=200)
    assert out["res_n_changes"] == 2 and out["res_n_swaps"] == 1 and out["res_n_firm"] == 1
    assert "patch 1 → 2" in out["res_sentence"] and "beyond the intervals" in out["res_sentence"]
    # the same maps at native resolution only: nothing changes
    same = ch03_snr.resolution_sentence(maps, maps, native, native, 1, "gradient", n_boot=200)
    assert same["res_n_changes"] == 0 and "no method changes" in same["res_sentence"]


def test_coarsest_method_is_lime_on_mnist_sized_inputs():
    x = torch.zeros(2, 1, 28, 28)
    assert ch03_snr.coarsest(["gradient", "occlusion", "lime"], x, {}) == ("lime", 4)
    assert ch03_snr.coarsest(["gradient", "guided_backprop"], x, {}) == ("gradient", 1)


def test_design_calibration_glue_is_computed_from_simulate(monkeypatch):
    def fake(design, n_sim, seed, **_):
        assert (design.n_models, design.n_images, design.statistic) == (10, 30, "pairwise")
        cover = 0.8 if design.name == "bad" else 0.9
        return calibration.Calibration(design, cover, 0.05, 0.9, n_sim)

    monkeypatch.setattr(calibration, "simulate", fake)
    good = ch03_snr.design_calibration("good", 10, 30, n_sim=100)
    bad = ch03_snr.design_calibration("bad", 10, 30, n_sim=100)
    assert good["cal_coverage"] == "0.90 ± 0.03" and good["cal_verdict"].startswith("calibrated")
    assert bad["cal_verdict"].startswith("not calibrated")
    few = ch03_snr.design_calibration("good", 10, 30, n_sim=ch03_snr.MIN_CAL_SIMS - 1)
    assert few["cal_verdict"].startswith("not judged")


def test_control_numbers_count_rank_moves():
    iv = lambda p: Interval(p, p - 0.05, p + 0.05)
    ctl = {m: {"snr": iv(s), "untrained_snr": iv(u), "snr_contrast": iv(s - u), "pairwise_contrast": iv(0.1),
               "input": iv(0.1), "untrained": iv(0.2), "untrained_input": iv(0.3)}
           for m, s, u in (("a", 3.0, 2.9), ("b", 2.0, 0.5), ("c", 1.0, 0.0))}
    out = ch03_snr.control_numbers(ctl, 0.2, 0.05)
    assert out["untrained_snr_order"] == "b, c, a" and out["untrained_best_trained"] == "a"
    assert out["untrained_best_trained_rank"] == 3 and out["untrained_n_rank_moves"] == 3
    assert out["untrained_snr_not_learned"] == "a" and out["untrained_snr_learned"] == "b, c"
