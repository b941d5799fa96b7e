"""NoiseGrad and FusionGrad (Bykov et al., AAAI 2022): a map averaged over copies of ONE model whose weights carry
multiplicative noise, W ⊙ η with η ~ N(1, σ²) drawn independently per weight and per sample; FusionGrad adds
SmoothGrad's input noise (Smilkov et al. 2017) on top. Both approximate the map of a Bayesian posterior over weights
(Bykov et al. 2021) at the price of ``n_samples`` backward passes.

The public reference code saves ``model.state_dict().copy()`` (a shallow copy whose tensors alias the parameters)
and perturbs in place: its noise compounds from sample to sample and the caller's model is left perturbed. Here the
caller's model is never written to. The noisy weights are fed to ``torch.func.functional_call`` and batched over
samples with ``vmap`` for the plain gradient and input × gradient; any other base method runs on a deep copy whose
parameters are set from the *original* weights for every sample (a loop), so samples stay independent.

FusionGrad here draws one noisy model and one noisy input per sample (joint sampling: the same expectation as the
paper's M models × N inputs grid, at n_samples backward passes, which is what the budget of chapter 8 counts).
"""
from __future__ import annotations

import copy
from typing import Iterator
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from .registry import attribute, get_method, register
from ..zoo.stacking import meta_copy

_VMAP_BASES = {"gradient": False, "input_x_gradient": True}  # value: multiply the gradient by the (noisy) input
_SELF = ("noisegrad", "fusiongrad")


def weight_noise(model: nn.Module, n_samples: int, sigma: float, seed: int,
                 chunk: int) -> Iterator[dict[str, torch.Tensor]]:
    """Chunks of noisy parameters {name: (s, *shape)} with θ ⊙ η, η ~ N(1, σ²) i.i.d. per weight and sample, drawn
    on the CPU from one seeded stream in sample order (so chunking and device do not change the draws)."""
    gen = torch.Generator().manual_seed(int(seed))
    params = {k: p.detach() for k, p in model.named_parameters()}
    sizes = [p.numel() for p in params.values()]
    for start in range(0, n_samples, chunk):
        s = min(chunk, n_samples - start)
        eta = torch.stack([1.0 + sigma * torch.randn(sum(sizes), generator=gen) for _ in range(s)])  # (s, D)
        parts = eta.to(next(iter(params.values())).device).split(sizes, dim=1)
        noisy = {k: p * e.view(s, *p.shape).to(p.dtype) for (k, p), e in zip(params.items(), parts)}
        yield noisy


def input_noise(inputs: torch.Tensor, n_samples: int, level: float, seed: int) -> torch.Tensor:
    """(n_samples, N, C, H, W) Gaussian noise of s.d. ``level`` × (max − min) of each image (Smilkov et al.'s
    10–20 %), the same standard-normal pattern for every image (reseeded per image, as the book's SmoothGrad), so a
    batch gives the maps of its images one at a time."""
    flat = inputs.detach().flatten(1)
    scale = (level * (flat.max(1).values - flat.min(1).values)).view(1, -1, 1, 1, 1)
    gen = torch.Generator().manual_seed(int(seed) + 1_000_003)  # a stream apart from the weights'
    z = torch.randn((n_samples, 1, *inputs.shape[1:]), generator=gen).to(inputs.device, inputs.dtype)
    return z.expand(-1, inputs.shape[0], -1, -1, -1) * scale


def _check(base: str, n_samples: int, sigma: float, input_sigma: float) -> None:
    if base in _SELF:
        raise ValueError(f"base={base!r}: choose a single-model method such as 'gradient' or 'input_x_gradient'")
    get_method(base)
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples={n_samples!r}: use a whole number ≥ 1")
    if sigma < 0 or input_sigma < 0:
        raise ValueError(f"sigma={sigma}, input_sigma={input_sigma}: noise levels must be ≥ 0")


def _vmapped(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, base: str, n_samples: int, sigma: float,
             xs: torch.Tensor | None, seed: int, chunk: int) -> Iterator[torch.Tensor]:
    """The base maps of chunks of samples (s, N, C, H, W), vmapped over noisy weights (and noisy inputs)."""
    skeleton = meta_copy(model)
    buffers = {k: b.detach() for k, b in model.named_buffers()}

    def summed_logit(params, x):
        return functional_call(skeleton, (params, buffers), (x,)).gather(1, target[:, None]).sum()

    per_sample = vmap(grad(summed_logit, argnums=1), in_dims=(0, 0 if xs is not None else None))
    for i, params in enumerate(weight_noise(model, n_samples, sigma, seed, chunk)):
        x = inputs.detach() if xs is None else xs[i * chunk:(i + 1) * chunk]
        g = per_sample(params, x)
        yield g * (inputs if xs is None else x) if _VMAP_BASES[base] else g


def _looped(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, base: str, n_samples: int, sigma: float,
            xs: torch.Tensor | None, seed: int) -> Iterator[torch.Tensor]:
    """The maps (1, N, C, H, W) of any registered base method, sample by sample, on one deep copy whose parameters
    are reset from the original weights for each sample."""
    twin = copy.deepcopy(model)
    names = [k for k, _ in model.named_parameters()]
    own = dict(twin.named_parameters())
    for i, params in enumerate(weight_noise(model, n_samples, sigma, seed, 1)):
        with torch.no_grad():
            for k in names:
                own[k].copy_(params[k][0])
        yield attribute(base, twin, inputs if xs is None else xs[i], target)[None]


def sample_maps(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_samples: int, sigma: float,
                input_sigma: float, base: str, seed: int, vectorize: bool | None = None,
                chunk: int = 16) -> Iterator[torch.Tensor]:
    """The per-sample base maps in sample order, in chunks (s, N, C, H, W): sample k is the same whatever
    ``n_samples``, ``chunk`` or ``vectorize``, so the mean of the first b samples is the map at budget b.

    ``vectorize=None`` vmaps over samples for the gradient and input × gradient of models without BatchNorm (where
    vmap pays, :func:`helpers.attribution.marginal._vmap_pays`), and loops otherwise; both give the same numbers."""
    from .marginal import _vmap_pays

    _check(base, n_samples, sigma, input_sigma)
    xs = inputs.detach() + input_noise(inputs, n_samples, input_sigma, seed) if input_sigma > 0 else None
    if vectorize is None:
        vectorize = base in _VMAP_BASES and _vmap_pays(model)
    if vectorize and base not in _VMAP_BASES:
        raise ValueError(f"vectorize=True needs base in {sorted(_VMAP_BASES)}, got {base!r}: use vectorize=None")
    if vectorize:
        return _vmapped(model, inputs, target, base, n_samples, sigma, xs, seed, chunk)
    return _looped(model, inputs, target, base, n_samples, sigma, xs, seed)


def noisy_maps(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_samples: int, sigma: float,
               input_sigma: float, base: str, seed: int, vectorize: bool | None = None,
               chunk: int = 16) -> torch.Tensor:
    """Mean of ``base``'s map over ``n_samples`` noisy copies of ``model`` (and noisy inputs if ``input_sigma``)."""
    total = torch.zeros_like(inputs)
    for maps in sample_maps(model, inputs, target, n_samples, sigma, input_sigma, base, seed, vectorize, chunk):
        total += maps.sum(0)
    return total / n_samples


def budget_maps(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, budgets: list[int], sigma: float,
                input_sigma: float, base: str, seed: int, vectorize: bool | None = None) -> torch.Tensor:
    """(B, N, C, H, W): the map at every budget b (the mean of the first b samples), from one stream of max(budgets)
    samples; entry k equals ``noisy_maps(..., n_samples=budgets[k])``. SmoothGrad is ``sigma=0``."""
    n = max(budgets)
    chunks = list(sample_maps(model, inputs, target, n, sigma, input_sigma, base, seed, vectorize))
    running = torch.cat(chunks).cumsum(0)
    return torch.stack([running[b - 1] / b for b in budgets])


@register("noisegrad", "mean map of one model over multiplicative weight noise W ⊙ η, η ~ N(1, σ²)",
          "Bykov et al., AAAI 2022", stochastic=True, n_samples=16, sigma=0.2, base="gradient", vectorize=None)
def _noisegrad(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_samples: int, sigma: float,
               base: str, vectorize: bool | None, seed: int) -> torch.Tensor:
    """σ = 0.2: the default of the authors' public code (mean 1, std 0.2); chapter 8 sweeps it."""
    return noisy_maps(model, inputs, target, n_samples, sigma, 0.0, base, seed, vectorize)


@register("fusiongrad", "NoiseGrad with SmoothGrad's input noise as well: one noisy model and one noisy input per sample",
          "Bykov et al., AAAI 2022", stochastic=True, n_samples=16, sigma=0.2, input_sigma=0.15, base="gradient",
          vectorize=None)
def _fusiongrad(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_samples: int, sigma: float,
                input_sigma: float, base: str, vectorize: bool | None, seed: int) -> torch.Tensor:
    """``input_sigma``: s.d. of the input noise as a fraction of each image's range, as SmoothGrad's 10–20 %."""
    return noisy_maps(model, inputs, target, n_samples, sigma, input_sigma, base, seed, vectorize)
