"""Perturbation baselines, perturbation saliency (occlusion, RISE) and perturbation metrics (deletion, insertion,
MoRF/LeRF, AOPC), batched over models, images and steps.

Brunke, Agrawal & George (ECCV Workshops 2020) show that "neutral" baseline images still change both the maps that
perturbation methods make and the perturbation metrics that score maps. This module makes the baseline an explicit,
registered choice (:data:`BASELINES`), so that a chapter can vary it for the maps and for the metrics separately.

Conventions. Models take *normalized* inputs, x_norm = (x_pix − mean) / std with the dataset's channel mean and std;
every baseline is defined in pixel space (values in [0, 1]) and returned in normalized space, the space the model
and the attribution methods work in. Random baselines take a ``seed`` and draw image i from ``seed + i``, so a batch
gives the same baselines as one image at a time. Metrics score either the class **logit** (``score="logit"``) or the
class **probability** (softmax, ``score="prob"``, as in Petsiuk et al.'s deletion and insertion).
"""
from __future__ import annotations

from typing import Sequence
import torch
import torch.nn.functional as F
from torch import nn

from ..attribution.perturbation import class_score, model_scores
from ..attribution.registry import as_target, check_inputs
from .baselines import gaussian_blur


def n_regions(size: tuple[int, int], patch: int) -> int:
    return -(-size[0] // patch) * -(-size[1] // patch)


def step_counts(regions: int, n_steps: int) -> torch.Tensor:
    """How many regions are perturbed after each of the n_steps + 1 points of a curve (0 … all)."""
    if not 1 <= n_steps <= regions:
        raise ValueError(f"n_steps={n_steps} with {regions} regions: use 1 ≤ n_steps ≤ {regions}, or a smaller "
                         f"patch for more regions")
    return torch.round(torch.arange(n_steps + 1, dtype=torch.float64) * regions / n_steps).long()


def fractions(size: tuple[int, int], n_steps: int, patch: int = 1) -> torch.Tensor:
    """The fraction of regions perturbed at each point of a curve (the x axis of a deletion curve)."""
    r = n_regions(size, patch)
    return step_counts(r, n_steps).double() / r


def step_masks(maps: torch.Tensor, n_steps: int, patch: int = 1, order: str = "morf") -> torch.Tensor:
    """Boolean masks (..., S + 1, H, W): True where a pixel is perturbed after each step. Regions are ``patch``²
    squares ranked by the sum of the map over them, most relevant first (``"morf"``) or last (``"lerf"``)."""
    h, w = maps.shape[-2:]
    if not 1 <= patch <= min(h, w):
        raise ValueError(f"patch={patch} does not fit a {h}×{w} map: use 1 ≤ patch ≤ {min(h, w)}")
    if order not in ("morf", "lerf"):
        raise ValueError(f"order={order!r}: use 'morf' (most relevant first) or 'lerf' (least relevant first)")
    lead = maps.shape[:-2]
    gh, gw = -(-h // patch), -(-w // patch)
    padded = F.pad(maps.reshape(-1, 1, h, w).double(), (0, gw * patch - w, 0, gh * patch - h))
    region = F.avg_pool2d(padded, patch).flatten(1)  # (B, R)
    counts = step_counts(gh * gw, n_steps).to(maps.device)
    rank = torch.argsort(torch.argsort(region, dim=1, descending=order == "morf", stable=True), dim=1)
    done = rank[:, None, :] < counts[None, :, None]  # (B, S+1, R)
    pix = done.view(-1, n_steps + 1, gh, 1, gw, 1).expand(-1, -1, -1, patch, -1, patch)
    pix = pix.reshape(-1, n_steps + 1, gh * patch, gw * patch)[..., :h, :w]
    return pix.reshape(*lead, n_steps + 1, h, w)


def curves(models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor, maps: torch.Tensor,
           baseline: torch.Tensor | float = 0.0, kind: str = "deletion", order: str = "morf", n_steps: int = 28,
           patch: int = 1, score: str = "prob", paired: bool = False, chunk: int = 8192) -> torch.Tensor:
    """Deletion or insertion curves of maps, for every model, in a few large forward passes.

    ``x`` (N, C, H, W) normalized images, ``target`` (N,) classes, ``baseline`` like ``x`` (or a scalar).
    Deletion starts from x and replaces regions by the baseline; insertion starts from the baseline and puts the
    image's regions back (Petsiuk et al. 2018; with ``order="morf"`` deletion is Samek et al.'s MoRF region
    perturbation, with ``"lerf"`` their LeRF). ``maps`` (A, N, H, W) gives curves (A, M, N, S + 1), every map scored
    on every model; with ``paired=True`` maps (M, N, H, W) give (M, N, S + 1), map m scored on model m only.
    ``chunk`` bounds the number of images in one forward pass (over all models)."""
    if kind not in ("deletion", "insertion"):
        raise ValueError(f"kind={kind!r}: use 'deletion' or 'insertion'")
    if not models:
        raise ValueError("no models: pass a non-empty list (e.g. kit.models)")
    check_inputs(x, models[0])
    if target.ndim == 1:
        as_target(target, x.shape[0], x.device, models[0])
    if not bool(torch.isfinite(maps).all()):
        raise ValueError("maps hold NaN or inf values: compute them from finite images (deletion curves of such "
                         "maps have no order)")
    n, c, h, w = x.shape
    if maps.shape[-3:] != (n, h, w):
        raise ValueError(f"maps {tuple(maps.shape)} do not match {n} images of {h}×{w}: pass (A, N, H, W) maps")
    if paired and maps.shape[0] != len(models):
        raise ValueError(f"paired curves need one map per model ({len(models)}), got {maps.shape[0]}")
    b = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)
    masks = step_masks(maps, n_steps, patch, order)  # (A, N, S+1, H, W)
    if kind == "insertion":
        masks = ~masks
    a, s1 = maps.shape[0], n_steps + 1
    flat = masks.reshape(a, n * s1, 1, h, w)
    xi = x[:, None].expand(-1, s1, -1, -1, -1).reshape(n * s1, c, h, w)
    bi = b[:, None].expand(-1, s1, -1, -1, -1).reshape(n * s1, c, h, w)
    ti = target[:, None].expand(-1, s1).reshape(-1)
    m_count = len(models)
    per = max(1, chunk // m_count)
    out = []
    if paired:
        for i in range(0, n * s1, per):
            xs = torch.where(flat[:, i:i + per], bi[i:i + per], xi[i:i + per])  # (M, k, C, H, W)
            out.append(model_scores(models, xs, ti[i:i + per], score, paired=True))
        return torch.cat(out, 1).view(m_count, n, s1)
    rows = flat.reshape(a * n * s1, 1, h, w)
    xa = xi.repeat(a, 1, 1, 1)
    ba = bi.repeat(a, 1, 1, 1)
    ta = ti.repeat(a)
    for i in range(0, a * n * s1, per):
        xs = torch.where(rows[i:i + per], ba[i:i + per], xa[i:i + per])
        out.append(model_scores(models, xs, ta[i:i + per], score, paired=False))
    return torch.cat(out, 1).view(m_count, a, n, s1).transpose(0, 1)


def curve_loop(model: nn.Module, x: torch.Tensor, target: int, saliency: torch.Tensor,
               baseline: torch.Tensor | float = 0.0, kind: str = "deletion", order: str = "morf",
               n_steps: int = 28, patch: int = 1, score: str = "prob") -> torch.Tensor:
    """One image (C, H, W), one map (H, W), one model, one forward pass per step: the plain reference that
    :func:`curves` must equal (tests) and beat (benchmarks/bench_perturbation.py)."""
    c, h, w = x.shape
    b = torch.as_tensor(baseline, dtype=x.dtype).expand_as(x)
    gh, gw = -(-h // patch), -(-w // patch)
    regions = [(i, j) for i in range(gh) for j in range(gw)]
    value = [float(saliency[i * patch:(i + 1) * patch, j * patch:(j + 1) * patch].double().sum()
                   / patch ** 2) for i, j in regions]
    ranked = sorted(range(len(regions)), key=lambda r: -value[r] if order == "morf" else value[r])
    counts = step_counts(len(regions), n_steps)
    cur = (x if kind == "deletion" else b).clone()
    src = b if kind == "deletion" else x
    out, done = [], 0
    for k in counts.tolist():
        for r in ranked[done:k]:
            i, j = regions[r]
            cur[:, i * patch:(i + 1) * patch, j * patch:(j + 1) * patch] = \
                src[:, i * patch:(i + 1) * patch, j * patch:(j + 1) * patch]
        done = k
        with torch.no_grad():
            out.append(float(class_score(model(cur[None]), torch.tensor([target]), score)[0]))
    return torch.tensor(out)


def auc(curve: torch.Tensor, frac: torch.Tensor | None = None) -> torch.Tensor:
    """Area under curves (..., S + 1) over the fraction perturbed, trapezoid rule (uniform steps unless ``frac``)."""
    s1 = curve.shape[-1]
    f = torch.linspace(0, 1, s1, dtype=torch.float64) if frac is None else frac.double()
    f = f.to(curve.device)
    return ((curve[..., 1:] + curve[..., :-1]).double() * (f[1:] - f[:-1]) / 2).sum(-1)


def aopc(curve: torch.Tensor) -> torch.Tensor:
    """Area over the perturbation curve (Samek et al., IEEE TNNLS 2017): 1/(L+1) Σ_{k=0}^{L} f(x⁰) − f(xᵏ)."""
    return (curve[..., :1] - curve).double().mean(-1)


def total_variation(maps: torch.Tensor) -> torch.Tensor:
    """Scale-free roughness of maps (..., H, W): Σ|neighbour differences| / Σ|a| (0 for a constant map)."""
    dx = (maps[..., :, 1:] - maps[..., :, :-1]).abs().flatten(-2).sum(-1)
    dy = (maps[..., 1:, :] - maps[..., :-1, :]).abs().flatten(-2).sum(-1)
    return (dx + dy) / maps.abs().flatten(-2).sum(-1).clamp_min(1e-12)


def blur_to_match(maps: torch.Tensor, reference: torch.Tensor,
                  sigmas: Sequence[float] = tuple(s / 4 for s in range(17))) -> tuple[torch.Tensor, torch.Tensor]:
    """Blur each map (..., H, W) with the σ of ``sigmas`` whose total variation comes closest to that of the
    matching ``reference`` map: the smoothness control for marginalized maps. Returns (blurred maps, σ chosen)."""
    blurred = torch.stack([gaussian_blur(maps, s) for s in sigmas])  # (S, ..., H, W)
    gap = (total_variation(blurred) - total_variation(reference)[None]).abs()
    best = gap.argmin(0)
    out = blurred.gather(0, best[None, ..., None, None].expand(1, *maps.shape))[0]
    return out, torch.as_tensor(sigmas, dtype=maps.dtype)[best]


def method_curves(models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor, maps: torch.Tensor,
                  baselines: dict[str, torch.Tensor], n_steps: int = 28, patch: int = 1,
                  score: str = "prob") -> dict[str, torch.Tensor]:
    """Deletion (MoRF and LeRF) and insertion curves of K methods' maps (K, M, N, H, W), map m scored on model m,
    under every metric baseline: each (K, B, M, N, S + 1)."""
    k, m, n = maps.shape[:3]
    xs, ts = x.repeat(k, 1, 1, 1), target.repeat(k)
    flat = maps.transpose(0, 1).reshape(m, k * n, *maps.shape[-2:])
    out: dict[str, list] = {"deletion": [], "lerf": [], "insertion": []}
    for b in baselines.values():
        bs = b.repeat(k, 1, 1, 1)
        for key, kind, order in (("deletion", "deletion", "morf"), ("lerf", "deletion", "lerf"),
                                 ("insertion", "insertion", "morf")):
            c = curves(models, xs, ts, flat, bs, kind, order, n_steps, patch, score, paired=True)
            out[key].append(c.view(m, k, n, -1).transpose(0, 1))
    return {key: torch.stack(v, 1) for key, v in out.items()}


def faithfulness(models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor, single: torch.Tensor,
                 ensemble: torch.Tensor, baseline: torch.Tensor, n_steps: int = 28, patch: int = 1,
                 score: str = "prob") -> dict[str, dict[str, torch.Tensor]]:
    """Deletion and insertion AUC, each (M, N), scored on model m, of: model m's own map (``single``, (M, N, H, W)),
    the mean map of the other M − 1 models (leave-one-out marginalization), the mean-logit ensemble's map
    (``ensemble``, (N, H, W)) and model m's map blurred until its total variation matches the leave-one-out map's
    (the smoothness control). Also returns the blur σ chosen, under ``"sigma"``."""
    m = single.shape[0]
    others = (single.sum(0, keepdim=True) - single) / max(m - 1, 1) if m > 1 else single
    blurred, sigma = blur_to_match(single, others)
    kinds = {"single": single, "others": others, "ensemble": ensemble.expand_as(single), "blurred": blurred}
    frac = fractions(tuple(x.shape[-2:]), n_steps, patch)
    out: dict[str, dict[str, torch.Tensor]] = {"deletion": {}, "insertion": {}}
    for kind in out:
        for name, maps in kinds.items():
            c = curves(models, x, target, maps, baseline, kind, "morf", n_steps, patch, score, paired=True)
            out[kind][name] = auc(c, frac)
    mean_all = single.mean(0)
    rel = (ensemble - mean_all).abs().amax() / mean_all.abs().amax().clamp_min(1e-12)
    out["sigma"] = {"blur": sigma, "ensemble_vs_mean": rel}
    return out


SCORE_NAMES = {"prob": "class probability (softmax)", "logit": "class logit"}


def metric_scores(mc: dict[str, torch.Tensor], frac: torch.Tensor) -> dict[str, torch.Tensor]:
    """Scores (K, B, M, N), oriented so that higher = more faithful: −deletion AUC, insertion AUC, AOPC (MoRF)."""
    return {"deletion": -auc(mc["deletion"], frac), "insertion": auc(mc["insertion"], frac),
            "aopc": aopc(mc["deletion"])}
