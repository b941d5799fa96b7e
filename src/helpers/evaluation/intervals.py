"""Confidence intervals over seeds and images: the multi-bootstrap (Sellam et al., *The MultiBERTs*, ICLR 2022).

A statistic of a zoo depends on which models were trained and which images were looked at; both are samples. Each
bootstrap replicate resamples the models and the images with replacement (the same model draw for every image) and
recomputes the statistic; the interval is the percentile interval of the replicates. Chapters compare two numbers in
words only where the interval of their (paired) difference excludes 0 (:func:`verdict`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
import torch



@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval [low, high] at ``level``."""

    point: float
    low: float
    high: float
    level: float = 0.9

    def __format__(self, spec: str) -> str:
        """``f"{iv:.2f}"`` gives "0.52 [0.47, 0.58]" (any float format spec, such as ".1%")."""
        spec = spec or ".2f"
        return f"{self.point:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"

    def __str__(self) -> str:
        return format(self)

    def excludes(self, value: float = 0.0) -> bool:
        """True if ``value`` lies outside [low, high] (False for an interval with NaN ends)."""
        return bool(value < self.low or value > self.high)


def verdict(diff: Interval, higher: str, lower: str, same: str) -> str:
    """The phrase a paired difference supports: ``higher`` if its interval lies above 0, ``lower`` if below,
    ``same`` (e.g. "cannot be told apart") if it contains 0."""
    if diff.low > 0:
        return higher
    if diff.high < 0:
        return lower
    return same


def percentile(point: float, reps: torch.Tensor, level: float = 0.9) -> Interval:
    """Percentile interval of bootstrap replicates ``reps`` around ``point`` (non-finite replicates dropped; NaN
    ends where none is left or the point itself is NaN)."""
    if not 0 < level < 1:
        raise ValueError(f"level={level}: use a coverage between 0 and 1, such as 0.9")
    reps = reps[torch.isfinite(reps)].double()
    if reps.numel() == 0 or point != point:
        return Interval(float(point), float("nan"), float("nan"), level)
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    low, high = torch.quantile(reps, q).tolist()
    return Interval(float(point), low, high, level)


def draws(n_models: int, n_images: int, n_boot: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-bootstrap draws: (n_boot, n_models) model indices and (n_boot, n_images) image indices, both with
    replacement; replicate b uses one model draw for all of its images."""
    if n_models < 1 or n_images < 1 or n_boot < 1:
        raise ValueError("a bootstrap needs at least one model, one image and one replicate")
    gen = torch.Generator().manual_seed(seed)
    models = torch.empty(n_boot, n_models, dtype=torch.long)
    images = torch.empty(n_boot, n_images, dtype=torch.long)
    for b in range(n_boot):
        models[b] = torch.randint(n_models, (n_models,), generator=gen)
        images[b] = torch.randint(n_images, (n_images,), generator=gen)
    return models, images


def counts(idx: torch.Tensor, m: int) -> torch.Tensor:
    """How often each of ``m`` models occurs in each row of bootstrap indices: (..., m) float64."""
    out = torch.zeros(*idx.shape[:-1], m, dtype=torch.float64)
    return out.scatter_add_(-1, idx, torch.ones(idx.shape, dtype=torch.float64))


@functools.lru_cache(maxsize=32)
def draw_counts(n_models: int, n_images: int, n_boot: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`draws` as counts, (n_boot, n_models) and (n_boot, n_images), computed once per shape and seed (the
    same draws serve every score of a chapter; the tensors are shared: do not modify them)."""
    models, images = draws(n_models, n_images, n_boot, seed)
    return counts(models, n_models), counts(images, n_images)


def boot_means(values: torch.Tensor, n_boot: int = 1000, seed: int = 0) -> torch.Tensor:
    """Multi-bootstrap replicates (Sellam et al. 2022) of the mean over the last two axes (models, images) of
    ``values`` (..., M, N): (n_boot, ...). Replicate r uses the model and image draws of :func:`draws`, as counts
    (one matrix product instead of a loop)."""
    v = values.double().cpu()
    m, n = v.shape[-2:]
    cm, ci = draw_counts(m, n, n_boot, seed)  # (R, M), (R, N): how often each is drawn
    return torch.einsum("...mn,rm,rn->r...", v, cm, ci) / (m * n)


def mean_interval(values: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0) -> Interval:
    """Mean of a (models, images) table with a multi-bootstrap interval: each replicate draws models and images
    with replacement."""
    return percentile(float(values.double().mean()), boot_means(values, n_boot, seed), level)


@functools.lru_cache(maxsize=64)
def student_quantile(level: float, df: int) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t as student

    return float(student.ppf((1 + level) / 2, df))


def mean_jackknife(values: torch.Tensor, level: float = 0.9) -> Interval:
    """Mean of a (models, images) table with a two-way jackknife-t interval: variance = the leave-one-model-out
    plus the leave-one-image-out jackknife variance (for a mean: s²(row means)/M + s²(column means)/N), quantile of
    Student's t with min(M, N) − 1 degrees of freedom. With few models, where the percentile multi-bootstrap
    undercovers (the calibration page, chapter 9), this interval keeps its coverage. Needs M ≥ 2 and N ≥ 2."""
    v = values.double()
    m, n = v.shape[-2:]
    if v.dim() != 2 or m < 2 or n < 2:
        raise ValueError(f"a jackknife over models and images needs ≥ 2 models and ≥ 2 images in a (models, images) "
                         f"table, got shape {tuple(v.shape)}")
    point = float(v.mean())
    half = student_quantile(level, min(m, n) - 1) * float((v.mean(1).var() / m + v.mean(0).var() / n).sqrt())
    return Interval(point, point - half, point + half, level)


TABLE_INTERVALS = ("bootstrap", "jackknife-t")


def table_interval(values: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0,
                   procedure: str = "bootstrap") -> Interval:
    """Mean of a (models, images) table with the chapter's interval ``procedure``: the percentile multi-bootstrap
    (:func:`mean_interval`) or the two-way jackknife-t (:func:`mean_jackknife`)."""
    if procedure == "bootstrap":
        return mean_interval(values, n_boot, level, seed)
    if procedure == "jackknife-t":
        return mean_jackknife(values, level)
    raise ValueError(f"procedure={procedure!r}: use one of {', '.join(TABLE_INTERVALS)}")
