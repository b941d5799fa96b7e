"""Correlations between the maps of a zoo's models: the model-by-model correlation matrix and its mean over pairs
(the agreement of Woerl et al., CVPR 2023).
"""
from __future__ import annotations

import torch



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
