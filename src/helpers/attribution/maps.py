"""Turning attribution tensors into 2-D maps and putting maps on a common scale.

Seeds change the overall scale of a model's gradients, so maps are normalized one by one before they are
compared or averaged for display (Woerl et al., CVPR 2023, compare maps, not magnitudes).
"""
from __future__ import annotations

import torch



def to_2d(attr: torch.Tensor) -> torch.Tensor:
    """Sum over the channel axis: (..., C, H, W) -> (..., H, W), keeping the sign."""
    return attr.sum(dim=-3)


def normalize(maps: torch.Tensor, how: str = "maxabs", q: float = 0.99) -> torch.Tensor:
    """Scale each map (last two axes) to a common range.

    - ``"maxabs"``: divide by the largest |value| → values in [-1, 1].
    - ``"quantile"``: divide by the ``q``-quantile of |value| and clip to [-1, 1] (robust to single hot pixels).
    - ``"std"``: divide by the standard deviation over pixels.
    - ``"none"``: unchanged.
    """
    flat = maps.flatten(-2)
    if how == "none":
        return maps
    if how == "maxabs":
        scale = flat.abs().amax(-1)
    elif how == "quantile":
        scale = torch.quantile(flat.abs().float(), q, dim=-1).to(maps.dtype)
    elif how == "std":
        scale = flat.std(-1)
    else:
        raise ValueError(f"unknown normalization {how!r}: use 'maxabs', 'quantile', 'std' or 'none'")
    out = maps / scale.clamp_min(torch.finfo(maps.dtype).tiny)[..., None, None]
    return out.clamp(-1, 1) if how == "quantile" else out


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between maps, over the last two axes (broadcasting over the rest)."""
    a = a.flatten(-2) - a.flatten(-2).mean(-1, keepdim=True)
    b = b.flatten(-2) - b.flatten(-2).mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)
