"""Perturbation baselines (Brunke, Agrawal & George 2020): what fills the removed pixels in occlusion, RISE, IG,
DeepLIFT, KernelSHAP and the deletion metrics. Each baseline is registered with what it means in pixel space and in
the models' normalized space.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence
import torch
from torch import nn

from ..attribution.perturbation import model_scores


BaselineFn = Callable[[torch.Tensor, "torch.Tensor | _PixelPool | None", int], torch.Tensor]


@dataclass(frozen=True)
class Baseline:
    """A registered baseline: ``fn(x_pix, pool_pix, seed) -> b_pix`` maps pixel-space images (N, C, H, W) in [0, 1]
    to pixel-space baselines of the same shape; ``pixel`` and ``normalized`` say what it is in either space."""

    name: str
    fn: BaselineFn
    pixel: str
    normalized: str
    random: bool = False


BASELINES: dict[str, Baseline] = {}


def register_baseline(name: str, pixel: str, normalized: str, random: bool = False):
    """Decorator adding a pixel-space baseline to :data:`BASELINES`."""

    def deco(fn: BaselineFn) -> BaselineFn:
        BASELINES[name] = Baseline(name, fn, pixel, normalized, random)
        return fn

    return deco


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of the last two axes (σ in pixels, kernel ±3σ, reflected borders); σ = 0: a copy."""
    if sigma <= 0:
        return x.clone()
    r = min(int(math.ceil(3 * sigma)), min(x.shape[-2:]) - 1)
    flat = x.reshape(-1, 1, *x.shape[-2:])  # torchvision pads 4-D batches
    from torchvision.transforms.functional import gaussian_blur as tv_gaussian_blur  # a second to import: here

    return tv_gaussian_blur(flat, kernel_size=[2 * r + 1, 2 * r + 1], sigma=[sigma, sigma]).reshape(x.shape)


def _per_image(n: int, seed: int, draw: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
    return torch.stack([draw(torch.Generator().manual_seed(seed + i)) for i in range(n)])


@register_baseline("zero", "black: 0 in every channel", "−mean/std")
def _zero(x: torch.Tensor, pool: torch.Tensor | None, seed: int) -> torch.Tensor:
    return torch.zeros_like(x)


@register_baseline("mean", "the dataset's mean colour", "0 (the attribution registry's default "
                   "baseline)")
def _mean(x: torch.Tensor, pool: torch.Tensor | None, seed: int) -> torch.Tensor:
    return torch.full_like(x, float("nan"))  # filled with the mean by make_baseline (it knows the statistics)


def _blur(sigma: float) -> BaselineFn:
    return lambda x, pool, seed: gaussian_blur(x, sigma)


for _s in (1, 3):
    register_baseline(f"blur{_s}", f"the image itself, Gaussian-blurred with σ = {_s} px",
                      "the blurred image, normalized")(_blur(float(_s)))


@register_baseline("uniform", "uniform noise in [0, 1], independent per pixel (seeded)",
                   "(U − mean)/std", random=True)
def _uniform(x: torch.Tensor, pool: torch.Tensor | None, seed: int) -> torch.Tensor:
    return _per_image(x.shape[0], seed, lambda g: torch.rand(x.shape[1:], generator=g)).to(x)


@register_baseline("gaussian", "the image plus Gaussian noise of s.d. 0.3, clipped to [0, 1] (seeded)",
                   "the noisy image, normalized", random=True)
def _gaussian(x: torch.Tensor, pool: torch.Tensor | None, seed: int) -> torch.Tensor:
    noise = _per_image(x.shape[0], seed, lambda g: torch.randn(x.shape[1:], generator=g)).to(x)
    return (x + 0.3 * noise).clamp(0, 1)


@register_baseline("train", "a training image drawn at random (seeded, one per image)",
                   "that training image as the model sees it", random=True)
def _train(x: torch.Tensor, pool: torch.Tensor | None, seed: int) -> torch.Tensor:
    if pool is None:
        raise ValueError("baseline 'train' needs training images: pass pool=ds.train.x")
    idx = _per_image(x.shape[0], seed, lambda g: torch.randint(len(pool), (), generator=g))
    return pool[idx].to(x)


def _stats(mean: Sequence[float], std: Sequence[float], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return m, s


class _PixelPool:
    """Normalized training images seen in pixel space, converted only where indexed (a CIFAR-10 training split is
    600 MB: never copy it whole)."""

    def __init__(self, pool: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.pool, self.mean, self.std = pool, mean, std

    def __len__(self) -> int:
        return self.pool.shape[0]

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        return self.pool[idx].to(self.mean) * self.std[0] + self.mean[0]


def make_baseline(name: str, x: torch.Tensor, mean: Sequence[float] = (0.0,), std: Sequence[float] = (1.0,),
                  seed: int = 0, pool: torch.Tensor | None = None) -> torch.Tensor:
    """The baseline ``name`` for the normalized images ``x`` (N, C, H, W), in normalized space.

    ``pool`` (normalized training images) is needed by ``"train"``. Random baselines draw image i from ``seed + i``.
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}: choose one of {', '.join(BASELINES)}")
    if x.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(x.shape)}: add a batch axis with x.unsqueeze(0)")
    m, s = _stats(mean, std, x)
    pix = x * s + m
    pool_pix = None if pool is None else _PixelPool(pool, m, s)
    b = BASELINES[name].fn(pix, pool_pix, seed)
    b = torch.where(torch.isnan(b), m.expand_as(b), b)
    return (b - m) / s


def baselines_of(names: Sequence[str], x: torch.Tensor, ds, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every baseline in ``names`` for the images ``x`` of dataset ``ds`` (its mean, std and training images)."""
    return {n: make_baseline(n, x, ds.mean, ds.std, seed, ds.train.x) for n in names}


def baseline_probabilities(models: Sequence[nn.Module], baselines: dict[str, torch.Tensor],
                           target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The probability (M, N) that each model gives each baseline image for the class of the image it replaces:
    1/K would be a neutral baseline."""
    return {b: model_scores(models, img, target, "prob", paired=False) for b, img in baselines.items()}
