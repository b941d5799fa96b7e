"""The seed yardstick of chapter 6 (helpers.evaluation.sweeps): own method seeds per model, the Monte Carlo noise
of a sampled method, the map cache of swept maps, and reuse of maps already made."""
import pytest
import torch
from torch import nn

from helpers.evaluation import sweeps


class Constant(nn.Module):
    """Ignores its input: every RISE map of it is the masks' own sampling pattern."""

    def forward(self, x):
        return torch.tensor([[1.0, 0.0]]).expand(x.shape[0], -1)


class Patch(nn.Module):
    """Looks at one fixed patch: every map of it, under any masks, puts its mass there."""

    def forward(self, x):
        z = 3 * (x[:, :, 2:6, 2:6].mean((1, 2, 3)) - 0.25)
        return torch.stack([z, -z], 1)


KW = {"rise": {"n_masks": 60, "cell": 3, "seed": 0}, "occlusion": {"window": 4, "stride": 2}}


def test_shared_method_seeds_turn_pure_mask_noise_into_agreement_and_own_seeds_do_not():
    x, t = torch.randn(4, 1, 12, 12, generator=torch.Generator().manual_seed(0)), torch.zeros(4, dtype=torch.long)
    models = [Constant() for _ in range(4)]
    yard = sweeps.seed_yardstick(["rise", "occlusion"], models, x, t, torch.zeros_like(x), KW)
    assert yard["maps"].shape == (2, 4, 4, 12, 12) and yard["shared"].shape == (2, 4, 4)
    # RISE, shared masks, a blind model: every model's map is the same mask pattern, agreement 1
    assert torch.allclose(yard["shared"][0].float(), torch.ones(4, 4), atol=1e-6)
    # own masks (seed + k): nothing but sampling noise is shared, and the Monte Carlo noise says the same
    assert yard["independent"][0].abs().mean() < 0.3 and yard["monte_carlo"]["rise"].abs().mean() < 0.3
    assert set(yard["monte_carlo"]) == {"rise"}  # occlusion draws nothing: no noise of its own
    assert torch.equal(yard["shared"][1], yard["independent"][1])  # deterministic: the same maps either way
    with pytest.raises(ValueError, match="n_sweep_models ≥ 2"):
        sweeps.seed_yardstick(["rise"], models[:1], x, t, torch.zeros_like(x), KW)


def test_own_seeds_are_seed_plus_k_and_model_zero_keeps_the_shared_maps():
    x, t = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(1)), torch.zeros(2, dtype=torch.long)
    models = [Patch() for _ in range(3)]
    b = torch.zeros_like(x)
    own = sweeps.maps_under("rise", models, x, t, b, model_seeds=[5, 6, 7], **KW["rise"])
    for k in range(3):
        one = sweeps.maps_under("rise", models[:1], x, t, b, **{**KW["rise"], "seed": 5 + k})
        assert torch.allclose(own[k], one[0])
    yard = sweeps.seed_yardstick(["rise"], models, x, t, b, {"rise": {**KW["rise"], "n_masks": 400}})
    # identical models under their own masks still agree well (the patch dominates), but less than with shared masks
    assert (yard["shared"][0] > 0.999).all() and (yard["independent"][0] < yard["shared"][0]).all()
    assert yard["independent"][0].mean() > 0.5
    with pytest.raises(ValueError, match="one seed per model"):
        sweeps.maps_under("rise", models, x, t, b, model_seeds=[1], **KW["rise"])


def test_cached_maps_equal_fresh_maps_and_depend_on_the_baseline_image(data_root):
    from helpers.attribution import mapcache

    x, t = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(2)), torch.zeros(2, dtype=torch.long)
    models, pairs = [Patch(), Patch()], [(0, 0), (1, 1)]
    b0, b1 = torch.zeros_like(x), torch.full_like(x, 0.5)
    fresh = sweeps.maps_under("occlusion", models, x, t, b0, ("zoo", pairs), **KW["occlusion"])
    n = len(list(mapcache.folder().glob("*.pt")))
    assert n == 2  # one entry per model
    again = sweeps.maps_under("occlusion", models, x, t, b0, ("zoo", pairs), **KW["occlusion"])
    assert torch.equal(fresh, again) and len(list(mapcache.folder().glob("*.pt"))) == 2
    other = sweeps.maps_under("occlusion", models, x, t, b1, ("zoo", pairs), **KW["occlusion"])
    assert len(list(mapcache.folder().glob("*.pt"))) == 4 and not torch.allclose(other, fresh)


def test_sweep_reuses_the_maps_it_is_given():
    x, t = torch.rand(2, 1, 12, 12), torch.zeros(2, dtype=torch.long)
    models = [Patch(), Patch()]
    base = {"zero": torch.zeros_like(x), "half": torch.full_like(x, 0.5)}
    full = sweeps.sweep(["occlusion"], models, x, t, base, KW)
    marker = torch.full((1, 2, 2, 12, 12), 7.0)
    part = sweeps.sweep(["occlusion"], models, x, t, base, KW, reuse={"zero": marker})
    assert part.shape == full.shape == (2, 1, 2, 2, 12, 12)
    assert torch.equal(part[0], marker) and torch.allclose(part[1], full[1])


def test_a_hair_of_noise_on_exact_zeros_is_no_change_at_the_rank_resolution():
    from helpers.evaluation.ranks import rank_correlation

    g = torch.Generator().manual_seed(3)
    a = torch.zeros(4, 12, 12)
    a[:, 3:9, 3:9] = torch.rand(4, 6, 6, generator=g) + 0.5  # a "digit" of relevance on an exact-zero background
    b = a + 1e-4 * torch.randn(4, 12, 12, generator=g)  # the background now ranked by noise
    assert rank_correlation(a, b).mean() < 0.9  # exact ranks: a large "change"
    qa, qb = sweeps.at_resolution(a, 0.01), sweeps.at_resolution(b, 0.01)
    assert rank_correlation(qa, qb).min() > 0.99
    other = torch.zeros(4, 12, 12)
    other[:, 1:5, 6:11] = 1.0  # relevance somewhere else: still a change at this resolution
    assert rank_correlation(qa, sweeps.at_resolution(other, 0.01)).mean() < 0.5
    assert torch.equal(sweeps.at_resolution(a, 0), a)
    with pytest.raises(ValueError, match="resolution=-1"):
        sweeps.at_resolution(a, -1)
