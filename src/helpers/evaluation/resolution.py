"""Matched resolution: compare methods on maps pooled to one common grid (issue "Every verdict can fail").

A method whose map is made of patches (LIME and KernelSHAP: one weight per square patch; occlusion: one value per
window position) cannot disagree inside a patch, so it gains agreement and SNR from its coarseness alone. A
pixel-level gradient loses it to pixel noise that a patch would average away. Ranking methods fairly means ranking
them at the **coarsest method's resolution**: every map is pooled (block means) to that method's patch grid, and the
statistics are computed again. Woerl et al. (CVPR 2023) rank methods by SNR at their native resolutions.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch.nn import functional as F

from ..attribution.registry import METHODS, _patch


def method_cell(method: str, inputs: torch.Tensor, kwargs: Mapping[str, object] | None = None) -> int:
    """The side in pixels of the patches that ``method``'s maps are made of on ``inputs`` (1: pixel-level):
    LIME/KernelSHAP their ``patch`` (default :func:`helpers.attribution.registry._patch`), occlusion its stride,
    RISE its mask cell; every other method works on pixels."""
    kw = {**(METHODS[method].defaults if method in METHODS else {}), **dict(kwargs or {})}
    if method in ("lime", "kernel_shap"):
        return int(kw.get("patch") or _patch(inputs))
    if method == "occlusion":
        window = int(kw.get("window") or _patch(inputs))
        return int(kw.get("stride") or max(1, window // 2))
    if method == "rise":
        return int(kw.get("cell") or 1)
    return 1


def common_cell(methods: Sequence[str], inputs: torch.Tensor,
                kwargs: Mapping[str, Mapping[str, object]] | None = None) -> int:
    """The coarsest method's patch side among ``methods`` (the grid every map is pooled to)."""
    kwargs = kwargs or {}
    return max([method_cell(m, inputs, kwargs.get(m)) for m in methods] or [1])


def pool(maps: torch.Tensor, cell: int) -> torch.Tensor:
    """Block means of ``cell`` × ``cell`` pixels over the last two dimensions of ``maps`` (…, H, W) ->
    (…, ⌈H/cell⌉, ⌈W/cell⌉); a partial block at the border is the mean of the pixels it has."""
    if cell < 1:
        raise ValueError(f"cell={cell}: use a patch side ≥ 1 pixel")
    if cell == 1:
        return maps
    lead, (h, w) = maps.shape[:-2], maps.shape[-2:]
    flat = maps.reshape(-1, 1, h, w).float()
    ones = torch.ones_like(flat)
    sums = F.avg_pool2d(flat, cell, cell, ceil_mode=True, divisor_override=1)
    counts = F.avg_pool2d(ones, cell, cell, ceil_mode=True, divisor_override=1)
    out = sums / counts
    return out.reshape(*lead, *out.shape[-2:]).to(maps.dtype)


def ranks(values: Mapping[str, float]) -> dict[str, int]:
    """The rank of every method by its value (1 = the largest)."""
    return {m: r for r, m in enumerate(sorted(values, key=lambda k: -values[k]), start=1)}


def rank_changes(native: Mapping[str, float], pooled: Mapping[str, float]) -> list[tuple[str, int, int]]:
    """Methods whose rank (1 = largest value) differs between the native and the pooled statistic:
    ``[(method, native rank, pooled rank)]`` in the native order."""
    a, b = ranks(native), ranks(pooled)
    return [(m, a[m], b[m]) for m in sorted(a, key=a.get) if m in b and a[m] != b[m]]
