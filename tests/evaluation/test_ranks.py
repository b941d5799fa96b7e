"""Average ranks and the Spearman correlations built on them (helpers.evaluation.ranks)."""
import torch


def test_average_ranks_are_scipys_with_ties_and_one_sort():
    from scipy.stats import rankdata, spearmanr

    from helpers.evaluation.ranks import average_ranks, over_pairs, rank_correlation

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 6, (40, 3, 25), generator=g).double()  # many ties
    x[0, 0] = 2.0  # a constant row: every rank the same
    assert torch.equal(average_ranks(x), torch.from_numpy(rankdata(x.numpy(), axis=-1, method="average")))
    a, b = x.view(40, 3, 5, 5), torch.randn(40, 3, 5, 5, generator=g).double()
    rho = rank_correlation(a, b)
    want = torch.tensor([[spearmanr(p.flatten(), q.flatten())[0] if k or i else 0.0
                          for k, (p, q) in enumerate(zip(pa, pb))] for i, (pa, pb) in enumerate(zip(a, b))])
    assert torch.allclose(rho, want.double(), atol=1e-12)
    stack = torch.stack([a, b, a.flip(-1)])
    pairs = (rank_correlation(a, b) + rank_correlation(a, a.flip(-1)) + rank_correlation(b, a.flip(-1))) / 3
    assert torch.allclose(over_pairs(stack), pairs, atol=1e-12)
