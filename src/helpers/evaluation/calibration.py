"""Calibration of the book's intervals and verdicts: how often a chapter's 90 % interval covers the true value, and
how often its verdict rule calls a difference that is not there, at the chapter's own design.

A chapter's design is its statistic, its numbers of models M and images N, its multi-bootstrap interval over
models and images (Sellam et al. 2022; :mod:`helpers.evaluation.intervals`) and its verdict rule ("differ" when the
paired difference's interval excludes 0). :func:`simulate` runs that design on synthetic zoos whose answer is known:

- **maps** (statistic ``"pairwise"``, the mean correlation between the maps of two different models): image i
  has a signal s_i (pixels ~ N(0, 1)) and model m adds noise τ_i κ_m u_mi, where τ_i (how hard the image is) varies
  over images and κ_m (how noisy the seed is) over models. Two models agree on image i with correlation
  ρ = 1 / sqrt((1 + τ_i²κ_m²)(1 + τ_i²κ_m'²)); the truth is its mean over the populations of images and models.
- **tables** (statistic ``"mean"``, the mean of a (models, images) table of scores, as chapters 6 and 7 report):
  v_mn = μ + a_m + b_n + e_mn with random model, image and residual effects; the truth is μ.

The null for the verdict rule is two methods of equal truth on the same models and images (independent noise); the
alternative doubles one method's noise. A design passes when its coverage is at least :data:`MIN_COVERAGE` and
its false-verdict rate at most :data:`MAX_FALSE`.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from .agreement import pairwise_difference, pairwise_interval, pairwise_jackknife
from .intervals import Interval, mean_interval

MIN_COVERAGE = 0.85  # of the nominal 90 % intervals
MAX_FALSE = 0.10  # false "differ" verdicts under the null
STATISTICS = ("pairwise", "mean")
INTERVALS = ("bootstrap", "jackknife-t")  # the percentile multi-bootstrap; the two-way jackknife with Student's t


@dataclass(frozen=True)
class Design:
    """What a chapter computes an interval for: ``statistic`` over ``n_models`` models and ``n_images`` images."""

    name: str
    statistic: str
    n_models: int
    n_images: int
    level: float = 0.9
    n_boot: int = 200
    interval: str = "bootstrap"

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise ValueError(f"statistic={self.statistic!r}: use one of {', '.join(STATISTICS)}")
        if self.interval not in INTERVALS or (self.interval != "bootstrap" and self.statistic != "pairwise"):
            raise ValueError(f"interval={self.interval!r}: use one of {', '.join(INTERVALS)} (jackknife-t: pairwise)")
        if self.n_models < 2 or self.n_images < 1:
            raise ValueError(f"{self.name}: a design needs at least 2 models and 1 image")


@dataclass(frozen=True)
class Calibration:
    """The simulated behaviour of a design: coverage of its intervals, false verdicts under the null, power."""

    design: Design
    coverage: float
    false_verdicts: float
    power: float
    n_sim: int

    @property
    def coverage_se(self) -> float:
        return math.sqrt(self.coverage * (1 - self.coverage) / self.n_sim)

    def ok(self, min_coverage: float = MIN_COVERAGE, max_false: float = MAX_FALSE) -> bool:
        return self.coverage >= min_coverage and self.false_verdicts <= max_false

    def problem(self) -> str | None:
        """One line on what fails, or None."""
        if self.ok():
            return None
        return (f"{self.design.name} (M={self.design.n_models}, N={self.design.n_images}): coverage "
                f"{self.coverage:.2f} (needs ≥ {MIN_COVERAGE}), false verdicts {self.false_verdicts:.2f} (needs ≤ "
                f"{MAX_FALSE}): use more images or models")


# the synthetic populations: image difficulty τ ~ U(TAU), seed noisiness κ = exp(KAPPA · z), pixels per map
TAU = (0.5, 2.0)
KAPPA = 0.3
PIXELS = 256


def _image_noise(n: int, gen: torch.Generator) -> torch.Tensor:
    return TAU[0] + (TAU[1] - TAU[0]) * torch.rand(n, generator=gen, dtype=torch.float64)


def _model_noise(m: int, gen: torch.Generator) -> torch.Tensor:
    return torch.exp(KAPPA * torch.randn(m, generator=gen, dtype=torch.float64))


@functools.lru_cache(maxsize=4)
def true_pairwise(n: int = 200_000, seed: int = 12345, chunk: int = 20_000) -> float:
    """The population mean of the statistic itself: the Pearson correlation of two models' maps of one image, over
    images and pairs of different models (Monte Carlo over independent (image, model, model) draws; standard error
    about 6e-4, far below any interval's width). The asymptotic ρ = 1 / sqrt((1 + τ²κ²)(1 + τ²κ'²)) is about
    0.02 higher at 256 pixels: a correlation of finite maps is a biased estimate of ρ, and the chapters report
    the correlation, so the correlation's mean is the truth."""
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        s = torch.randn(k, PIXELS, generator=gen, dtype=torch.float64)
        tau = _image_noise(k, gen)[:, None]
        a = s + tau * _model_noise(k, gen)[:, None] * torch.randn(k, PIXELS, generator=gen, dtype=torch.float64)
        b = s + tau * _model_noise(k, gen)[:, None] * torch.randn(k, PIXELS, generator=gen, dtype=torch.float64)
        a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
        total += float(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).sum())
    return total / n


def synthetic_maps(n_models: int, n_images: int, gen: torch.Generator, noise_scale: float = 1.0,
                   signal: torch.Tensor | None = None, tau: torch.Tensor | None = None,
                   kappa: torch.Tensor | None = None) -> torch.Tensor:
    """Channel-summed maps (M, N, 16, 16) of the synthetic zoo; ``signal``, ``tau`` and ``kappa`` may be shared with another
    method on the same images and models."""
    side = int(math.isqrt(PIXELS))
    s = torch.randn(n_images, PIXELS, generator=gen, dtype=torch.float64) if signal is None else signal
    t = _image_noise(n_images, gen) if tau is None else tau
    k = _model_noise(n_models, gen) if kappa is None else kappa
    u = torch.randn(n_models, n_images, PIXELS, generator=gen, dtype=torch.float64)
    maps = s[None] + noise_scale * t[None, :, None] * k[:, None, None] * u
    return maps.float().view(n_models, n_images, side, side)


def _tables(n_models: int, n_images: int, gen: torch.Generator, mu: float = 0.0, shared=None):
    """A (models, images) table v = μ + a_m + b_n + e_mn; ``shared`` (a, b) pairs two methods' tables."""
    a, b = shared if shared is not None else (0.5 * torch.randn(n_models, 1, generator=gen, dtype=torch.float64),
                                              0.5 * torch.randn(1, n_images, generator=gen, dtype=torch.float64))
    return mu + a + b + torch.randn(n_models, n_images, generator=gen, dtype=torch.float64), (a, b)


def _one(design: Design, gen: torch.Generator, seed: int) -> tuple[bool, bool, bool]:
    """(interval covers the truth, null verdict says "differ", alternative verdict says "differ")."""
    m, n, lv, nb = design.n_models, design.n_images, design.level, design.n_boot
    if design.statistic == "pairwise":
        s = torch.randn(n, PIXELS, generator=gen, dtype=torch.float64)
        tau, kappa = _image_noise(n, gen), _model_noise(m, gen)
        a = synthetic_maps(m, n, gen, signal=s, tau=tau, kappa=kappa)
        b = synthetic_maps(m, n, gen, signal=s, tau=tau, kappa=kappa)
        c = synthetic_maps(m, n, gen, 2.0, signal=s, tau=tau, kappa=kappa)
        if design.interval == "jackknife-t":
            iv: Interval = pairwise_jackknife(a, level=lv)
            null, alt = pairwise_jackknife(a, b, lv), pairwise_jackknife(a, c, lv)
        else:
            iv = pairwise_interval(a, nb, lv, seed)
            null, alt = pairwise_difference(a, b, nb, lv, seed), pairwise_difference(a, c, nb, lv, seed)
        truth = true_pairwise()
    else:
        a, shared = _tables(m, n, gen)
        b, _ = _tables(m, n, gen, shared=shared)
        c, _ = _tables(m, n, gen, mu=1.0, shared=shared)
        iv = mean_interval(a, nb, lv, seed)
        null, alt = mean_interval(a - b, nb, lv, seed), mean_interval(c - a, nb, lv, seed)
        truth = 0.0
    return iv.low <= truth <= iv.high, null.excludes(0.0), alt.excludes(0.0)


def simulate(design: Design, n_sim: int = 200, seed: int = 0) -> Calibration:
    """Run ``design`` on ``n_sim`` synthetic zoos: the share of intervals that cover the truth, of null
    differences called real, and of real differences (the alternative) found."""
    gen = torch.Generator().manual_seed(seed)
    hits = torch.tensor([_one(design, gen, seed + k) for k in range(n_sim)], dtype=torch.float64)
    cover, false, power = hits.mean(0).tolist()
    return Calibration(design, cover, false, power, n_sim)


def check(results: list[Calibration]) -> None:
    """Raise ``ValueError`` naming every design that fails (coverage or false verdicts)."""
    bad = [r.problem() for r in results if not r.ok()]
    if bad:
        raise ValueError("designs that fail calibration: " + "; ".join(bad))
