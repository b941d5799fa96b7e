"""LIME and KernelSHAP on square patches, batched over images: one forward pass per chunk of images × samples and
one weighted least-squares solve for all images.

Same algorithms and defaults as captum's ``Lime`` (with a linear-regression surrogate) and ``KernelShap``, which fit
one image at a time in Python loops (about 40 ms per LeNet image, three quarters of the default book's map time):

- **LIME** (Ribeiro, Singh & Guestrin, KDD 2016): coalitions z ~ Bernoulli(1/2) per patch; weight of a sample
  exp(−d²/2) with d the cosine distance between the image and its perturbed copy (captum's default kernel, width 1).
- **KernelSHAP** (Lundberg & Lee, NeurIPS 2017): the full and the empty coalition with weight 10⁶ (the efficiency
  constraint), then coalitions of size k drawn with probability ∝ (F − 1) / (k (F − k)) and uniform among those of
  that size, each with weight 1 (sampling from the Shapley kernel instead of weighting by it).

Both fit f(perturbed) ≈ φ₀ + z·φ by weighted least squares with an intercept; φ (one value per patch) is the map.
A perturbed image shows the image where z = 1 and the baseline where z = 0. The coalitions come from a
``torch.Generator`` seeded with ``seed`` and are the same for every image and model (the book's shared-method-seed
convention), so a batch equals one image at a time.
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import _patch, grid_mask, register


KINDS = ("lime", "kernel_shap")


INF_WEIGHT = 1e6  # captum's weight of KernelSHAP's full and empty coalitions


def coalitions(kind: str, n_samples: int, n_features: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary coalitions (S, F) and their base weights (S,) for ``kind`` (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown surrogate {kind!r}: use one of {', '.join(KINDS)}")
    if n_samples < 3 or n_features < 2:
        raise ValueError(f"n_samples={n_samples}, {n_features} patches: use at least 3 samples and 2 patches")
    gen = torch.Generator().manual_seed(seed)
    if kind == "lime":
        z = (torch.rand(n_samples, n_features, generator=gen) < 0.5).double()
        return z, torch.ones(n_samples, dtype=torch.double)
    k = torch.arange(1, n_features, dtype=torch.double)
    probs = (n_features - 1) / (k * (n_features - k))
    sizes = torch.multinomial(probs, n_samples - 2, replacement=True, generator=gen) + 1  # (S − 2,) in 1 … F − 1
    ranks = torch.rand(n_samples - 2, n_features, generator=gen).argsort(1).argsort(1)  # a random order per row
    z = torch.cat([torch.ones(1, n_features), torch.zeros(1, n_features), (ranks < sizes[:, None]).double()])
    w = torch.ones(n_samples, dtype=torch.double)
    w[:2] = INF_WEIGHT
    return z, w


def weighted_fit(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Coefficients φ (N, F) of y ≈ φ₀ + z·φ by weighted least squares with an intercept, for every image at once:
    ``z`` (S, F), ``y`` (N, S), ``w`` (N, S) or (S,)."""
    design = torch.cat([torch.ones(z.shape[0], 1, dtype=z.dtype), z], 1)  # (S, F + 1)
    sw = w.double().sqrt().expand(y.shape)  # (N, S)
    a = sw[..., None] * design  # (N, S, F + 1)
    sol = torch.linalg.lstsq(a, (sw * y.double())[..., None], driver="gelsd").solution  # minimum-norm solution
    return sol[:, 1:, 0]


def attribute(kind: str, model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_samples: int, cell: int,
              baseline: float | torch.Tensor = 0.0, seed: int = 0, batch: int = 8192) -> torch.Tensor:
    """Patch weights φ of ``model``'s ``target`` **logit**, one value per patch spread over its pixels and channels
    (so that a map's sum is Σφ; for KernelSHAP ≈ f(x) − f(baseline)), (N, C, H, W)."""
    n, c, h, w = inputs.shape
    index = grid_mask(h, w, cell)[0, 0]  # (H, W): the patch of every pixel, numbered row by row
    n_features = int(index.max()) + 1
    z, base_w = coalitions(kind, n_samples, n_features, seed)
    masks = z[:, index].to(inputs.device, inputs.dtype)[:, None]  # (S, 1, H, W): 1 shows the image
    b = torch.as_tensor(baseline, dtype=inputs.dtype, device=inputs.device).expand_as(inputs)
    per = max(1, batch // n_samples)  # images per forward pass
    scores, weights = [], []
    with torch.no_grad():
        for i in range(0, n, per):
            x, bb, t = inputs[i:i + per], b[i:i + per], target[i:i + per]
            mixed = x[:, None] * masks[None] + bb[:, None] * (1 - masks[None])  # (n_i, S, C, H, W)
            logits = model(mixed.flatten(0, 1)).view(x.shape[0], n_samples, -1)
            scores.append(logits.gather(2, t.view(-1, 1, 1).expand(-1, n_samples, 1))[..., 0])
            if kind == "lime":
                cos = torch.nn.functional.cosine_similarity(x.flatten(1)[:, None], mixed.flatten(2), dim=2)
                weights.append(torch.exp(-((1 - cos.double()) ** 2) / 2))
    y = torch.cat(scores).double().cpu()
    phi = weighted_fit(z, y, torch.cat(weights).cpu() if kind == "lime" else base_w)  # (N, F)
    counts = torch.bincount(index.flatten(), minlength=n_features).double()  # pixels per patch
    spread = (phi / counts)[:, index]  # (N, H, W): each patch's weight shared by its pixels
    return (spread[:, None] / c).expand(-1, c, -1, -1).to(inputs.device, inputs.dtype).contiguous()


def _surrogate(kind: str, model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_samples: int,
               patch: int | None, baseline: float | torch.Tensor, seed: int) -> torch.Tensor:
    """LIME and KernelSHAP on square patches, batched over images (:mod:`helpers.surrogate`: captum's algorithms
    and defaults, without its per-image Python loop; LIME draws the same coalitions as captum's ``Lime`` with
    ``torch.manual_seed(seed)``). Each patch's weight is spread over its pixels and channels, so that a map's sum
    is the sum of the patch weights (for KernelSHAP: f(x) − f(baseline), Lundberg & Lee's completeness)."""

    return attribute(kind, model, inputs, target, n_samples, patch or _patch(inputs), baseline, seed)


@register("lime", "linear surrogate fitted on random on/off patches (4×4 on MNIST), exponential kernel",
          "Ribeiro, Singh, Guestrin, KDD 2016", stochastic=True, parallel=True, n_samples=200, patch=None, baseline=0.0)
def _lime(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_samples: int, patch: int | None,
          baseline: float, seed: int) -> torch.Tensor:
    return _surrogate("lime", model, inputs, target, n_samples, patch, baseline, seed)


@register("kernel_shap", "Shapley values of patches estimated by weighted linear regression",
          "Lundberg & Lee, NeurIPS 2017", stochastic=True, parallel=True, n_samples=200, patch=None, baseline=0.0)
def _kernel_shap(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_samples: int, patch: int | None,
                 baseline: float, seed: int) -> torch.Tensor:
    return _surrogate("kernel_shap", model, inputs, target, n_samples, patch, baseline, seed)
