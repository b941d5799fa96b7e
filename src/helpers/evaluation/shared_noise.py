"""Do seeds share noise? A diagnostic that can see it, where ρ̄ ≈ SNR / (1 + SNR) cannot.

Averaging over seeds removes only the noise that differs between seeds. Noise that groups of seeds share (say, two
clusters of seeds that fall into the same basin) counts as signal to every statistic that resamples seeds: the SNR
is inflated, and ρ̄ ≈ SNR / (1 + SNR) still holds exactly whenever the maps' norms are equal. Shared noise shows as
structure in the model-by-model correlation matrix instead: pairs within a group agree more than pairs across.

:func:`cluster_gap` finds groups on one half of the images and measures them on the other. On half A it divides the
image-averaged correlation matrix by its rank-one fit a_i a_j (so that seeds that are only noisier or cleaner
overall, which exchangeable seeds can be, form no groups), and splits the models by the sign of the leading
eigenvector of what is left. On half B it reports the mean normalized correlation within those groups minus across
them. For exchangeable seeds the groups of half A are noise, and the gap on half B is about 0; for shared noise it is
positive. The gap is averaged over random halvings; a gap above :data:`DELTA` counts as shared noise, a threshold
that the exchangeable controls (homogeneous and heterogeneous seeds) stay far below in the tests.
"""
from __future__ import annotations

import torch

from .correlation import correlation_matrix

DELTA = 0.02  # a cluster gap above this is shared noise
MIN_MODELS = 6  # below, exchangeable zoos reach gaps above DELTA (4 models: up to 0.045 in 10 simulated zoos)


def _rank_one(c: torch.Tensor, iterations: int = 50) -> torch.Tensor:
    """a with c_ij ≈ a_i a_j off the diagonal (the diagonal is filled with a_i² and refitted)."""
    m = c.shape[0]
    a = (c.sum(1) - c.diagonal()).clamp_min(1e-12).div(m - 1).sqrt()
    filled = c.clone()
    for _ in range(iterations):
        filled.fill_diagonal_(0)
        filled += torch.diag(a * a)
        w, v = torch.linalg.eigh(filled)
        a = (v[:, -1] * w[-1].clamp_min(0).sqrt()).abs().clamp_min(1e-12)
    return a


def _normalized(c: torch.Tensor) -> torch.Tensor:
    a = _rank_one(c)
    return c / torch.outer(a, a)


def cluster_gap(maps: torch.Tensor, n_splits: int = 20, seed: int = 0) -> float:
    """Mean over ``n_splits`` halvings of the images of the held-out within-minus-across gap (see the module's
    docstring). ``maps`` (M, N, H, W), M ≥ 4 models and N ≥ 4 images."""
    m, n = maps.shape[:2]
    if m < MIN_MODELS or n < 4:
        raise ValueError(f"the shared-noise diagnostic needs ≥ {MIN_MODELS} models and ≥ 4 images, got {m} × {n}")
    corr = correlation_matrix(maps).double()  # (N, M, M)
    off = ~torch.eye(m, dtype=torch.bool)
    gen = torch.Generator().manual_seed(seed)
    gaps = []
    for _ in range(n_splits):
        perm = torch.randperm(n, generator=gen)
        qa, qb = _normalized(corr[perm[: n // 2]].mean(0)), _normalized(corr[perm[n // 2:]].mean(0))
        qa.fill_diagonal_(float(qa[off].mean()))
        group = torch.linalg.eigh(qa - qa.mean())[1][:, -1] > 0
        if group.all() or not group.any():
            gaps.append(0.0)
            continue
        same = (group[:, None] == group[None, :]) & off
        gaps.append(float(qb[same].mean() - qb[group[:, None] != group[None, :]].mean()))
    return sum(gaps) / len(gaps)


def shuffled(maps: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The negative control on real maps: the models permuted independently for every image. Every map stays, and
    any structure that follows a seed across images goes, so :func:`cluster_gap` must come out near 0."""
    gen = torch.Generator().manual_seed(seed)
    m, n = maps.shape[:2]
    return torch.stack([maps[torch.randperm(m, generator=gen), i] for i in range(n)], 1)


def verdict(gap: float, delta: float = DELTA) -> str:
    return "shared noise" if gap > delta else "no shared noise found"


def synthetic_zoo(n_models: int = 24, n_images: int = 30, clusters: int = 1, shared: float = 1.0,
                  noise: float = 1.0, heterogeneity: float = 0.0, seed: int = 0) -> torch.Tensor:
    """Maps (M, N, 16, 16): a signal per image, noise that the seeds of each of ``clusters`` groups share (scale
    ``shared``), and each seed's own noise (scale ``noise``, spread over seeds by ``heterogeneity``)."""
    gen = torch.Generator().manual_seed(seed)
    s = torch.randn(n_images, 256, generator=gen)
    group = torch.arange(n_models) % clusters
    common = torch.randn(clusters, n_images, 256, generator=gen) * (shared if clusters > 1 else 0.0)
    scale = torch.exp(heterogeneity * torch.randn(n_models, generator=gen))
    maps = s[None] + common[group] + noise * scale[:, None, None] * torch.randn(n_models, n_images, 256,
                                                                                generator=gen)
    return maps.view(n_models, n_images, 16, 16)


def true_snr(shared: float = 1.0, noise: float = 1.0) -> float:
    """The SNR of :func:`synthetic_zoo` with two or more clusters when shared noise counts as noise: the signal's
    energy per pixel (1) over the shared and the seeds' own noise."""
    return 1.0 / (shared ** 2 + noise ** 2)
