"""Signal-to-noise ratios of saliency maps across a zoo of seeded models (Woerl, Disselhoff, Wand, CVPR 2023).

The poster reports SNR per class, method and architecture but not its formula, so the book defines three
measures on maps ``a`` of shape (M, N, H, W) (M models, N images; channel-summed), each map first scaled to unit
root-mean-square, â_m = a_m / sqrt(mean_p a_m,p²), so that a seed that merely scales its gradients up counts for
nothing (:func:`unit_rms`):

- energy SNR: ‖ā‖² / Σ_p s_p², with ā the mean over models and s_p² the unbiased per-pixel variance over models.
  For maps a_m = μ + ε_m with independent noise of total variance Σσ², it estimates ‖μ‖²/Σσ² + 1/M: the SNR of a
  *single* model's map. The mean of M maps has M times this energy SNR (√M times the amplitude SNR).
- mean pairwise correlation: the mean Pearson ρ between two single-model maps.
- split-half reliability: the Pearson ρ between the means of two disjoint halves of the zoo, averaged over random
  splits (optionally Spearman–Brown corrected to the full zoo).
"""
from __future__ import annotations

import math

import torch

from .maps import pearson
from .metrics import mean_pairwise_correlation


def unit_rms(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map (last two axes) to root-mean-square 1 (all-zero maps stay zero)."""
    rms = maps.pow(2).mean((-2, -1), keepdim=True).sqrt()
    return maps / rms.clamp_min(torch.finfo(maps.dtype).tiny)


def _check(maps: torch.Tensor, need: int = 2) -> None:
    if maps.ndim != 4:
        raise ValueError(f"maps must be (M models, N images, H, W), got {tuple(maps.shape)}: "
                         f"sum channels first with helpers.maps.to_2d")
    if maps.shape[0] < need:
        raise ValueError(f"this SNR needs at least {need} models, got {maps.shape[0]}: use a larger zoo")


def energy_snr(maps: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """‖mean map‖² / Σ per-pixel variance, per image: (N,)."""
    _check(maps)
    a = unit_rms(maps) if normalize else maps
    signal = a.mean(0).pow(2).sum((-2, -1))
    noise = a.var(0, unbiased=True).sum((-2, -1))
    return signal / noise.clamp_min(torch.finfo(a.dtype).tiny)


def pairwise_correlation(maps: torch.Tensor) -> torch.Tensor:
    """Mean Pearson correlation over pairs of single-model maps, per image: (N,). Scale-free already."""
    _check(maps)
    return mean_pairwise_correlation(maps)


def split_half(maps: torch.Tensor, n_splits: int = 20, seed: int = 0, spearman_brown: bool = False) -> torch.Tensor:
    """Correlation between the marginalized maps of two disjoint random halves of the zoo, per image: (N,).

    With ``spearman_brown`` the value is projected to a zoo of the full size: 2ρ / (1 + ρ)."""
    _check(maps)
    m = maps.shape[0]
    a = unit_rms(maps)
    gen = torch.Generator().manual_seed(seed)
    total = torch.zeros(maps.shape[1], dtype=maps.dtype, device=maps.device)
    for _ in range(n_splits):
        order = torch.randperm(m, generator=gen).to(maps.device)
        half = m // 2
        total += pearson(a[order[:half]].mean(0), a[order[half:2 * half]].mean(0))
    rho = total / n_splits
    return 2 * rho / (1 + rho) if spearman_brown else rho


SNR_MEASURES = {"energy": energy_snr, "pairwise": pairwise_correlation, "split_half": split_half}


def snr(maps: torch.Tensor, measure: str = "energy", **kwargs) -> torch.Tensor:
    """One of :data:`SNR_MEASURES` by name, per image."""
    if measure not in SNR_MEASURES:
        raise ValueError(f"unknown SNR measure {measure!r}: choose one of {', '.join(SNR_MEASURES)}")
    return SNR_MEASURES[measure](maps, **kwargs)


def snr_vs_m(maps: torch.Tensor, ms: list[int], n_draws: int = 10, seed: int = 0) -> torch.Tensor:
    """Amplitude SNR of the mean of M models, sqrt((‖ā_M‖² − Σ_p s_p²/M) / (Σ_p s_p² / M)), for each M in ``ms``,
    averaged over random subsets of the zoo: (len(ms), N). Subtracting Σs²/M removes the noise's share of ‖ā‖²;
    under independent noise the result then grows exactly like √M in expectation."""
    _check(maps)
    a = unit_rms(maps)
    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros(len(ms), maps.shape[1], dtype=maps.dtype)
    for i, m in enumerate(ms):
        if not 2 <= m <= maps.shape[0]:
            raise ValueError(f"M={m} is outside 2…{maps.shape[0]} (the zoo size): choose M within it")
        for _ in range(n_draws):
            sub = a[torch.randperm(maps.shape[0], generator=gen)[:m].to(maps.device)]
            noise = sub.var(0, unbiased=True).sum((-2, -1)) / m  # squared standard error of the mean map
            signal = (sub.mean(0).pow(2).sum((-2, -1)) - noise).clamp_min(0)  # unbiased ‖μ‖²
            out[i] += (signal / noise.clamp_min(1e-30)).sqrt().cpu()
    return out / n_draws


def per_class(values: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean of per-image values within each class: (num_classes,), NaN for a class without images."""
    labels = labels.to(values.device)
    sums = torch.zeros(num_classes, dtype=values.dtype, device=values.device).index_add_(0, labels, values)
    counts = torch.bincount(labels, minlength=num_classes).to(values.dtype)
    return torch.where(counts > 0, sums / counts.clamp_min(1), torch.full_like(sums, math.nan))


def rank_agreement(per_image: dict[str, torch.Tensor]) -> torch.Tensor:
    """Spearman rank correlation between methods of their per-image values (K, K): near 1 where the images that are
    noisy for one method are noisy for the other, that is, where the noise is a property of the image."""
    from scipy.stats import spearmanr

    if len(per_image) < 2:
        raise ValueError("rank_agreement needs at least two methods: pass more per-image series")
    columns = torch.stack([v.detach().cpu().double() for v in per_image.values()], 1).numpy()
    if columns.shape[0] < 3:
        raise ValueError(f"rank_agreement needs at least 3 images, got {columns.shape[0]}: use more images")
    rho = spearmanr(columns).statistic
    return torch.as_tensor(rho if columns.shape[1] > 2 else [[1.0, rho], [rho, 1.0]], dtype=torch.float64)
