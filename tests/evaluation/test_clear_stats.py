"""CLEAR's nulls (Kumar et al., CVPRW 2017; audit of chapter 5): a statistic that a null reproduces reads the logits,
not the maps; one that needs the maps' class content exceeds both nulls."""
from __future__ import annotations

import pytest
import torch

from helpers.attribution import clear
from helpers.evaluation import clear_stats
from helpers.evaluation.intervals import Interval

M, N, K, H, W = 3, 40, 4, 6, 6


def _logits(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (M, N, K) whose best class is the label for most images, and the labels (N,)."""
    labels = torch.arange(N) % K
    z = torch.randn(M, N, K, generator=gen) + 3 * torch.nn.functional.one_hot(labels, K)
    return z, labels


def _summaries(unit, z, labels, start, n_boot=100):
    zs = clear_stats.map_stats(unit, z, labels, starts=[start], nulls=list(clear.NULLS), n_boot=n_boot)
    return {r: clear_stats.summarize(v) for r, v in zs.items()}, zs


def test_null_permutations_are_seeded_permutations():
    p = clear.null_permutations(50, K, seed=3)
    assert p.shape == (50, K) and torch.equal(p.sort(-1).values, torch.arange(K).expand(50, K))
    assert torch.equal(p, clear.null_permutations(50, K, seed=3))
    assert not torch.equal(p, clear.null_permutations(50, K, seed=4))
    assert len({tuple(r) for r in p.tolist()}) > 5  # not one permutation for every image


def test_null_maps_known_answer():
    unit = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).reshape(1, 2, 3, 1, 1) + 1  # images 0, 1; classes 0…2
    perm = torch.tensor([[2, 0, 1], [0, 1, 2]])
    permuted = clear.null_maps(unit, "permuted", perm)
    assert permuted[0, 0, :, 0, 0].tolist() == [3, 1, 2] and permuted[0, 1, :, 0, 0].tolist() == [4, 5, 6]
    shared = clear.null_maps(unit, "shared", perm)[0, :, :, 0, 0]
    assert torch.allclose(shared, torch.tensor([[2.0] * 3, [5.0] * 3]), rtol=1e-3)
    assert shared[0].argmax() == 0 and shared[1].argmax() == 2  # ties broken by the image's class order
    with pytest.raises(ValueError, match="permutation"):
        clear.null_maps(unit, "permuted", perm[:1])
    with pytest.raises(ValueError, match="unknown CLEAR null"):
        clear.null_maps(unit, "noise", perm)


def test_the_permuted_null_keeps_every_scale_with_its_class():
    """Response start: class k's null map is z_k⁺ D_π(k), so each class's total |R_k| is its own logit times a
    permuted map's, and the logits (prediction, runner-up) do not change."""
    gen = torch.Generator().manual_seed(0)
    unit = torch.rand(M, N, K, H, W, generator=gen)
    z, labels = _logits(gen)
    zs = clear_stats.map_stats(unit, z, labels, starts=["response"], nulls=["permuted"], n_boot=5)
    a, b = zs["response"].single, zs["response:permuted"].single
    assert torch.equal(a.pred, b.pred) and torch.equal(a.second, b.second) and torch.equal(a.confidence, b.confidence)
    perm = clear.null_permutations(N, K, 2)
    r = clear.scale_responses(clear.null_maps(unit, "permuted", perm), z)
    assert torch.allclose(r.sum((-2, -1)), z.clamp_min(0) * unit.gather(
        2, perm[None, :, :, None, None].expand_as(unit)).sum((-2, -1)))


def test_a_pure_logit_statistic_has_no_excess():
    """Every class map of an image is the same map: CLEAR's response-start statistics are the logits' own, both
    nulls reproduce them (excess ≈ 0, verdict "nulls"); "runner-up is true" never reads a map (excess exactly 0)."""
    gen = torch.Generator().manual_seed(1)
    base = torch.rand(M, N, 1, H, W, generator=gen) - 0.2
    unit = base.expand(M, N, K, H, W).contiguous()
    z, labels = _logits(gen)
    s, _ = _summaries(unit, z, labels, "response")
    nulls = {n: s[f"response:{n}"] for n in clear.NULLS}
    for setting in ("single", "marginalized"):
        for metric in ("top: predicted", "mass: predicted", "pixels: predicted", "smoothness", "runner-up is true"):
            c = clear_stats.compare_with_nulls(s["response"], nulls, (setting, "all", metric))
            assert abs(c.excess.point) < 0.01 and c.verdict == "nulls", (setting, metric, c)
        c = clear_stats.compare_with_nulls(s["response"], nulls, (setting, "all", "runner-up is true"))
        assert c.excess.point == 0 and c.excess.low == 0 == c.excess.high


def test_maps_with_class_content_exceed_both_nulls():
    """Unit start, each class's map lights only where the image shows its label: CLEAR's top class is the label,
    the nulls give it only by chance (≈ 1/K), so the excess is ≈ 1 − 1/K and the verdict is "maps"."""
    gen = torch.Generator().manual_seed(2)
    z, labels = _logits(gen)
    unit = 0.1 * torch.rand(M, N, K, H, W, generator=gen)
    unit[:, torch.arange(N), labels] += 1.0
    s, zs = _summaries(unit, z, labels, "unit")
    nulls = {n: s[f"unit:{n}"] for n in clear.NULLS}
    for setting in ("single", "marginalized"):
        c = clear_stats.compare_with_nulls(s["unit"], nulls, (setting, "correct", "top: predicted"))
        assert c.value.point == 1.0 and all(iv.point < 0.5 for iv in c.nulls.values())
        assert c.excess.low > 0.4 and c.verdict == "maps", (setting, c)
        assert set(c.over) == set(clear.NULLS) and all(iv.low > 0.4 for iv in c.over.values())
    agree = clear_stats.agreement_with_nulls(zs["unit"], {n: zs[f"unit:{n}"] for n in clear.NULLS})
    assert agree.value.point == pytest.approx(1.0) and agree.nulls["shared"].point == pytest.approx(1.0)
    assert agree.verdict == "nulls"  # the shared null's dominant class is the same for every model: no excess


def test_excess_verdicts_and_the_larger_null():
    reps = torch.linspace(-0.01, 0.01, 50)
    c = clear_stats.null_comparison(0.9, 0.9 + reps, {"a": 0.5, "b": 0.8}, {"a": 0.5 + reps, "b": 0.8 + reps})
    assert c.excess.point == pytest.approx(0.1) and c.verdict == "maps"  # over the larger null, b
    c = clear_stats.null_comparison(0.9, 0.9 + reps, {"a": 0.5, "b": 0.88}, {"a": 0.5 + reps, "b": 0.88 + reps})
    assert c.verdict == "nulls" and c.over["a"].low > 0.3  # one null comes within 5 points
    c = clear_stats.null_comparison(0.2, 0.2 + reps, {"a": 0.5, "b": 0.8}, {"a": 0.5 + reps, "b": 0.8 + reps})
    assert c.verdict == "below"
    nan = Interval(float("nan"), float("nan"), float("nan"))
    assert clear_stats.excess_verdict(nan, {"a": nan}) == "none"
    with pytest.raises(ValueError, match="no null"):
        clear_stats.null_comparison(0.5, reps, {}, {})


def test_map_stats_checks_shapes_and_readings():
    unit, z, labels = torch.rand(2, 5, 3, 4, 4), torch.rand(2, 5, 3), torch.zeros(5, dtype=torch.long)
    assert set(clear_stats.map_stats(unit, z, labels, nulls=["shared"], n_boot=2)) == {
        "response", "unit", "response:shared", "unit:shared"}
    with pytest.raises(ValueError, match="pass maps"):
        clear_stats.map_stats(unit, z[:, :4], labels)
    with pytest.raises(ValueError, match="unknown CLEAR null"):
        clear_stats.map_stats(unit, z, labels, nulls=["noise"])
