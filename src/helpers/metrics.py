"""Agreement between the maps of different models (Woerl et al., CVPR 2023: how reproducible is one map?).

Maps are (M, N, H, W): M models, N images. Pearson correlation is taken over pixels, so it ignores each map's scale.
"""
from __future__ import annotations

import torch

from .maps import pearson


def correlation_matrix(maps: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between every pair of models' maps, per image: (N, M, M)."""
    flat = maps.flatten(-2)
    flat = flat - flat.mean(-1, keepdim=True)
    flat = flat / flat.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.einsum("inp,jnp->nij", flat, flat)


def mean_pairwise_correlation(maps: torch.Tensor) -> torch.Tensor:
    """For each image, the mean Pearson correlation over all pairs i < j of single-model maps: (N,)."""
    m = maps.shape[0]
    if m < 2:
        raise ValueError("pairwise correlation needs at least two models")
    iu = torch.triu_indices(m, m, offset=1)
    return correlation_matrix(maps)[:, iu[0], iu[1]].mean(-1)


def extreme_pairs(maps: torch.Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
    """The two models whose maps disagree most and the two that agree most (mean correlation over images);
    Woerl et al.'s "two handpicked models"."""
    m = maps.shape[0]
    if m < 3:
        raise ValueError("picking extreme pairs needs at least three models")
    mean = correlation_matrix(maps).mean(0)
    iu = torch.triu_indices(m, m, offset=1)
    vals = mean[iu[0], iu[1]]
    lo, hi = int(vals.argmin()), int(vals.argmax())
    return (int(iu[0, lo]), int(iu[1, lo])), (int(iu[0, hi]), int(iu[1, hi]))


def convergence_to_full_mean(maps: torch.Tensor, n_permutations: int = 20, seed: int = 0) -> torch.Tensor:
    """Correlation between the mean of the first M models and the mean of all of them, for M = 1…N_models,
    averaged over ``n_permutations`` random orders of the models: (N_images, N_models)."""
    m = maps.shape[0]
    full = maps.mean(0)
    gen = torch.Generator().manual_seed(seed)
    counts = torch.arange(1, m + 1, dtype=maps.dtype).view(-1, *([1] * (maps.ndim - 1)))
    total = torch.zeros(maps.shape[1], m, dtype=maps.dtype)
    for _ in range(n_permutations):
        order = torch.randperm(m, generator=gen)
        running = maps[order].cumsum(0) / counts.to(maps.device)
        total += pearson(running, full.unsqueeze(0)).T.cpu()
    return total / n_permutations
