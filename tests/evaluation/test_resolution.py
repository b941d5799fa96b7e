import pytest
import torch

from helpers.evaluation import resolution


def test_pool_block_means_and_partial_border():
    x = torch.arange(25, dtype=torch.float32).view(5, 5)
    out = resolution.pool(x[None, None], 2)[0, 0]
    assert out.shape == (3, 3)
    assert out[0, 0] == pytest.approx((0 + 1 + 5 + 6) / 4)
    assert out[2, 2] == pytest.approx(24.0)  # the corner block has one pixel
    assert out[0, 2] == pytest.approx((4 + 9) / 2)


def test_pool_keeps_leading_dims_and_is_identity_at_one():
    maps = torch.randn(3, 4, 28, 28)
    assert resolution.pool(maps, 4).shape == (3, 4, 7, 7)
    assert torch.equal(resolution.pool(maps, 1), maps)
    with pytest.raises(ValueError, match="cell=0"):
        resolution.pool(maps, 0)


def test_patch_methods_are_constant_on_their_own_grid():
    x = torch.zeros(2, 1, 28, 28)
    assert resolution.method_cell("lime", x) == 4 and resolution.method_cell("gradient", x) == 1
    assert resolution.method_cell("occlusion", x) == 2
    assert resolution.method_cell("occlusion", x, {"window": 7, "stride": 7}) == 7
    assert resolution.common_cell(["gradient", "occlusion", "kernel_shap"], x) == 4
    # pooling pixel noise to the patch grid raises the correlation of two noisy copies of a patch map
    gen = torch.Generator().manual_seed(0)
    patches = torch.randn(50, 1, 7, 7, generator=gen).repeat_interleave(4, -1).repeat_interleave(4, -2)
    a = patches + 2 * torch.randn(patches.shape, generator=gen)
    b = patches + 2 * torch.randn(patches.shape, generator=gen)
    from helpers.attribution.maps import pearson
    native = pearson(a[:, 0], b[:, 0]).mean()
    pooled = pearson(resolution.pool(a, 4)[:, 0], resolution.pool(b, 4)[:, 0]).mean()
    assert pooled > native + 0.3


def test_rank_changes():
    assert resolution.rank_changes({"a": 3, "b": 2, "c": 1}, {"a": 3, "b": 1, "c": 2}) == [("b", 2, 3), ("c", 3, 2)]
    assert resolution.rank_changes({"a": 1, "b": 0}, {"a": 5, "b": 4}) == []


def test_ranks_put_the_largest_first():
    assert resolution.ranks({"a": 0.2, "b": 0.9, "c": 0.5}) == {"b": 1, "c": 2, "a": 3}
