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


def single_vs_rest(maps: torch.Tensor) -> torch.Tensor:
    """Correlation of each model's map with the mean of the *other* models (leave-one-out), per image: (M, N).

    Leaving the model out keeps its own noise out of the reference, so the number can fall as low as the maps
    disagree (with the model inside the mean it is pulled towards 1 by construction)."""
    m = maps.shape[0]
    if m < 2:
        raise ValueError("single vs rest needs at least two models: use a larger zoo")
    rest = (maps.sum(0, keepdim=True) - maps) / (m - 1)
    return pearson(maps, rest)


def _pair_mean(corr: torch.Tensor, models: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Mean correlation over pairs of *different* drawn models (duplicates from resampling are not pairs)."""
    sub = corr[images][:, models][:, :, models]  # (N', M', M')
    distinct = models[:, None] != models[None, :]
    upper = torch.triu(torch.ones_like(distinct), diagonal=1) & distinct
    if not upper.any():
        return torch.tensor(float("nan"))
    return sub[:, upper].mean()


def pairwise_interval(maps: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0):
    """Mean pairwise correlation of single-model maps over models and images, with a multi-bootstrap interval
    (:func:`helpers.intervals.multi_bootstrap`)."""
    from .intervals import multi_bootstrap

    corr = correlation_matrix(maps)
    return multi_bootstrap(lambda mi, ii: _pair_mean(corr, mi, ii), maps.shape[0], maps.shape[1], n_boot, level, seed)


def pairwise_difference(maps_a: torch.Tensor, maps_b: torch.Tensor, n_boot: int = 1000, level: float = 0.9,
                        seed: int = 0):
    """Paired difference of mean pairwise correlations, a − b, for two sets of maps of the same models and images
    (e.g. two methods, or two explained classes), with one multi-bootstrap draw shared by both."""
    from .intervals import multi_bootstrap

    if maps_a.shape[:2] != maps_b.shape[:2]:
        raise ValueError(f"maps of {tuple(maps_a.shape[:2])} and {tuple(maps_b.shape[:2])} (models, images): "
                         "compare maps of the same models and images")
    ca, cb = correlation_matrix(maps_a), correlation_matrix(maps_b)
    return multi_bootstrap(lambda mi, ii: _pair_mean(ca, mi, ii) - _pair_mean(cb, mi, ii), maps_a.shape[0],
                           maps_a.shape[1], n_boot, level, seed)


def _centred_gram(maps: torch.Tensor) -> torch.Tensor:
    """(N, M, M) inner products of the spatially centred maps (Pearson correlation = cosine of centred maps)."""
    flat = maps.flatten(-2).double()
    flat = flat - flat.mean(-1, keepdim=True)
    return torch.einsum("inp,jnp->nij", flat, flat)


def _rest_corr(g: torch.Tensor, models: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Mean over drawn models of corr(a_m, mean of the drawn models with another index) — leave-one-out that also
    leaves out the copies a bootstrap draw makes of model m."""
    m = g.shape[-1]
    c = torch.bincount(models, minlength=m).double()  # (M,) counts of each model in the draw
    gs = g[images]  # (N', M, M)
    gc = gs @ c  # (N', M)
    cgc = torch.einsum("nij,i,j->n", gs, c, c)
    diag = torch.diagonal(gs, dim1=-2, dim2=-1)
    drawn = c > 0
    num = gc - c * diag  # <a_m, Σ_{j≠m} c_j a_j>
    den = (diag * (cgc[:, None] - 2 * c * gc + c ** 2 * diag)).clamp_min(1e-30).sqrt()
    corr = (num / den)[:, drawn]
    weights = c[drawn]
    return (corr * weights).sum(-1).div(weights.sum()).mean()


def agreement(maps: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0) -> dict:
    """How much single models agree (Woerl et al., CVPR 2023), each with a multi-bootstrap interval over models and
    images: ``pairwise`` (mean correlation of two single-model maps), ``single_vs_rest`` (one model against the mean
    of the others, leave-one-out) and ``split_half`` (the means of two disjoint halves of the zoo)."""
    from . import snr
    from .intervals import multi_bootstrap

    g = _centred_gram(maps)
    return {"pairwise": pairwise_interval(maps, n_boot, level, seed),
            "single_vs_rest": multi_bootstrap(lambda mi, ii: _rest_corr(g, mi, ii), maps.shape[0], maps.shape[1],
                                              n_boot, level, seed),
            "split_half": snr.split_half_intervals(maps, [maps.shape[0] // 2], n_boot=n_boot, level=level,
                                                   seed=seed)[0]}
