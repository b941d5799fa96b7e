"""Rank statistics of maps and scores: Spearman correlation between maps, mean correlation over pairs or with the
other models, Kendall agreement of metric rankings with multi-bootstrap intervals.
"""
from __future__ import annotations

from typing import Sequence
import torch

from .intervals import Interval, boot_means, percentile


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1 … n along the last axis, ties given their average rank: ``scipy.stats.rankdata(method="average")``
    (the same numbers, tested) with one batched sort, in float64."""
    v = values.double()
    s, order = v.sort(-1)
    n = v.shape[-1]
    pos = torch.arange(n, dtype=torch.float64, device=v.device).expand_as(s)
    starts = torch.ones_like(s, dtype=torch.bool)
    starts[..., 1:] = s[..., 1:] != s[..., :-1]  # the first entry of each run of equal values
    ends = torch.ones_like(starts)
    ends[..., :-1] = starts[..., 1:]
    first = torch.where(starts, pos, torch.zeros_like(pos)).cummax(-1).values
    last = torch.where(ends, pos, torch.full_like(pos, n)).flip(-1).cummin(-1).values.flip(-1)
    return torch.empty_like(pos).scatter_(-1, order, (first + last) / 2 + 1)


def _unit_ranks(maps: torch.Tensor) -> torch.Tensor:
    """Centred ranks of each map (..., H, W) over its pixels, scaled to unit norm (zero for a constant map):
    (..., H·W). Their dot product is the Spearman correlation."""
    r = average_ranks(maps.flatten(-2).cpu())
    r = r - r.mean(-1, keepdim=True)
    return r / r.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman correlation over pixels of maps (..., H, W), ties given their average rank."""
    return (_unit_ranks(a) * _unit_ranks(b)).sum(-1)


def over_pairs(maps: torch.Tensor) -> torch.Tensor:
    """Rank correlation of maps (P, …, H, W) averaged over the unordered pairs along the first axis: (…).
    Each map is ranked once."""
    u, p = _unit_ranks(maps), maps.shape[0]
    return torch.stack([(u[i] * u[j]).sum(-1) for i in range(p) for j in range(i + 1, p)]).mean(0)


def with_others(maps: torch.Tensor) -> torch.Tensor:
    """Rank correlation of each model's maps with every other model's, averaged over the others: maps (M, …, H, W)
    -> (M, …). Each map is ranked once."""
    u, m = _unit_ranks(maps), maps.shape[0]
    return torch.stack([torch.stack([(u[a] * u[b]).sum(-1) for b in range(m) if b != a]).mean(0) for a in range(m)])


def kendall_matrix(means: torch.Tensor) -> torch.Tensor:
    """Kendall's τ (τ-b, ties allowed) between the rankings of K methods under every pair of B settings:
    ``means`` (..., K, B) → (..., B, B)."""
    d = torch.sign(means[..., :, None, :] - means[..., None, :, :]).double()  # (..., K, K, B)
    num = torch.einsum("...ijb,...ijc->...bc", d, d)
    pairs = (d != 0).double().sum((-3, -2))  # untied pairs (both orders) under each setting
    return num / (pairs[..., :, None] * pairs[..., None, :]).sqrt().clamp_min(1e-12)


def ranking_agreement(scores: torch.Tensor, n_boot: int = 1000, level: float = 0.9,
                      seed: int = 0) -> tuple[torch.Tensor, Interval, Interval]:
    """How much a metric's ranking of methods depends on the metric's baseline (Brunke et al. 2020).

    ``scores`` (K methods, B baselines, M models, N images). Returns the B×B matrix of Kendall τ between the
    rankings that the mean scores induce, and multi-bootstrap intervals of the mean and the minimum off-diagonal τ.
    """
    nb = scores.shape[1]
    iu = torch.triu_indices(nb, nb, 1)
    s = scores.double().cpu()
    point = kendall_matrix(s.mean((-2, -1)))
    reps = kendall_matrix(boot_means(s, n_boot, seed))[:, iu[0], iu[1]]  # (R, pairs)
    off = point[iu[0], iu[1]]
    if off.numel() == 0:
        raise ValueError("ranking_agreement needs at least two baselines: pass scores of shape (K, B ≥ 2, M, N)")
    return (point, percentile(float(off.mean()), reps.mean(1), level),
            percentile(float(off.min()), reps.min(1).values, level))


def ranking(names: Sequence[str], scores: torch.Tensor) -> str:
    """"a > b > c": names ordered by score, best (highest) first."""
    order = torch.argsort(torch.as_tensor(scores, dtype=torch.float64), descending=True, stable=True)
    return " > ".join(names[i] for i in order.tolist())


def across_values(sweep: torch.Tensor, baseline: int = 0) -> torch.Tensor:
    """Rank correlation (M, N) between one model's maps at two values of a hyperparameter, averaged over the pairs
    of values, under baseline index ``baseline`` of a sweep (V, B, M, N, H, W)."""
    v = sweep.shape[0]
    if v < 2:
        raise ValueError("a hyperparameter sweep needs at least two values to compare maps across them")
    return over_pairs(sweep[:, baseline])


def divergence(maps: torch.Tensor, reference: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank correlation of maps (B, K, M, N, H, W) across baselines and across seeds, each (K, M, N): the mean over
    pairs of baselines of one model's maps, and (under baseline ``reference``) the mean over the other models."""
    m = maps.shape[2]
    across_b = over_pairs(maps)
    ref = maps[reference]
    if m < 2:
        return across_b, torch.full_like(across_b, float("nan"))
    return across_b, with_others(ref.movedim(1, 0)).movedim(0, 1)
