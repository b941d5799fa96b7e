"""Chapter 5 says a CLEAR statistic is about the maps only where it exceeds its nulls (Kumar et al., CVPRW 2017;
audit: the response start's statistics read the logit scale z_k⁺)."""
from __future__ import annotations

import torch

from helpers.attribution import clear
from helpers.chapters import ch05_clear as ch05
from helpers.evaluation import clear_stats

M, N, K, H, W = 3, 40, 4, 6, 6


def _zoo(class_content: bool, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(N) % K
    z = torch.randn(M, N, K, generator=gen) + 3 * torch.nn.functional.one_hot(labels, K)
    if class_content:  # each class's map lights up only for images of that class
        unit = 0.1 * torch.rand(M, N, K, H, W, generator=gen)
        unit[:, torch.arange(N), labels] += 1.0
    else:  # one map per image, the same for every class: nothing but the logits tells the classes apart
        unit = (torch.rand(M, N, 1, H, W, generator=gen) - 0.2).expand(M, N, K, H, W).contiguous()
    zs = clear_stats.map_stats(unit, z, labels, nulls=list(clear.NULLS), n_boot=100)
    return ch05.summaries_of(zs, 0.99), zs, labels


def test_logit_statistics_are_called_properties_of_the_logits():
    summaries, zs, _ = _zoo(class_content=False)
    out = ch05.null_values(summaries, zs, threshold=0.05)
    for k in ("s_all_top_pred", "m_all_top_pred", "s_bad_second_true", "s_all_smooth", "agreement"):
        assert out[f"r_verdict_{k}"].startswith("a property of the logits, not a finding about CLEAR"), k
        assert "5 points" in out[f"r_verdict_{k}"]
    assert out["r_excess_s_bad_second_true"] == "+0.0 points [+0.0, +0.0]"
    assert all("null" in k for k in out if k.startswith(("r_null", "u_null")))
    assert {"r_null_perm_s_conf_top_pred", "r_null_shared_m_bad_top_second", "u_excess_perm_s_all_mass_pred",
            "r_excess_shared_agreement", "effect"} <= set(out)
    counts = ch05.maps_add(summaries, "response")
    assert counts == {"r_n_maps_add": 0, "r_n_estimates": 2 * len(ch05.ESTIMATES), "r_maps_add_list": "none of them"}


def test_maps_with_class_content_are_credited_to_the_maps():
    summaries, zs, _ = _zoo(class_content=True)
    out = ch05.null_values(summaries, zs)
    assert out["u_verdict_s_all_top_pred"].startswith("the maps add it")
    assert out["u_verdict_m_all_top_pred"].startswith("the maps add it")
    assert out["u_verdict_s_bad_second_true"].startswith("not a finding about CLEAR's maps")  # never reads a map
    counts = ch05.maps_add(summaries, "unit")
    assert counts["u_n_maps_add"] >= 2 and "top: predicted (all, single)" in counts["u_maps_add_list"]


def test_null_table_rows_and_caption():
    summaries, zs, labels = _zoo(class_content=True)
    rows = ch05.null_rows(summaries, zs, "unit")
    assert len(rows) == 2 * len(ch05.ESTIMATES) + 1 and rows[-1]["statistic"].startswith("seed agreement")
    assert list(rows[0]) == ["statistic", "maps of", "CLEAR", "permuted null", "shared null",
                             "excess over the larger null", "verdict"]
    assert rows[0]["verdict"] == "the maps add it"
    md = ch05.null_table(summaries, zs, "unit").data
    assert md.startswith("**Unit start**, 40 test images") and "5 points" in md
    assert md.count("\n| ") == len(rows) + 2  # header, rule, rows


def test_verdict_texts_and_image_values():
    from helpers.evaluation.intervals import Interval

    iv = Interval(0.0, -0.1, 0.1)
    words = {v: ch05.verdict_text(clear_stats.NullComparison(iv, {}, {}, iv, v, 0.05), "response")
             for v in ("maps", "below", "nulls", "none")}
    assert words["maps"].startswith("the maps add it (more than") and words["below"].startswith("the maps lower it")
    assert words["none"] == "no maps in this group" and all("5 points" in w for v, w in words.items() if v != "none")
    assert ch05.image_values(torch.tensor([0, 0, 2]), 3) == {"n_images": 3, "stat_classes": 2, "stat_min_per_class": 0}
