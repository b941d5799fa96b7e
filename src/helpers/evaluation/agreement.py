"""Agreement between the maps of different models (Woerl et al., CVPR 2023: how reproducible is one map?).

Maps are (M, N, H, W): M models, N images. Pearson correlation is taken over pixels, so it ignores each map's scale.
"""
from __future__ import annotations

import torch

from ..attribution.maps import pearson
from .correlation import correlation_matrix, mean_pairwise_correlation
from .intervals import counts, draws, percentile


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


def single_vs_rest(maps: torch.Tensor) -> torch.Tensor:
    """Correlation of each model's map with the mean of the *other* models (leave-one-out), per image: (M, N).

    Leaving the model out keeps its own noise out of the reference, so the number can fall as low as the maps
    disagree (with the model inside the mean it is pulled towards 1 by construction)."""
    m = maps.shape[0]
    if m < 2:
        raise ValueError("single vs rest needs at least two models: use a larger zoo")
    rest = (maps.sum(0, keepdim=True) - maps) / (m - 1)
    return pearson(maps, rest)


def _cosine(g: torch.Tensor) -> torch.Tensor:
    """Correlation matrices (N, M, M) from Gram matrices of centred maps (Pearson = cosine of centred maps)."""
    d = torch.diagonal(g, dim1=-2, dim2=-1).clamp_min(1e-24).sqrt()
    return g / (d.unsqueeze(-1) * d.unsqueeze(-2))


def _pair_means(corr: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean correlation over pairs of *different* models for model counts (B, M) of bootstrap draws, per image:
    (B, N), NaN for a draw without two different models (for many draws at once)."""
    corr, counts = corr.double(), counts.double()
    diag = torch.diagonal(corr, dim1=-2, dim2=-1)  # (N, M)
    quad = torch.einsum("nij,bi,bj->bn", corr, counts, counts)
    own = (counts * counts) @ diag.T
    pairs = counts.sum(1, keepdim=True) ** 2 - (counts * counts).sum(1, keepdim=True)
    return (quad - own) / pairs


def _split_and_gain(g: torch.Tensor, corr: torch.Tensor, n_boot: int, level: float, seed: int, n_draws: int):
    """Split-half interval (exactly as :func:`helpers.snr.split_half_intervals` at M // 2) and the paired gain
    split-half − single vs single on the same bootstrap draws, from the Gram matrices ``g`` (N, M, M) of the centred
    maps and their correlations ``corr``."""
    from . import snr

    n, m = g.shape[0], g.shape[-1]
    if m < 2:
        raise ValueError("averaging needs at least two models: use a larger zoo")
    half = m // 2
    split_point = snr.split_half_curve(g, [half], n_draws, seed).mean().item()
    pair_point = _pair_means(corr, torch.ones(1, m, dtype=torch.float64)).mean().item()
    gen = torch.Generator().manual_seed(seed + 1)  # the draws of snr._boot_curves
    idx = snr._draw_models(gen, n_boot, m)
    images = torch.randint(n, (n_boot, n), generator=gen)
    split = snr._split_curve(g, [half], n_draws, gen, idx)[0]  # (B, N)
    gain = split - _pair_means(corr, counts(idx, m))
    return (percentile(split_point, split.gather(1, images).nanmean(1), level),
            percentile(split_point - pair_point, gain.gather(1, images).nanmean(1), level))


def averaging_gain(maps: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0, n_draws: int = 20):
    """Does averaging help? The split-half correlation (means of two disjoint halves of M // 2 models, as in
    :func:`agreement`) minus the mean correlation of two single models, with a paired multi-bootstrap interval: the
    same model and image draws for both terms. Above 0 where the mean of half the zoo reproduces better than one
    model's map (Woerl et al.'s marginalization); for pure noise both terms are about 0."""
    from . import snr

    g = snr.gram(maps)
    return _split_and_gain(g, _cosine(g), n_boot, level, seed, n_draws)[1]


def pairwise_interval(maps: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0):
    """Mean pairwise correlation of single-model maps over models and images, with a multi-bootstrap interval
    (:func:`helpers.intervals.draws`; every replicate computed at once from model counts).
    A model drawn twice is not a pair with itself."""
    m, n = maps.shape[:2]
    corr = correlation_matrix(maps)
    models, images = draws(m, n, n_boot, seed)
    reps = _pair_means(corr, counts(models, m)).gather(1, images).mean(1)
    return percentile(_pair_means(corr, torch.ones(1, m)).mean().item(), reps, level)


def pairwise_difference(maps_a: torch.Tensor, maps_b: torch.Tensor, n_boot: int = 1000, level: float = 0.9,
                                seed: int = 0):
    """Paired difference of mean pairwise correlations, a − b, for two sets of maps of the same models and images
    (e.g. two methods, or two explained classes), with one multi-bootstrap draw shared by both."""
    if maps_a.shape[:2] != maps_b.shape[:2]:
        raise ValueError(f"maps of {tuple(maps_a.shape[:2])} and {tuple(maps_b.shape[:2])} (models, images): "
                         "compare maps of the same models and images")
    m, n = maps_a.shape[:2]
    ca, cb = correlation_matrix(maps_a), correlation_matrix(maps_b)
    models, images = draws(m, n, n_boot, seed)
    w, ones = counts(models, m), torch.ones(1, m)
    reps = (_pair_means(ca, w) - _pair_means(cb, w)).gather(1, images).mean(1)
    return percentile((_pair_means(ca, ones) - _pair_means(cb, ones)).mean().item(), reps, level)


def _rest_corrs(g: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Per image and draw (model counts (B, M)), the count-weighted mean over drawn models of corr(a_m, mean of the
    drawn models with another index): leave-one-out that also leaves out the copies a bootstrap draw makes of m."""
    diag = torch.diagonal(g, dim1=-2, dim2=-1)  # (N, M)
    gc = torch.einsum("nij,bj->bni", g, counts)  # (B, N, M)
    cgc = torch.einsum("bni,bi->bn", gc, counts)
    c = counts[:, None, :]
    num = gc - c * diag
    den = (diag * (cgc[..., None] - 2 * c * gc + c ** 2 * diag)).clamp_min(1e-30).sqrt()
    weighted = torch.where(c > 0, num / den * c, torch.zeros_like(num))
    out = weighted.sum(-1) / counts.sum(-1, keepdim=True)
    # a draw of copies of ONE model has no "others": NaN (dropped from the interval)
    return torch.where((counts > 0).sum(-1, keepdim=True) > 1, out, torch.full_like(out, float("nan")))


def agreement(maps: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0,
                      n_draws: int = 20) -> dict:
    """How much single models agree (Woerl et al., CVPR 2023), each with a multi-bootstrap interval over models and
    images: ``pairwise`` (mean correlation of two single-model maps), ``single_vs_rest`` (one model against the mean
    of the others, leave-one-out), ``split_half`` (the means of two disjoint halves of the zoo) and ``gain`` =
    :func:`averaging_gain` (split-half − pairwise, paired). A draw that repeats one model has no "rest" and is left
    out of ``single_vs_rest``."""
    from . import snr

    m, n = maps.shape[:2]
    if m < 2:
        raise ValueError("agreement needs at least two models: use a larger zoo")
    g = snr.gram(maps)  # one pass over the maps: correlations and leave-one-out both come from it
    corr = _cosine(g)
    models, images = draws(m, n, n_boot, seed)
    w, ones = counts(models, m), torch.ones(1, m, dtype=torch.float64)
    pair = percentile(_pair_means(corr, ones).mean().item(), _pair_means(corr, w).gather(1, images).mean(1), level)
    rest = percentile(_rest_corrs(g, ones).mean().item(), _rest_corrs(g, w).gather(1, images).mean(1), level)
    split, gain = _split_and_gain(g, corr, n_boot, level, seed, n_draws)
    return {"pairwise": pair, "single_vs_rest": rest, "split_half": split, "gain": gain}


def seed_vs_model(seed_maps: torch.Tensor, model_maps: torch.Tensor, n_boot: int = 1000, level: float = 0.9,
                  seed: int = 0):
    """Method noise against model noise: the mean correlation between maps of ONE model computed with different
    seeds of the method's own randomness (``seed_maps`` (S, N, H, W)) minus the mean correlation between maps of
    different models with one method seed (``model_maps`` (M, N, H, W)), same images. Interval: multi-bootstrap that
    resamples seeds and models independently and the images jointly. Above 0: the method's sampling noise is
    smaller than the noise of the model's seed; containing 0: the two cannot be told apart."""
    s, m, n = seed_maps.shape[0], model_maps.shape[0], model_maps.shape[1]
    if seed_maps.shape[1:] != model_maps.shape[1:]:
        raise ValueError(f"seed maps {tuple(seed_maps.shape)} and model maps {tuple(model_maps.shape)} must show the "
                         "same images: compute both for the same inputs and targets")
    if s < 2 or m < 2:
        raise ValueError("seed_vs_model needs at least two method seeds and two models")
    cs, cm = correlation_matrix(seed_maps), correlation_matrix(model_maps)
    ones = lambda k: torch.ones(1, k, dtype=torch.float64)  # noqa: E731
    point = (_pair_means(cs, ones(s)).mean() - _pair_means(cm, ones(m)).mean()).item()
    gen = torch.Generator().manual_seed(seed)

    ws = counts(torch.randint(s, (n_boot, s), generator=gen), s)
    wm = counts(torch.randint(m, (n_boot, m), generator=gen), m)
    images = torch.randint(n, (n_boot, n), generator=gen)
    diff = (_pair_means(cs, ws) - _pair_means(cm, wm)).gather(1, images).mean(1)
    return percentile(point, diff, level)


def split_by_verdict(diffs: dict) -> dict[str, list[str]]:
    """Names whose interval lies above 0 (``"higher"``), below 0 (``"lower"``) or contains it (``"same"``),
    in the order given: how many methods a comparison favours, counted only where the interval says so."""
    out: dict[str, list[str]] = {"higher": [], "lower": [], "same": []}
    for name, iv in diffs.items():
        out["higher" if iv.low > 0 else "lower" if iv.high < 0 else "same"].append(name)
    return out


def extreme_method(per_method: dict[str, torch.Tensor], lowest: bool = True, n_boot: int = 1000,
                   level: float = 0.9, seed: int = 0) -> tuple[str, dict]:
    """The method whose single models agree least (``lowest``) or most (mean pairwise correlation), and the paired
    difference other − extreme (:func:`pairwise_difference`, same models and images) for every other method: those
    whose interval contains 0 cannot be told apart from the extreme one."""
    points = {k: mean_pairwise_correlation(v).mean().item() for k, v in per_method.items()}
    ext = (min if lowest else max)(points, key=points.get)
    return ext, {k: pairwise_difference(v, per_method[ext], n_boot, level, seed)
                 for k, v in per_method.items() if k != ext}


def busiest_model(pairs: list[tuple[int, int]]) -> tuple[int, int]:
    """The model that appears in most of ``pairs`` (e.g. every method's most different pair) and how often;
    ties go to the lower model number."""
    from collections import Counter

    counts = Counter(k for p in pairs for k in p)
    best = max(counts.values())
    return min(k for k, c in counts.items() if c == best), best


def busiest_model_chance(n_models: int, n_pairs: int, count: int, n_sim: int = 10000, seed: int = 0) -> float:
    """Probability that some model appears in at least ``count`` of ``n_pairs`` pairs if every pair were drawn
    uniformly among the pairs of different models (a null for :func:`busiest_model`, by simulation)."""
    if n_models < 2:
        raise ValueError("pairs need at least two models")
    gen = torch.Generator().manual_seed(seed)
    a = torch.randint(n_models, (n_sim, n_pairs), generator=gen)
    b = torch.randint(n_models - 1, (n_sim, n_pairs), generator=gen)
    b = b + (b >= a).long()  # a different model, uniformly
    counts = torch.zeros(n_sim, n_models).scatter_add_(1, torch.cat([a, b], 1), torch.ones(n_sim, 2 * n_pairs))
    return (counts.amax(1) >= count).double().mean().item()


def _jackknife_parts(corr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean pairwise correlation from per-image correlation matrices (N, M, M): the point, its leave-one-model-out
    values (M,) and its leave-one-image-out values (N,)."""
    corr = corr.double()
    n, m, _ = corr.shape
    diag = torch.diagonal(corr, dim1=1, dim2=2)
    off = corr.sum((1, 2)) - diag.sum(1)  # (N,): the sum over pairs i ≠ j
    per_image = off / (m * (m - 1))
    loo_models = ((off[:, None] - 2 * (corr.sum(2) - diag)) / ((m - 1) * (m - 2))).mean(0)
    loo_images = (per_image.sum() - per_image) / max(1, n - 1)
    return per_image.mean(), loo_models, loo_images


def pairwise_jackknife(maps_a: torch.Tensor, maps_b: torch.Tensor | None = None, level: float = 0.9):
    """Mean pairwise correlation (or the paired difference a − b) with a two-way jackknife interval: the variance
    is the sum of the leave-one-model-out and leave-one-image-out jackknife variances, the quantile Student's t
    with min(M, N) − 1 degrees of freedom. In the calibration simulation (:mod:`helpers.evaluation.calibration`)
    it keeps its nominal coverage where the percentile multi-bootstrap of :func:`pairwise_interval` does not
    (at 10 models × 30 images, or 24 × 6). Needs M ≥ 3 and N ≥ 2."""
    from scipy.stats import t as student

    from .intervals import Interval

    m, n = maps_a.shape[:2]
    if m < 3 or n < 2:
        raise ValueError(f"a jackknife over models and images needs ≥ 3 models and ≥ 2 images, got {m} × {n}")
    point, lm, li = _jackknife_parts(correlation_matrix(maps_a))
    if maps_b is not None:
        if maps_b.shape[:2] != maps_a.shape[:2]:
            raise ValueError("compare maps of the same models and images")
        pb, lmb, lib = _jackknife_parts(correlation_matrix(maps_b))
        point, lm, li = point - pb, lm - lmb, li - lib
    var = (m - 1) / m * ((lm - lm.mean()) ** 2).sum() + (n - 1) / n * ((li - li.mean()) ** 2).sum()
    q = float(student.ppf((1 + level) / 2, min(m, n) - 1))
    half = q * float(var.sqrt())
    return Interval(float(point), float(point) - half, float(point) + half, level)


CONTRAST_STATS = ("pairwise", "single_vs_rest", "split_half", "gain")


def _stat_draws(maps: torch.Tensor, n_boot: int, gen: torch.Generator, n_draws: int, seed: int):
    """The statistics of :func:`agreement` per image: points {name: (N,)} and replicates {name: (B, N)} over
    ``n_boot`` model draws of this zoo (from ``gen``; images are resampled by the caller)."""
    from . import snr

    m = maps.shape[0]
    if m < 2:
        raise ValueError("a contrast of agreement needs at least two models per zoo: use larger zoos")
    g = snr.gram(maps)
    corr = _cosine(g)
    ones = torch.ones(1, m, dtype=torch.float64)
    idx = snr._draw_models(gen, n_boot, m)
    w = counts(idx, m)
    half = m // 2
    point = {"pairwise": _pair_means(corr, ones)[0], "single_vs_rest": _rest_corrs(g, ones)[0],
             "split_half": snr.split_half_curve(g, [half], n_draws, seed)[0].double()}
    reps = {"pairwise": _pair_means(corr, w), "single_vs_rest": _rest_corrs(g, w),
            "split_half": snr._split_curve(g, [half], n_draws, gen, idx)[0].double()}
    point["gain"], reps["gain"] = point["split_half"] - point["pairwise"], reps["split_half"] - reps["pairwise"]
    return point, reps


def contrast(maps_a: torch.Tensor, maps_b: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0,
             n_draws: int = 20) -> dict:
    """Trained against control: each statistic of :func:`agreement` (``pairwise``, ``single_vs_rest``,
    ``split_half``, ``gain``) of zoo ``a`` minus that of zoo ``b`` (e.g. trained − untrained), for maps of the same
    images, with a paired interval: every replicate resamples the images once for both zoos (paired over images)
    and the models of each zoo independently (the zoos are different models; they may differ in size)."""
    if maps_a.shape[1:] != maps_b.shape[1:]:
        raise ValueError(f"maps of {tuple(maps_a.shape)} and {tuple(maps_b.shape)}: compare both zoos on the same "
                         "images (models × images × H × W, any number of models)")
    n = maps_a.shape[1]
    gen = torch.Generator().manual_seed(seed + 2)
    images = torch.randint(n, (n_boot, n), generator=gen)
    pa, ra = _stat_draws(maps_a, n_boot, gen, n_draws, seed)
    pb, rb = _stat_draws(maps_b, n_boot, gen, n_draws, seed)
    return {k: percentile((pa[k] - pb[k]).mean().item(), (ra[k] - rb[k]).gather(1, images).nanmean(1), level)
            for k in CONTRAST_STATS}


def mean_map_correlation(maps: torch.Tensor, reference: torch.Tensor, n_boot: int = 1000, level: float = 0.9,
                         seed: int = 0):
    """How much of a seed-averaged map a reference already gives: the Pearson correlation (over pixels) of the mean
    map over models of ``maps`` (M, N, H, W) with ``reference`` (N, H, W), e.g. the input image (channels summed)
    or an untrained zoo's mean map, averaged over the images, with an interval over images."""
    from .intervals import mean_interval

    mean = maps.mean(0)
    if reference.shape != mean.shape:
        raise ValueError(f"reference of shape {tuple(reference.shape)} for mean maps of {tuple(mean.shape)}: give "
                         "one (H, W) reference per image")
    r = pearson(mean.double().cpu(), reference.double().cpu())
    return mean_interval(r[None], n_boot, level, seed)
