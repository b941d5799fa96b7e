"""Chapter 2's helpers: the figure's maps from the statistics' maps, method seeds through the cache, and the
matched-resolution ranking (pooled to the coarsest method's patch grid)."""
from __future__ import annotations

import pytest
import torch

from helpers.attribution import attribute
from helpers.chapters import ch02_methods as ch02
from helpers.evaluation import agreement
from helpers.evaluation.intervals import Interval
from helpers.zoo.architectures import build_model


def _models(m: int = 3) -> list[torch.nn.Module]:
    out = []
    for seed in range(m):
        torch.manual_seed(seed)
        out.append(build_model("lenet", 1, 10).eval())
    return out


def _patchy(signal: torch.Tensor, noise: float, m: int, cell: int, seed: int) -> torch.Tensor:
    """Maps (M, N, 28, 28) constant on cell × cell patches: signal + noise drawn per patch."""
    gen = torch.Generator().manual_seed(seed)
    coarse = signal + noise * torch.randn(m, *signal.shape, generator=gen)
    return coarse.repeat_interleave(cell, -2).repeat_interleave(cell, -1)


def _pixel(signal: torch.Tensor, noise: float, m: int, cell: int, seed: int) -> torch.Tensor:
    """Maps (M, N, 28, 28): the upsampled signal plus independent pixel noise."""
    gen = torch.Generator().manual_seed(seed)
    fine = signal.repeat_interleave(cell, -2).repeat_interleave(cell, -1)
    return fine + noise * torch.randn(m, *fine.shape, generator=gen)


def test_pooling_lifts_a_pixel_method_past_a_patch_method_and_the_ranking_says_so():
    signal = torch.randn(12, 7, 7, generator=torch.Generator().manual_seed(0))
    maps = {"lime": _patchy(signal, 0.8, 8, 4, 1), "gradient": _pixel(signal, 2.0, 8, 4, 2)}
    x = torch.zeros(12, 1, 28, 28)
    res = ch02.matched_resolution(maps, x, {"lime": {}, "gradient": {}}, 200, 0.9, 0)
    assert res.cell == 4 and res.native_cells == {"lime": 4, "gradient": 1}
    # a map constant on the grid keeps its correlation exactly when pooled to that grid
    assert res.pooled["lime"].point == pytest.approx(res.native["lime"].point, abs=1e-6)
    assert res.gain["lime"].point == pytest.approx(0.0, abs=1e-6)
    # pixel noise averages away over 16 pixels: gradient rises, with an interval above 0, and overtakes lime
    assert res.native["gradient"].point < res.native["lime"].point < res.pooled["gradient"].point
    assert res.gain["gradient"].low > 0
    assert res.ranks("native") == {"lime": 1, "gradient": 2} and res.ranks("pooled") == {"gradient": 1, "lime": 2}
    assert res.changes() == [("lime", 1, 2), ("gradient", 2, 1)]
    num = ch02.resolution_numbers(res)
    assert num["res_n_changed"] == 2 and "gradient from 2 to 1" in num["res_changes"]
    assert num["res_rises"] == "gradient" and num["res_top_pooled"] == "gradient" and num["res_cell"] == "4×4"
    rows = ch02.resolution_rows(res)
    assert [r["method"] for r in rows] == ["lime", "gradient"] and rows[1]["rank pooled"] == 1


def test_same_resolution_leaves_the_ranking_and_pixel_methods_have_nothing_to_pool():
    signal = torch.randn(10, 28, 28, generator=torch.Generator().manual_seed(3))
    maps = {"gradient": _pixel(signal, 1.0, 6, 1, 4), "guided_backprop": _pixel(signal, 3.0, 6, 1, 5)}
    res = ch02.matched_resolution(maps, torch.zeros(10, 1, 28, 28), {}, 100, 0.9, 0)
    assert res.cell == 1 and res.changes() == []
    assert "nothing to pool" in ch02.resolution_numbers(res)["res_changes"]


def test_least_separation_follows_the_paired_interval():
    agree = {"a": {"pairwise": Interval(0.2, 0.1, 0.3)}, "b": {"pairwise": Interval(0.25, 0.15, 0.35)},
             "c": {"pairwise": Interval(0.6, 0.5, 0.7)}}
    yes = ch02.least_separation("a", {"b": Interval(0.05, 0.01, 0.09), "c": Interval(0.4, 0.3, 0.5)}, agree)
    no = ch02.least_separation("a", {"b": Interval(0.05, -0.01, 0.11), "c": Interval(0.4, 0.3, 0.5)}, agree)
    assert yes.startswith("yes: the next lowest, b,") and no.startswith("no: the next lowest, b,")


def test_shown_layers_slice_the_statistics_and_compute_only_the_extra_classes(data_root):
    models, pairs = _models(), [(i, i) for i in range(3)]
    x = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 6]])
    true = {"gradient": torch.stack([attribute("gradient", m, x, targets[:, 0]).sum(1) for m in models])}
    runner = {"gradient": torch.stack([attribute("gradient", m, x, targets[:, 1]).sum(1) for m in models])}
    layers = ch02.shown_layers("zoo", pairs, models, ["gradient"], x, targets, {"gradient": {}}, true, runner, 2)
    out = layers["gradient"]
    assert out.shape == (3, 3, 2, 28, 28)
    assert torch.equal(out[0], true["gradient"][:, :2]) and torch.equal(out[1], runner["gradient"][:, :2])
    third = torch.stack([attribute("gradient", m, x[:2], targets[:2, 2]).sum(1) for m in models])
    assert torch.allclose(out[2], third, atol=1e-6)
    assert len(list((data_root / "cache" / "maps").glob("*.pt"))) == 1  # only the third class was computed
    # a method without runner-up maps of all images gets its runner-up (and the rest) for the shown images only
    both = ch02.shown_layers("zoo", pairs, models, ["gradient", "input_x_gradient"], x, targets,
                             {"gradient": {}, "input_x_gradient": {}},
                             {**true, "input_x_gradient": true["gradient"] * 0}, runner, 2)
    assert torch.equal(both["gradient"], out) and both["input_x_gradient"].shape == (3, 3, 2, 28, 28)
    ixg = torch.stack([attribute("input_x_gradient", m, x[:2], targets[:2, 1]).sum(1) for m in models])
    assert torch.allclose(both["input_x_gradient"][1], ixg, atol=1e-6)
    assert not both["input_x_gradient"][0].any()  # the true class is sliced from the maps it was given


def test_seed_maps_reuse_the_zoo_seed_and_compute_the_others_for_model_zero(data_root):
    models, pairs = _models(), [(i, i) for i in range(3)]
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2])
    kw = {"smoothgrad": {"seed": 7, "n_samples": 4}}
    true = {"smoothgrad": torch.stack([attribute("smoothgrad", m, x, y, **kw["smoothgrad"]).sum(1) for m in models])}
    out = ch02.seed_maps("zoo", pairs, models, ["smoothgrad"], x, y, kw, 3, true)["smoothgrad"]
    assert out.shape == (3, 3, 28, 28) and torch.equal(out[0], true["smoothgrad"][0])
    for s in (1, 2):
        direct = attribute("smoothgrad", models[0], x, y, seed=7 + s, n_samples=4).sum(1)
        assert torch.allclose(out[s], direct, atol=1e-6)
    assert not torch.allclose(out[1], out[0])  # another method seed, other noise
    # the seed comparison of chapter 2 runs on these maps
    assert agreement.seed_vs_model(out, true["smoothgrad"], 50).point == pytest.approx(
        agreement.pairwise_interval(out, 50).point - agreement.pairwise_interval(true["smoothgrad"], 50).point)
