"""Confidence intervals over seeds and images: the multi-bootstrap (Sellam et al., *The MultiBERTs*, ICLR 2022).

A statistic of a zoo depends on which models were trained and which images were looked at; both are samples. Each
bootstrap replicate resamples the models and the images with replacement (the same model draw for every image) and
recomputes the statistic; the interval is the percentile interval of the replicates. Chapters compare two numbers in
words only where the interval of their (paired) difference excludes 0 (:func:`verdict`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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


def multi_bootstrap(stat: Callable[[torch.Tensor, torch.Tensor], torch.Tensor | float], n_models: int,
                    n_images: int, n_boot: int = 1000, level: float = 0.9, seed: int = 0) -> Interval:
    """Percentile interval of ``stat(model_idx, image_idx)`` over replicates that resample models and images.

    ``stat`` gets index tensors (with repeats) and returns a number; the point estimate is
    ``stat(arange(n_models), arange(n_images))``."""
    if not 0 < level < 1:
        raise ValueError(f"level={level}: use a coverage between 0 and 1, such as 0.9")
    if n_models < 1 or n_images < 1:
        raise ValueError("multi_bootstrap needs at least one model and one image")
    gen = torch.Generator().manual_seed(seed)
    point = float(stat(torch.arange(n_models), torch.arange(n_images)))
    reps = torch.tensor([float(stat(torch.randint(n_models, (n_models,), generator=gen),
                                    torch.randint(n_images, (n_images,), generator=gen))) for _ in range(n_boot)])
    reps = reps[torch.isfinite(reps)]
    if len(reps) == 0:
        return Interval(point, float("nan"), float("nan"), level)
    alpha = (1 - level) / 2
    low, high = torch.quantile(reps.double(), torch.tensor([alpha, 1 - alpha], dtype=torch.float64)).tolist()
    return Interval(point, low, high, level)
