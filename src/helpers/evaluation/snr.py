"""Signal-to-noise ratio of saliency maps across a zoo of seeded models, with intervals.

Woerl, Disselhoff & Wand ("Initialization Noise in Image Gradients and Saliency Maps", CVPR 2023) report an SNR per
class, method and architecture, but their poster gives no formula. This module defines the book's SNR so that it can
come out low, zero or negative, and reports it with bootstrap intervals.

Maps ``a`` have shape (M models, N images, H, W), channels summed (:func:`helpers.maps.to_2d`). For one image, model
m's map is taken as a_m = μ + ε_m: μ the part shared by all seeds, ε_m independent seed noise with mean 0 and
covariance Σ. Every map is first **centred** (its own spatial mean removed, :func:`centre`): a constant offset, shared
or not, says nothing about *where* a map points and is not signal. No rescaling follows unless ``scale="rms"``.

Energy SNR (:func:`energy_snr`), per image, with ā the mean over models and s²_p the unbiased variance of pixel p
over models:

    noise  = tr Σ̂ = Σ_p s²_p                              (unbiased for tr Σ)
    signal = ‖ā‖² − tr Σ̂ / M                               (unbiased for ‖μ‖²: E‖ā‖² = ‖μ‖² + tr Σ / M)
    SNR    = signal / noise                                 (estimates ‖μ‖² / tr Σ)

Equivalently, signal is the mean of ⟨a_i, a_j⟩ and noise the mean of ‖a_i − a_j‖²/2 over pairs of different models.
It is the SNR of ONE model's map; its expectation does not depend on M (up to a ratio bias of order
1/((M−1)·P_eff), P_eff the effective number of independent pixels). The mean of M maps has SNR M·SNR
(:func:`snr_of_mean`). For pure noise the SNR scatters around 0 and is negative about half the time; it is not
clamped, because clamping would bias the mean over images upwards. All of it is computed from the per-image Gram
matrix G_ij = ⟨a_i, a_j⟩ of the centred maps (:func:`gram`), which makes resampling models cheap.

Relation to correlation: the Pearson correlation of two single-model maps (:func:`pairwise_correlation`) estimates
‖μ‖²/(‖μ‖² + tr Σ) = SNR/(1 + SNR) only in expectation and only for independent noise. With ``scale="rms"`` every
centred map has unit RMS and (no map being constant) the energy SNR is exactly ρ̄/(1 − ρ̄), ρ̄ the mean pairwise
correlation: the same information in other units. Without scaling, a seed whose map is larger weighs more.

Split-half reproducibility (:func:`split_half_curve`) is measured, not derived: the correlation between the means
of two disjoint random sets of M models each. Under independent noise it follows Spearman–Brown,
ρ_M = M ρ_1 / (1 + (M − 1) ρ_1); noise shared by groups of seeds averages away more slowly and the curve falls
below that.

Intervals are multi-bootstrap intervals (Sellam et al., "The MultiBERTs", ICLR 2022): each replicate resamples the
models (one draw for all images) and the images, both with replacement (:func:`bootstrap_snr`, :func:`compare`,
:func:`contrast` (two zoos: images paired, models drawn per zoo), :func:`per_class_intervals`,
:func:`split_half_intervals`, :func:`models_needed`), returned as :class:`helpers.intervals.Interval`;
:func:`verdict` (from :mod:`helpers.intervals`) picks the phrase a paired difference supports.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .correlation import mean_pairwise_correlation
from .intervals import Interval, counts, percentile

_CHUNK = 1 << 22  # elements of the largest intermediate tensor in the quadratic forms


@dataclass(frozen=True)
class ModelsNeeded(Interval):
    """Number of models whose mean reaches split-half correlation ``r`` (see :func:`models_needed`)."""

    r: float = 0.9
    extrapolated: bool = False  # the point estimate lies beyond n_models // 2 and comes from Spearman–Brown
    measured_up_to: int = 0  # the largest M on the measured curve

    def __format__(self, spec: str) -> str:
        spec = spec or ".0f"
        text = f"{Interval.__format__(self, spec)} models for r = {self.r:g}"
        return text + (f" (extrapolated beyond M = {self.measured_up_to})" if self.extrapolated else "")


def _check(maps: torch.Tensor, need: int = 2) -> None:
    if maps.ndim != 4:
        raise ValueError(f"maps must be (M models, N images, H, W) (or a Gram matrix from snr.gram), got "
                         f"{tuple(maps.shape)}: sum channels first with helpers.maps.to_2d")
    if maps.shape[0] < need:
        raise ValueError(f"this SNR needs at least {need} models, got {maps.shape[0]}: use a larger zoo")


def _as_gram(maps_or_gram: torch.Tensor, scale: str | None = None) -> torch.Tensor:
    """A Gram matrix (N, M, M) as given (ndim 3), or computed from maps (ndim 4)."""
    x = maps_or_gram
    if x.ndim == 3 and x.shape[-1] == x.shape[-2] and torch.allclose(x, x.transpose(-2, -1)):
        if scale is not None:
            raise ValueError("scale applies to maps, not to a Gram matrix: pass it to snr.gram(maps, scale=...)")
        if x.shape[-1] < 2:
            raise ValueError(f"this SNR needs at least 2 models, got {x.shape[-1]}: use a larger zoo")
        return x.detach().to("cpu", torch.float64)
    return gram(x, scale)


def centre(maps: torch.Tensor) -> torch.Tensor:
    """Each map minus its own spatial mean (over the last two axes)."""
    return maps - maps.mean((-2, -1), keepdim=True)


def unit_rms(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map (last two axes) to root-mean-square 1 (all-zero maps stay zero). Does not centre."""
    rms = maps.pow(2).mean((-2, -1), keepdim=True).sqrt()
    return maps / rms.clamp_min(torch.finfo(maps.dtype).tiny)


def gram(maps: torch.Tensor, scale: str | None = None) -> torch.Tensor:
    """Per-image Gram matrices of the centred maps, G[n, i, j] = ⟨a_i, a_j⟩: (N, M, M), float64 on the CPU.

    ``scale="rms"`` scales each centred map to unit RMS first (G_ij · P / √(G_ii G_jj), P pixels)."""
    _check(maps)
    if scale not in (None, "rms"):
        raise ValueError(f"unknown scale {scale!r}: use None (no rescaling) or 'rms' (unit RMS per centred map)")
    flat = centre(maps).flatten(-2).transpose(0, 1)  # (N, M, P)
    g = torch.matmul(flat, flat.transpose(1, 2)).to("cpu", torch.float64)
    g = (g + g.transpose(1, 2)) / 2  # exactly symmetric
    if scale == "rms":
        d = torch.diagonal(g, dim1=-2, dim2=-1).clamp_min(torch.finfo(torch.float64).tiny).sqrt()
        g = g / (d.unsqueeze(-1) * d.unsqueeze(-2)) * flat.shape[-1]
    return g


def _quad(g: torch.Tensor, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_ij x_ki G_nij y_kj for weight rows x, y (K, M) and G (N, M, M): (K, N), in chunks of K."""
    y = x if y is None else y
    n, m = g.shape[0], g.shape[-1]
    flat = g.transpose(0, 1).reshape(m, n * m)  # [i, (n, j)]: one matrix product for all images
    step = max(1, _CHUNK // max(1, n * m))
    out = [((x[lo:lo + step] @ flat).view(-1, n, m) * y[lo:lo + step, None]).sum(-1)
           for lo in range(0, x.shape[0], step)]
    return torch.cat(out) if out else x.new_zeros(0, n)


def _signal_noise(g: torch.Tensor, w: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Signal and noise energy per image from G (N, M, M), for model weights w (K, M) (counts, as drawn by the
    bootstrap): (K, N) each; w = None means every model once: (N,) each.

    Both are means over ordered pairs of *different* models, weighted by w_i w_j: signal = mean ⟨a_i, a_j⟩,
    noise = mean ‖a_i − a_j‖²/2. With w = 1 they equal ‖ā‖² − tr Σ̂/M and tr Σ̂. A bootstrap draw repeats models;
    pairs of a model with its own copy are left out, because they would add ‖a_i‖² (noise included) to the signal
    and 0 to the noise (an upward bias of about (1 + SNR)/M)."""
    single = w is None
    if single:
        w = torch.ones(1, g.shape[-1], dtype=g.dtype)
    d = torch.diagonal(g, dim1=-2, dim2=-1)  # (N, M)
    q = _quad(g, w)  # wᵀGw
    self_pairs = (w * w) @ d.T  # Σ w_i² G_ii
    total = w.sum(1, keepdim=True)
    pairs = total ** 2 - (w * w).sum(1, keepdim=True)  # ordered pairs of different models
    signal = (q - self_pairs) / pairs
    noise = (total * (w @ d.T) - q) / pairs
    return (signal[0], noise[0]) if single else (signal, noise)


def _ratio(signal: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return signal / noise.clamp_min(torch.finfo(noise.dtype).tiny)


def energy_snr(maps: torch.Tensor, scale: str | None = None) -> torch.Tensor:
    """SNR of one model's map per image, (‖ā‖² − tr Σ̂/M) / tr Σ̂ on centred maps: (N,). Negative values occur
    for pure noise and are kept; identical centred maps (no noise) give a huge finite value. Accepts maps
    (M, N, H, W) or a Gram matrix from :func:`gram`."""
    return _ratio(*_signal_noise(_as_gram(maps, scale)))


def snr_of_mean(snr_single: torch.Tensor | float, m: int) -> torch.Tensor | float:
    """SNR of the mean of m independent maps, from the single-map SNR: noise energy shrinks by m, so m · SNR."""
    return snr_single * m


def pairwise_correlation(maps: torch.Tensor) -> torch.Tensor:
    """Mean Pearson correlation over pairs of single-model maps, per image: (N,). Scale-free already."""
    _check(maps)
    return mean_pairwise_correlation(maps)


def _draw_models(gen: torch.Generator, b: int, m: int) -> torch.Tensor:
    """b bootstrap samples of model indices (b, m), each with at least two different models (a sample of copies of
    one model has no pairs; such draws, probability m^(1−m), are drawn again)."""
    idx = torch.randint(m, (b, m), generator=gen)
    while True:
        bad = (idx == idx[:, :1]).all(1)
        if not bad.any():
            return idx
        idx[bad] = torch.randint(m, (int(bad.sum()), m), generator=gen)


def _check_boot(n_boot: int, level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}: use e.g. 0.9")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}: use e.g. 1000")


def _replicates(grams: list[torch.Tensor], n_boot: int, seed: int) -> list[torch.Tensor]:
    """Mean over images of the per-image SNR for n_boot multi-bootstrap replicates, the same model and image draws
    for every Gram matrix in ``grams`` (same models and images): one (n_boot,) tensor per Gram matrix."""
    n, m = grams[0].shape[0], grams[0].shape[-1]
    gen = torch.Generator().manual_seed(seed)
    w = counts(_draw_models(gen, n_boot, m), m)
    images = torch.randint(n, (n_boot, n), generator=gen)
    return [_ratio(*_signal_noise(g, w)).gather(1, images).mean(1) for g in grams]


def bootstrap_snr(maps: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0,
                  scale: str | None = None) -> Interval:
    """Mean over images of the energy SNR with a multi-bootstrap percentile interval. Accepts maps or a Gram matrix.

    Each replicate resamples the models (one draw for all images) and the images with replacement. Pairs of a model
    with its own copy are left out of the signal and noise (see :func:`_signal_noise`); counting them puts the
    replicates about (1 + SNR)/M above the estimate and dropped coverage to 0.58 (8 models) and 0.78 (24).

    Percentile interval: the SNR is a ratio with a right-skewed sampling distribution that its bootstrap
    distribution reproduces, and the percentile interval follows monotone transformations (e.g. the log) of it. On
    eight synthetic designs at level 0.9 (6–24 models with log-normal noise levels, 8–40 images with SNRs uniform
    around their mean) it covered 0.815–0.985 (basic 0.795–0.98, bias-corrected 0.81–0.98): never more than 0.01
    further from 0.9 than those, 0.025–0.03 closer in two designs; about 0.89 with 16–24 models, 0.815–0.845 with
    6–8 models whose noise levels differ, and 0.985 when neither images nor models differ beyond pixel noise,
    where resampling both double-counts their
    interaction (Owen, "The pigeonhole bootstrap", 2007). The tests measure 0.875 (200 zoos, 16 models, 30 images).
    With fewer than about 8 models the model draws are coarse; read the interval as a rough one."""
    _check_boot(n_boot, level)
    g = _as_gram(maps, scale)
    point = energy_snr(g).mean().item()
    return percentile(point, _replicates([g], n_boot, seed)[0], level)


def compare(maps_a: torch.Tensor, maps_b: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0,
            scale: str | None = None) -> Interval:
    """Mean energy SNR of A minus that of B, on the same models and images, with a paired multi-bootstrap percentile
    interval (each replicate resamples the same models and images for both). Write "A differs from B" only when the
    interval excludes 0 (:func:`verdict`)."""
    _check_boot(n_boot, level)
    ga, gb = _as_gram(maps_a, scale), _as_gram(maps_b, scale)
    if ga.shape != gb.shape:
        raise ValueError(f"compare needs maps of the same models and images, got (N, M, M) = {tuple(ga.shape)} and "
                         f"{tuple(gb.shape)}: pass maps of the same zoo and images")
    point = (energy_snr(ga).mean() - energy_snr(gb).mean()).item()
    ra, rb = _replicates([ga, gb], n_boot, seed)
    return percentile(point, ra - rb, level)


def contrast(maps_a: torch.Tensor, maps_b: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0,
             measure: str = "snr") -> Interval:
    """Mean energy SNR of zoo A minus that of zoo B (e.g. trained − untrained) on the **same images** and
    *different* models, with a percentile interval whose replicates resample the images once for both zoos (paired
    over images) and the models of each zoo independently (the zoos may differ in size), as
    :func:`helpers.evaluation.agreement.contrast` does for agreement. Accepts maps or Gram matrices.

    ``measure="pairwise"``: the mean pairwise Pearson correlation instead (maps only), from the unit-RMS Gram
    matrix, where signal / (signal + noise) is exactly the mean correlation over pairs of different models; the
    same statistic as ``agreement.contrast(...)["pairwise"]`` at a fraction of its cost."""
    _check_boot(n_boot, level)
    if measure not in ("snr", "pairwise"):
        raise ValueError(f"measure={measure!r}: use 'snr' or 'pairwise'")
    scale = "rms" if measure == "pairwise" else None
    ga, gb = _as_gram(maps_a, scale), _as_gram(maps_b, scale)
    if ga.shape[0] != gb.shape[0]:
        raise ValueError(f"contrast needs maps of the same images, got {ga.shape[0]} and {gb.shape[0]} images: "
                         "compute both zoos' maps on the same inputs")

    def stat(signal: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return signal / (signal + noise) if measure == "pairwise" else _ratio(signal, noise)

    n = ga.shape[0]
    gen = torch.Generator().manual_seed(seed + 2)
    images = torch.randint(n, (n_boot, n), generator=gen)
    reps = []
    for g in (ga, gb):
        m = g.shape[-1]
        reps.append(stat(*_signal_noise(g, counts(_draw_models(gen, n_boot, m), m))))
    point = (stat(*_signal_noise(ga)).mean() - stat(*_signal_noise(gb)).mean()).item()
    return percentile(point, (reps[0] - reps[1]).gather(1, images).mean(1), level)


def per_class(values: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean of per-image values within each class: (num_classes,), NaN for a class without images."""
    labels = labels.to(values.device)
    sums = torch.zeros(num_classes, dtype=values.dtype, device=values.device).index_add_(0, labels, values)
    counts = torch.bincount(labels, minlength=num_classes).to(values.dtype)
    return torch.where(counts > 0, sums / counts.clamp_min(1), torch.full_like(sums, math.nan))


def per_class_intervals(maps: torch.Tensor, labels: torch.Tensor, num_classes: int, n_boot: int = 1000,
                        level: float = 0.9, seed: int = 0, scale: str | None = None) -> list[Interval]:
    """:func:`bootstrap_snr` within each class (its images, all models): one Interval per class, NaN for a class
    without images. A class with one image gets an interval over models only."""
    _check_boot(n_boot, level)
    g = _as_gram(maps, scale)
    labels = labels.detach().cpu()
    if labels.shape != (g.shape[0],):
        raise ValueError(f"labels must have one entry per image ({g.shape[0]}), got {tuple(labels.shape)}: "
                         f"pass the labels of the images the maps were computed for")
    out = []
    for c in range(num_classes):
        sel = labels == c
        out.append(bootstrap_snr(g[sel], n_boot, level, seed) if sel.any()
                   else Interval(math.nan, math.nan, math.nan, level))
    return out


def _split_corr(g: torch.Tensor, ca: torch.Tensor, cb: torch.Tensor,
                signal: torch.Tensor | None = None) -> torch.Tensor:
    """Correlation between the means of two sets of M models given as counts ca, cb (K, M_zoo): (K, N).

    With 0/1 counts (no model twice) this is exactly the Pearson correlation of the two centred mean maps. Bootstrap
    samples repeat models: a pair of positions holding the same model would contribute ‖a_k‖² (its noise included)
    where two different models contribute about ‖μ‖², making halves agree by construction. Such pairs, within a half
    and across halves, are given the value ``signal`` (K, N) instead: the zoo's mean ⟨a_i, a_j⟩ over pairs of
    different models (:func:`_signal_noise`), which is what such a pair is worth on average in the bootstrap world.
    The substituted sums need not form a Gram matrix, so a replicate can leave [−1, 1]; callers clip it."""
    n, mz = g.shape[0], g.shape[-1]
    d = torch.diagonal(g, dim1=-2, dim2=-1).T  # (M_zoo, N)
    m = ca.sum(1, keepdim=True)
    signal = torch.zeros(ca.shape[0], n, dtype=g.dtype) if signal is None else signal
    flat = g.transpose(0, 1).reshape(mz, n * mz)
    step = max(1, _CHUNK // max(1, n * mz))
    out = []
    for lo in range(0, ca.shape[0], step):
        a, b, mm, sig = ca[lo:lo + step], cb[lo:lo + step], m[lo:lo + step], signal[lo:lo + step]
        ga, gb = (a @ flat).view(-1, n, mz), (b @ flat).view(-1, n, mz)  # rows of G summed over each half

        def inner(gx, x, y, within):
            """(1/M²) Σ over position pairs p ∈ x, q ∈ y of G, same-model pairs p ≠ q replaced by ``signal``."""
            dup = x * y
            same = dup.sum(1, keepdim=True) - (mm if within else 0)  # pairs p ≠ q holding one model twice
            own = x @ d if within else 0  # p = q: each position with itself
            return ((gx * y[:, None]).sum(-1) - dup @ d + own + same * sig) / mm ** 2

        norm = (inner(ga, a, a, True) * inner(gb, b, b, True)).clamp_min(torch.finfo(g.dtype).tiny).sqrt()
        out.append(inner(ga, a, b, False) / norm)
    return torch.cat(out)


def _check_ms(ms: list[int], n_models: int) -> list[int]:
    ms = [int(k) for k in ms]
    for k in ms:
        if not 1 <= k <= n_models // 2:
            raise ValueError(f"M={k} is outside 1…{n_models // 2} (two disjoint sets of M among {n_models} models): "
                             f"choose M ≤ n_models // 2")
    return ms


def _split_curve(g: torch.Tensor, ms: list[int], n_draws: int, gen: torch.Generator,
                 idx: torch.Tensor | None = None) -> torch.Tensor:
    """Split-half correlation averaged over draws: (len(ms), N) for idx None, else (len(ms), B, N) for the
    bootstrap samples of model indices idx (B, n) (halves are drawn among the positions of each sample)."""
    n = g.shape[-1]
    boot = idx is not None
    idx = torch.arange(n).unsqueeze(0) if idx is None else idx
    b = idx.shape[0]
    perms = torch.rand(b, n_draws, n, generator=gen).argsort(-1)
    ids = idx.gather(1, perms.flatten(1)).view(b, n_draws, n)
    out = []
    signal = _signal_noise(g)[0].expand(b * n_draws, -1) if boot else None
    for k in ms:
        ca = counts(ids[..., :k], n).flatten(0, 1)
        cb = counts(ids[..., k:2 * k], n).flatten(0, 1)
        rho = _split_corr(g, ca, cb, signal).view(b, n_draws, -1)
        out.append(rho.clamp(-1, 1).nanmean(1) if boot else rho.mean(1)[0])
    return torch.stack(out)


def split_half_curve(maps: torch.Tensor, ms: list[int], n_draws: int = 50, seed: int = 0,
                     scale: str | None = None) -> torch.Tensor:
    """Pearson correlation between the mean maps of two disjoint random sets of M models each, averaged over
    ``n_draws`` draws, for each M in ``ms`` (1 ≤ M ≤ n_models // 2): (len(ms), N). Accepts maps or a Gram matrix.

    Pure noise gives about 0 at every M; signal plus independent noise gives M ρ_1 / (1 + (M − 1) ρ_1)."""
    g = _as_gram(maps, scale)
    ms = _check_ms(ms, g.shape[-1])
    return _split_curve(g, ms, n_draws, torch.Generator().manual_seed(seed))


def split_half(maps: torch.Tensor, n_splits: int = 20, seed: int = 0, spearman_brown: bool = False,
               scale: str | None = None) -> torch.Tensor:
    """Correlation between the mean maps of two disjoint random halves of the zoo (n_models // 2 each), per image:
    (N,). With ``spearman_brown`` it is projected to a zoo of the full size: 2ρ / (1 + ρ)."""
    g = _as_gram(maps, scale)
    rho = split_half_curve(g, [g.shape[-1] // 2], n_splits, seed)[0]
    return 2 * rho / (1 + rho) if spearman_brown else rho


def split_half_intervals(maps: torch.Tensor, ms: list[int], n_draws: int = 20, n_boot: int = 1000,
                         level: float = 0.9, seed: int = 0, scale: str | None = None) -> list[Interval]:
    """The image-mean split-half curve with multi-bootstrap percentile intervals, one Interval per M in ``ms``.

    Each replicate resamples models and images with replacement and draws ``n_draws`` pairs of disjoint halves
    among the resampled models; a model drawn twice does not count as agreeing with itself (:func:`_split_corr`).
    On synthetic zoos the intervals are conservative (coverage 0.93–1 at level 0.9)."""
    _check_boot(n_boot, level)
    g = _as_gram(maps, scale)
    ms = _check_ms(ms, g.shape[-1])
    point = split_half_curve(g, ms, n_draws, seed).mean(1)
    reps = _boot_curves(g, ms, n_draws, n_boot, seed)
    return [percentile(p, r, level) for p, r in zip(point.tolist(), reps)]


def _boot_curves(g: torch.Tensor, ms: list[int], n_draws: int, n_boot: int, seed: int) -> torch.Tensor:
    """Image-mean split-half curves of n_boot multi-bootstrap replicates: (len(ms), n_boot)."""
    n, m = g.shape[0], g.shape[-1]
    gen = torch.Generator().manual_seed(seed + 1)
    idx = _draw_models(gen, n_boot, m)
    images = torch.randint(n, (n_boot, n), generator=gen)
    curves = _split_curve(g, ms, n_draws, gen, idx)  # (len(ms), B, N)
    return curves.gather(2, images.expand(len(ms), -1, -1)).nanmean(2)


def _models_for(curve: torch.Tensor, ms: list[int], r: float) -> tuple[float, bool]:
    """The smallest M on the curve with ρ ≥ r, else Spearman–Brown from the last point (inf if ρ ≤ 0)."""
    reached = (curve >= r).nonzero()
    if len(reached):
        return float(ms[int(reached[0])]), False
    rho = float(curve[-1])
    if not rho > 0:
        return math.inf, True
    k = r * (1 - rho) / (rho * (1 - r))  # solves k ρ / (1 + (k − 1) ρ) = r
    return float(math.ceil(ms[-1] * k - 1e-9)), True


def models_needed(maps: torch.Tensor, r: float = 0.9, n_draws: int = 20, n_boot: int = 200, level: float = 0.9,
                  seed: int = 0, scale: str | None = None) -> ModelsNeeded:
    """Number of models whose mean map reaches split-half correlation ``r`` with the mean of as many others.

    Measured on the image-mean curve at M = 1 … n_models // 2 (the smallest M with ρ_M ≥ r); where the curve stays
    below r, extrapolated from the largest measured M with Spearman–Brown, ρ_kM = k ρ_M / (1 + (k − 1) ρ_M), rounded
    up (``extrapolated=True``; inf when ρ ≤ 0). The interval is the percentile interval of the same rule applied to
    multi-bootstrap replicates of the curve (the rule is monotone in the curve, so percentiles carry over); its ends
    may be extrapolated even where the point is measured."""
    _check_boot(n_boot, level)
    if not 0 < r < 1:
        raise ValueError(f"r must lie in (0, 1), got {r}: use e.g. 0.9")
    g = _as_gram(maps, scale)
    ms = list(range(1, g.shape[-1] // 2 + 1))
    point, extrapolated = _models_for(split_half_curve(g, ms, n_draws, seed).mean(1), ms, r)
    reps = torch.tensor([_models_for(c, ms, r)[0] for c in _boot_curves(g, ms, n_draws, n_boot, seed).T],
                        dtype=torch.float64)
    q = [(1 - level) / 2, (1 + level) / 2]
    low, high = (float(torch.quantile(reps, x, interpolation="lower" if x < 0.5 else "higher")) for x in q)
    return ModelsNeeded(point, low, high, level, r=r, extrapolated=extrapolated, measured_up_to=ms[-1])


SNR_MEASURES = {"energy": energy_snr, "pairwise": pairwise_correlation, "split_half": split_half}


def snr(maps: torch.Tensor, measure: str = "energy", **kwargs) -> torch.Tensor:
    """One of :data:`SNR_MEASURES` by name, per image: energy SNR, mean pairwise correlation, split-half."""
    if measure not in SNR_MEASURES:
        raise ValueError(f"unknown SNR measure {measure!r}: choose one of {', '.join(SNR_MEASURES)}")
    return SNR_MEASURES[measure](maps, **kwargs)


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
