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

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.functional import gaussian_blur as tv_gaussian_blur

from .intervals import Interval, boot_means, mean_interval, percentile  # noqa: F401 (mean_interval re-exported)

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


# ---------------------------------------------------------------- perturbation saliency


def occlusion(model: nn.Module, x: torch.Tensor, target: torch.Tensor, baseline: torch.Tensor | float = 0.0,
              window: int = 4, stride: int = 2) -> torch.Tensor:
    """Occlusion (Zeiler & Fergus, ECCV 2014) with captum: drop of the target **logit** when a ``window``² patch is
    replaced by the same patch of ``baseline`` (a tensor like ``x`` or a scalar, normalized space)."""
    from captum.attr import Occlusion

    h, w = x.shape[-2:]
    if window > min(h, w) or window < 1:
        raise ValueError(f"window={window} does not fit a {h}×{w} image: use 1 ≤ window ≤ {min(h, w)}")
    c = x.shape[1]
    return Occlusion(model).attribute(x, sliding_window_shapes=(c, window, window), strides=(c, stride, stride),
                                      baselines=baseline, target=target, perturbations_per_eval=64) / c


def rise_masks(n_masks: int, cell: int, p: float, size: tuple[int, int], seed: int = 0,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """RISE masks (Petsiuk, Das & Saenko, BMVC 2018), (n_masks, H, W) in [0, 1]: a binary grid with cells of
    ``cell`` pixels, each 1 with probability ``p``, bilinearly upsampled to (g + 1)·cell and cropped at a random
    shift in [0, cell) per mask (the paper's code: ``explanations.py``)."""
    h, w = size
    if not 1 <= cell <= min(h, w):
        raise ValueError(f"cell={cell} does not fit a {h}×{w} image: use a mask cell of 1 to {min(h, w)} pixels")
    if not 0 < p < 1:
        raise ValueError(f"p={p}: the keep probability must lie strictly between 0 and 1, such as 0.5")
    if n_masks < 1:
        raise ValueError(f"n_masks={n_masks}: use at least one mask (the paper uses thousands)")
    gen = torch.Generator().manual_seed(seed)
    gh, gw = -(-h // cell), -(-w // cell)
    grid = (torch.rand(n_masks, 1, gh, gw, generator=gen) < p).float()
    up = F.interpolate(grid, size=((gh + 1) * cell, (gw + 1) * cell), mode="bilinear", align_corners=False)
    dy = torch.randint(cell, (n_masks,), generator=gen)
    dx = torch.randint(cell, (n_masks,), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]
    return up[torch.arange(n_masks)[:, None, None], 0, rows, cols].clamp(0, 1).to(device)


def class_score(logits: torch.Tensor, target: torch.Tensor, score: str) -> torch.Tensor:
    """The scored output for each row: the target logit (``"logit"``) or its softmax probability (``"prob"``)."""
    if score == "logit":
        return logits.gather(-1, target[..., None]).squeeze(-1)
    if score == "prob":
        return logits.softmax(-1).gather(-1, target[..., None]).squeeze(-1)
    raise ValueError(f"score={score!r}: use 'logit' or 'prob'")


def rise(model: nn.Module, x: torch.Tensor, target: torch.Tensor, baseline: torch.Tensor | float = 0.0,
         n_masks: int = 1000, cell: int = 4, p: float = 0.5, seed: int = 0, batch: int = 4096) -> torch.Tensor:
    """RISE saliency S = Σ_i f(x ⊙ M_i + b ⊙ (1 − M_i)) M_i / (N·p), f the target class **probability**
    (Petsiuk et al. 2018). The same masks serve every image, so a batch equals one image at a time. Returns
    (N, C, H, W) with the map spread evenly over channels (its channel sum is S)."""
    n, c, h, w = x.shape
    masks = rise_masks(n_masks, cell, p, (h, w), seed, x.device).to(x.dtype)
    b = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)
    sal = torch.zeros(n, h, w, dtype=x.dtype, device=x.device)
    step = max(1, batch // n)
    with torch.no_grad():
        for i in range(0, n_masks, step):
            m = masks[i:i + step]  # (k, H, W)
            mixed = x[:, None] * m[None, :, None] + b[:, None] * (1 - m[None, :, None])  # (N, k, C, H, W)
            f = class_score(model(mixed.flatten(0, 1)).view(n, m.shape[0], -1), target[:, None].expand(-1, m.shape[0]),
                            "prob")
            sal += torch.einsum("nk,khw->nhw", f, m)
    return (sal / (n_masks * p))[:, None].expand(-1, c, -1, -1) / c


def maps_under(method: str, models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor,
               baseline: torch.Tensor, **kwargs) -> torch.Tensor:
    """Channel-summed maps (M, N, H, W) of a registered method that takes ``baseline``, with a baseline *image* per
    input."""
    from .attribution import attribute

    out = []
    for model in models:
        if method == "rise":  # also registered as "rise" in helpers.attribution
            a = rise(model, x, target, baseline, **kwargs)
        else:
            a = attribute(method, model, x, target, baseline=baseline, **kwargs)
        out.append(a.sum(1))
    return torch.stack(out)


# ---------------------------------------------------------------- deletion, insertion, MoRF / LeRF, AOPC


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


def _forward(models: Sequence[nn.Module], xs: torch.Tensor, target: torch.Tensor, score: str,
             paired: bool) -> torch.Tensor:
    """Scores of every model: xs (B, C, H, W) shared → (M, B); paired xs (M, B, C, H, W) → (M, B).

    One large batch per model. (vmap over stacked weights was measured slower here: 24 LeNets × 464 images on one
    CPU thread, 1.3–1.8 s against 0.75 s for the loop, which costs what the bare forward passes cost.)"""
    with torch.no_grad():
        logits = torch.stack([m(xs[k] if paired else xs) for k, m in enumerate(models)])
    t = target if target.ndim == 2 else target.expand(len(models), -1)
    return class_score(logits, t, score)


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
            out.append(_forward(models, xs, ti[i:i + per], score, paired=True))
        return torch.cat(out, 1).view(m_count, n, s1)
    rows = flat.reshape(a * n * s1, 1, h, w)
    xa = xi.repeat(a, 1, 1, 1)
    ba = bi.repeat(a, 1, 1, 1)
    ta = ti.repeat(a)
    for i in range(0, a * n * s1, per):
        xs = torch.where(rows[i:i + per], ba[i:i + per], xa[i:i + per])
        out.append(_forward(models, xs, ta[i:i + per], score, paired=False))
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


# ---------------------------------------------------------------- comparing maps and rankings


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman correlation over pixels of maps (..., H, W), ties given their average rank."""
    from scipy.stats import rankdata

    ra = torch.from_numpy(rankdata(a.flatten(-2).double().cpu().numpy(), axis=-1))
    rb = torch.from_numpy(rankdata(b.flatten(-2).double().cpu().numpy(), axis=-1))
    ra, rb = ra - ra.mean(-1, keepdim=True), rb - rb.mean(-1, keepdim=True)
    den = (ra.norm(dim=-1) * rb.norm(dim=-1)).clamp_min(1e-12)
    return (ra * rb).sum(-1) / den


def over_pairs(maps: torch.Tensor) -> torch.Tensor:
    """Rank correlation of maps (P, …, H, W) averaged over the unordered pairs along the first axis: (…)."""
    p = maps.shape[0]
    return torch.stack([rank_correlation(maps[i], maps[j]) for i in range(p) for j in range(i + 1, p)]).mean(0)


def with_others(maps: torch.Tensor) -> torch.Tensor:
    """Rank correlation of each model's maps with every other model's, averaged over the others: maps (M, …, H, W)
    -> (M, …)."""
    m = maps.shape[0]
    return torch.stack([torch.stack([rank_correlation(maps[a], maps[b]) for b in range(m) if b != a]).mean(0)
                        for a in range(m)])


def kendall_matrix(means: torch.Tensor) -> torch.Tensor:
    """Kendall's τ (τ-b, ties allowed) between the rankings of K methods under every pair of B settings:
    ``means`` (..., K, B) → (..., B, B)."""
    d = torch.sign(means[..., :, None, :] - means[..., None, :, :]).double()  # (..., K, K, B)
    num = torch.einsum("...ijb,...ijc->...bc", d, d)
    pairs = (d != 0).double().sum((-3, -2))  # untied pairs (both orders) under each setting
    return num / (pairs[..., :, None] * pairs[..., None, :]).sqrt().clamp_min(1e-12)


def ranking_agreement(scores: torch.Tensor, n_boot: int = 1000, level: float = 0.9,
                      seed: int = 0) -> tuple[torch.Tensor, Interval, Interval]:
    """How much a metric's ranking of methods depends on the metric's baseline (Brunke et al. 2020).

    ``scores`` (K methods, B baselines, M models, N images). Returns the B×B matrix of Kendall τ between the
    rankings that the mean scores induce, and multi-bootstrap intervals of the mean and the minimum off-diagonal τ.
    """
    nb = scores.shape[1]
    iu = torch.triu_indices(nb, nb, 1)
    s = scores.double().cpu()
    point = kendall_matrix(s.mean((-2, -1)))
    reps = kendall_matrix(boot_means(s, n_boot, seed))[:, iu[0], iu[1]]  # (R, pairs)
    off = point[iu[0], iu[1]]
    if off.numel() == 0:
        raise ValueError("ranking_agreement needs at least two baselines: pass scores of shape (K, B ≥ 2, M, N)")
    return (point, percentile(float(off.mean()), reps.mean(1), level),
            percentile(float(off.min()), reps.min(1).values, level))


def ranking(names: Sequence[str], scores: torch.Tensor) -> str:
    """"a > b > c": names ordered by score, best (highest) first."""
    order = torch.argsort(torch.as_tensor(scores, dtype=torch.float64), descending=True, stable=True)
    return " > ".join(names[i] for i in order.tolist())


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


class MeanLogit(nn.Module):
    """The ensemble whose logit is the mean of its members' logits (its maps are the "ensemble's map")."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)


# ---------------------------------------------------------------- figures


def baseline_figure(images: torch.Tensor, baselines: torch.Tensor | None, maps: torch.Tensor,
                    frame_labels: Sequence[str], column_labels: Sequence[str], title: str = "",
                    prefix: str = "baseline: ", row_height: int = 150):
    """Input | baseline | one map per column, one row per image, a slider over frames (baselines, or a
    hyperparameter's values).

    ``images`` (R, C, H, W) and ``baselines`` (F, R, C, H, W; ``None``: no baseline column) in pixel space [0, 1];
    ``maps`` (F, K, R, H, W) normalized to [−1, 1]. Every slider position is a precomputed frame
    (:func:`helpers.viz.slider`)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from . import viz

    nf, k, r = maps.shape[:3]
    lead = 1 + (baselines is not None)
    cols = lead + k
    heads = ["input"] + (["baseline"] if baselines is not None else []) + list(column_labels)
    fig = make_subplots(rows=r, cols=cols, horizontal_spacing=0.015, vertical_spacing=0.02,
                        subplot_titles=heads + [""] * (cols * (r - 1)))
    changing = []
    for i in range(r):
        fig.add_trace(viz.image_trace(images[i]), row=i + 1, col=1)
        if baselines is not None:
            changing.append(len(fig.data))
            fig.add_trace(viz.image_trace(baselines[0, i]), row=i + 1, col=2)
        for j in range(k):
            changing.append(len(fig.data))
            fig.add_trace(viz.map_trace(maps[0, j, i], showscale=i == 0 and j == k - 1), row=i + 1, col=lead + 1 + j)
    frames = []
    for f in range(nf):
        data = []
        for i in range(r):
            if baselines is not None:
                data.append(viz.image_trace(baselines[f, i]))
            data += [go.Heatmap(z=viz._levels(maps[f, j, i])) for j in range(k)]
        frames.append(go.Frame(name=str(frame_labels[f]), traces=changing, data=data))
    fig.frames = frames
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=row_height * r + 170,
                      margin=dict(l=10, r=10, t=70, b=70),
                      sliders=[viz.slider([str(b) for b in frame_labels], prefix)])
    fig.update_annotations(font_size=11)
    viz.square_axes(fig, r * cols)
    return fig


HYPERPARAMETERS = {"occlusion": ("window", "stride"), "rise": ("cell", "n_masks"),
                   "integrated_gradients": ("n_steps",), "kernel_shap": ("n_samples",)}


def hyper_sweep(method: str, models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor,
                baselines: dict[str, torch.Tensor], name: str, values: Sequence, **kwargs) -> torch.Tensor:
    """Maps (V, B, M, N, H, W) of ``method`` for every value of one hyperparameter ``name`` (see
    :data:`HYPERPARAMETERS`) under every baseline, the others held at ``kwargs``. Occlusion's ``window`` carries its
    stride along (half the window), its ``stride`` holds the window."""
    if name not in HYPERPARAMETERS.get(method, ()):
        known = "; ".join(f"{m}: {', '.join(h)}" for m, h in HYPERPARAMETERS.items())
        raise ValueError(f"{method} has no swept hyperparameter {name!r}: choose one of {known}")
    out = []
    for v in values:
        kw = {**kwargs, name: v}
        if method == "occlusion" and name == "window":
            kw["stride"] = max(1, v // 2)
        out.append(torch.stack([maps_under(method, models, x, target, b, **kw) for b in baselines.values()]))
    return torch.stack(out)


def hyper_sweeps(hypers: dict[str, dict[str, Sequence]], models: Sequence[nn.Module], x: torch.Tensor,
                 target: torch.Tensor, baselines: dict[str, torch.Tensor],
                 method_kwargs: dict[str, dict]) -> dict[tuple[str, str], torch.Tensor]:
    """:func:`hyper_sweep` for every (method, hyperparameter) of ``hypers`` ({method: {name: values}}), the other
    hyperparameters held at ``method_kwargs[method]``."""
    return {(m, name): hyper_sweep(m, models, x, target, baselines, name, values,
                                   **{k: v for k, v in method_kwargs.get(m, {}).items() if k != name})
            for m, by_name in hypers.items() for name, values in by_name.items()}


def across_values(sweep: torch.Tensor, baseline: int = 0) -> torch.Tensor:
    """Rank correlation (M, N) between one model's maps at two values of a hyperparameter, averaged over the pairs
    of values, under baseline index ``baseline`` of a sweep (V, B, M, N, H, W)."""
    v = sweep.shape[0]
    if v < 2:
        raise ValueError("a hyperparameter sweep needs at least two values to compare maps across them")
    return over_pairs(sweep[:, baseline])


def hyper_rows(sweeps: dict[tuple[str, str], torch.Tensor], hypers: dict[str, dict[str, Sequence]],
               methods: Sequence[str], across_s: torch.Tensor, baseline: int = 0, n_boot: int = 1000,
               level: float = 0.9, seed: int = 0) -> tuple[list[dict], dict[str, int]]:
    """Per swept hyperparameter: rank correlation of one model's maps across its values, against the rank
    correlation across seeds (``across_s`` (K, M, N) of :func:`divergence`, same models and images), and how many
    hyperparameters move the maps more than a change of seed does (difference below 0), less, or indistinguishably."""
    rows, codes = [], []
    for (m, name), sw in sweeps.items():
        if m not in methods:
            raise ValueError(f"hyperparameters of {m} need its seed yardstick: add {m} to baseline_methods")
        av, s = across_values(sw, baseline), across_s[list(methods).index(m)]
        d = mean_interval(av - s, n_boot, level, seed)
        codes.append(_verdict_code(d))
        rows.append({"method": m, "hyperparameter": name, "values": ", ".join(map(str, hypers[m][name])),
                     "ρ across values": f"{mean_interval(av, n_boot, level, seed):.2f}",
                     "ρ across seeds": f"{mean_interval(s, n_boot, level, seed):.2f}", "difference": f"{d:.2f}"})
    return rows, {"n_hypers": len(rows), "n_hyper_more": codes.count("-"), "n_hyper_less": codes.count("+"),
                  "n_hyper_same": codes.count("0")}


def shared_masks(models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor, baseline: torch.Tensor,
                 seed: int = 0, **kwargs) -> dict[str, torch.Tensor]:
    """How much of the agreement between RISE maps of different models comes from sharing the masks.

    Rank correlations (M, N), each averaged over the other models: ``"shared"``, two models with the same masks
    (``seed`` for all, the book's convention); ``"independent"``, two models with their own masks (seed
    ``seed + 1 + m``); and ``"masks_only"``, one model under two mask sets (``seed`` vs ``seed + 1 + m``), the
    agreement that the masks' sampling alone leaves."""
    m = len(models)
    if m < 2:
        raise ValueError("comparing RISE maps across models needs at least two models")
    shared = torch.stack([rise(mod, x, target, baseline, seed=seed, **kwargs).sum(1) for mod in models])
    own = torch.stack([rise(mod, x, target, baseline, seed=seed + 1 + k, **kwargs).sum(1)
                       for k, mod in enumerate(models)])
    return {"shared": with_others(shared), "independent": with_others(own),
            "masks_only": rank_correlation(shared, own)}


def shared_mask_numbers(agreement: dict[str, torch.Tensor], n_boot: int = 1000, level: float = 0.9,
                        seed: int = 0) -> dict[str, object]:
    """Glue values for :func:`shared_masks`: each agreement and the part that sharing adds (shared − independent),
    with multi-bootstrap intervals over models and images, and a verdict."""
    from .intervals import verdict

    gain = mean_interval(agreement["shared"] - agreement["independent"], n_boot, level, seed)
    out = {f"rise_{k}": f"{mean_interval(v, n_boot, level, seed):.2f}" for k, v in agreement.items()}
    return {**out, "rise_share_gain": f"{gain:.2f}", "rise_share_code": _verdict_code(gain),
            "rise_share_verdict": verdict(gain, "sharing the masks raises the agreement between models",
                                          "sharing the masks lowers the agreement between models",
                                          "sharing the masks makes no difference that this run can detect")}


def curves_figure(frac: Sequence[float], curves_by_method: dict[str, dict[str, Sequence[float]]], ylabel: str,
                  title: str = ""):
    """Mean deletion/insertion curves, one line per baseline, a menu over methods (:func:`helpers.viz.menu`)."""
    import plotly.graph_objects as go

    from . import viz

    fig = go.Figure()
    owner = []
    for mi, (method, series) in enumerate(curves_by_method.items()):
        for name, ys in series.items():
            fig.add_trace(go.Scatter(x=[float(f) for f in frac], y=[round(float(v), 4) for v in ys],
                                     mode="lines", name=name, visible=mi == 0))
            owner.append(mi)
    methods = list(curves_by_method)
    fig.update_layout(title=title, xaxis_title="fraction of pixels perturbed", yaxis_title=ylabel, height=440,
                      margin=dict(l=60, r=10, t=90, b=50),
                      updatemenus=[viz.menu(methods, [{"visible": [o == k for o in owner]}
                                                      for k in range(len(methods))], x=0.0, y=1.22)],
                      annotations=[viz.menu_label("◀ choose the method", 0.25, 1.19)])
    return fig


# ---------------------------------------------------------------- chapter-level steps (chapter 6)


def sweep(methods: Sequence[str], models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor,
          baselines: dict[str, torch.Tensor], method_kwargs: dict[str, dict] | None = None,
          progress: bool = False) -> torch.Tensor:
    """Maps of every method under every baseline: (B, K, M, N, H, W), channel-summed (Brunke et al.'s first
    question: do "neutral" baselines change the maps?)."""
    from tqdm.auto import tqdm

    kw = method_kwargs or {}
    jobs = [(b, m) for b in baselines for m in methods]
    out = [maps_under(m, models, x, target, baselines[b], **kw.get(m, {}))
           for b, m in tqdm(jobs, desc="maps under each baseline", disable=not progress)]
    return torch.stack(out).view(len(baselines), len(methods), len(models), *x.shape[:1], *x.shape[-2:])


def divergence(maps: torch.Tensor, reference: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank correlation of maps (B, K, M, N, H, W) across baselines and across seeds, each (K, M, N): the mean over
    pairs of baselines of one model's maps, and (under baseline ``reference``) the mean over the other models."""
    m = maps.shape[2]
    across_b = over_pairs(maps)
    ref = maps[reference]
    if m < 2:
        return across_b, torch.full_like(across_b, float("nan"))
    return across_b, with_others(ref.movedim(1, 0)).movedim(0, 1)


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


def baseline_probabilities(models: Sequence[nn.Module], baselines: dict[str, torch.Tensor],
                           target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The probability (M, N) that each model gives each baseline image for the class of the image it replaces:
    1/K would be a neutral baseline."""
    return {b: _forward(models, img, target, "prob", paired=False) for b, img in baselines.items()}


def method_options(methods: Sequence[str], window: int = 4, rise_masks: int = 500, rise_cell: int = 4,
                   surrogate_samples: int = 100, ig_steps: int = 32, seed: int = 0) -> dict[str, dict]:
    """Keyword arguments of the baseline methods of chapter 6 (the baseline itself is passed separately)."""
    table = {"occlusion": {"window": window, "stride": max(1, window // 2)},
             "rise": {"n_masks": rise_masks, "cell": rise_cell, "seed": seed},
             "integrated_gradients": {"n_steps": ig_steps},
             "kernel_shap": {"n_samples": surrogate_samples, "seed": seed},
             "lime": {"n_samples": surrogate_samples, "seed": seed}}
    return {m: table.get(m, {}) for m in methods}


def display_maps(maps: torch.Tensor, centre: bool | Sequence[bool] = False) -> torch.Tensor:
    """Each map divided by its 99th percentile of |a| and clipped to [−1, 1] (as in the other chapters).

    ``centre`` (one bool, or one per entry of axis 1) first subtracts each map's spatial mean: RISE's saliency is an
    expected score and positive everywhere, so its pattern is only visible relative to its mean."""
    from .maps import normalize

    c = torch.as_tensor(centre, dtype=torch.bool)
    if c.any():
        mask = c.view(1, -1, *([1] * (maps.ndim - 2))) if c.ndim else c
        maps = torch.where(mask.to(maps.device), maps - maps.mean((-2, -1), keepdim=True), maps)
    return normalize(maps, "quantile")


def _verdict_code(iv: Interval) -> str:
    return "+" if iv.low > 0 else "-" if iv.high < 0 else "0"


def divergence_rows(methods: Sequence[str], across_b: torch.Tensor, across_s: torch.Tensor, n_boot: int = 1000,
                    level: float = 0.9, seed: int = 0) -> tuple[list[dict], dict[str, int]]:
    """Per method: rank correlation across baselines, across seeds and their difference (intervals over models and
    images); and how many methods the baseline moves more than (difference below 0), less, or indistinguishably."""
    rows, codes = [], []
    for k, m in enumerate(methods):
        ib, is_ = (mean_interval(t[k], n_boot, level, seed) for t in (across_b, across_s))
        d = mean_interval(across_b[k] - across_s[k], n_boot, level, seed)
        codes.append(_verdict_code(d))
        rows.append({"method": m, "ρ across baselines": f"{ib:.2f}", "ρ across seeds": f"{is_:.2f}",
                     "difference": f"{d:.2f}"})
    return rows, {"n_baseline_more": codes.count("-"), "n_baseline_less": codes.count("+"),
                  "n_baseline_same": codes.count("0")}


def divergence_summary(across_b: torch.Tensor, across_s: torch.Tensor, n_boot: int = 1000, level: float = 0.9,
                       seed: int = 0) -> dict[str, object]:
    """Glue values for the mean over methods of the across-baseline and across-seed rank correlations."""
    ib = mean_interval(across_b.mean(0), n_boot, level, seed)
    is_ = mean_interval(across_s.mean(0), n_boot, level, seed)
    d = mean_interval((across_b - across_s).mean(0), n_boot, level, seed)
    from .intervals import verdict

    return {"rho_baselines": f"{ib:.2f}", "rho_seeds": f"{is_:.2f}", "rho_diff": f"{d:.2f}",
            "rho_baselines_high": ib.high, "rho_diff_code": _verdict_code(d),
            "rho_verdict": verdict(d, "a change of seed moves the maps more than a change of baseline",
                                   "a change of baseline moves the maps more than a change of seed",
                                   "the two cannot be told apart at this level")}


_CURVES = (("deletion", "deletion (MoRF)"), ("lerf", "deletion (LeRF)"), ("insertion", "insertion"))


def curve_series(methods: Sequence[str], baselines: Sequence[str],
                 mc: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Mean curves per (method, curve kind) and metric baseline, for :func:`curves_figure`."""
    return {f"{m}: {label}": {b: mc[key][k, j].mean((0, 1)) for j, b in enumerate(baselines)}
            for k, m in enumerate(methods) for key, label in _CURVES}


def metric_scores(mc: dict[str, torch.Tensor], frac: torch.Tensor) -> dict[str, torch.Tensor]:
    """Scores (K, B, M, N), oriented so that higher = more faithful: −deletion AUC, insertion AUC, AOPC (MoRF)."""
    return {"deletion": -auc(mc["deletion"], frac), "insertion": auc(mc["insertion"], frac),
            "aopc": aopc(mc["deletion"])}


def _winners(methods: Sequence[str], baselines: Sequence[str], scores: dict[str, torch.Tensor]) -> str:
    label = {"deletion": "deletion area", "insertion": "insertion area", "aopc": "AOPC"}
    groups = {}
    for key, s in scores.items():
        best = s.mean((-2, -1)).argmax(0).tolist()  # winner per baseline
        groups[key] = {methods[w]: [b for b, bw in zip(baselines, best) if bw == w] for w in dict.fromkeys(best)}
    everyone = {w for g in groups.values() for w in g}
    if len(everyone) == 1:
        return f"the same method, `{everyone.pop()}`, comes first under every metric baseline by all three metrics."
    parts = [f"by {label[k]}, " + "; ".join(f"`{w}` under {', '.join(bs)}" for w, bs in g.items())
             for k, g in groups.items()]
    return "the method ranked first is not always the same: " + "; ".join(parts) + "."


def ranking_rows(methods: Sequence[str], baselines: Sequence[str], scores: dict[str, torch.Tensor],
                 n_boot: int = 1000, level: float = 0.9, seed: int = 0) -> tuple[list[dict], dict[str, object]]:
    """The ranking of methods by each metric under each metric baseline (best first), and glue values: Kendall τ
    between baselines (mean and least similar pair, with intervals), the number of distinct rankings, the winners."""
    rows = [{"metric baseline": b, **{k: ranking(methods, s[:, j].mean((-2, -1))) for k, s in scores.items()}}
            for j, b in enumerate(baselines)]
    out: dict[str, object] = {"winner_sentence": _winners(methods, baselines, scores)}
    for k, s in scores.items():
        _, mean_tau, min_tau = ranking_agreement(s, n_boot, level, seed)
        out.update({f"tau_{k}_mean": f"{mean_tau:.2f}", f"tau_{k}_min": f"{min_tau:.2f}",
                    f"tau_{k}_min_high": min_tau.high, f"distinct_{k}": len({r[k] for r in rows})})
    return rows, out


_FAITH_LABELS = {"single": "single (model m's own map)", "others": "others (leave-one-out mean)",
                 "ensemble": "ensemble (mean-logit model's map)", "blurred": "blurred single (smoothness-matched)"}


def faithfulness_rows(faith: dict[str, dict[str, torch.Tensor]], n_boot: int = 1000, level: float = 0.9,
                      seed: int = 0) -> tuple[list[dict], dict[str, object]]:
    """Table and glue values of :func:`faithfulness`: mean AUCs with intervals, paired gains (positive = the first
    map is the more faithful) with their verdicts."""
    from .intervals import verdict

    iv = lambda t: mean_interval(t, n_boot, level, seed)  # noqa: E731
    d, i = faith["deletion"], faith["insertion"]
    out: dict[str, object] = {f"{p}_{k}": f"{iv(t[k]):.3f}" for p, t in (("del", d), ("ins", i)) for k in d}
    out["sigma_mean"] = float(faith["sigma"]["blur"].mean())
    rel = float(faith["sigma"]["ensemble_vs_mean"])
    out["ens_sentence"] = (f"equals the mean of all M maps up to float rounding (largest difference {rel:.1e} of "
                           f"the largest value): the method is linear in the model's output, so the ensemble's map "
                           f"is the marginalized map that includes model m" if rel < 1e-3 else
                           f"differs from the mean of all M maps (largest difference {rel:.2f} of the largest "
                           f"value): for this method, explaining the ensemble is not the same as averaging maps")
    gains = {"del_others": d["single"] - d["others"], "ins_others": i["others"] - i["single"],
             "del_blur": d["blurred"] - d["others"], "ins_blur": i["others"] - i["blurred"],
             "del_ensemble": d["single"] - d["ensemble"], "ins_ensemble": i["ensemble"] - i["single"]}
    words = {"others": ("the leave-one-out map is the more faithful", "the model's own map is the more faithful",
                        "the two cannot be told apart"),
             "blur": ("marginalization beats blurring", "blurring beats marginalization",
                      "marginalization and blurring cannot be told apart"),
             "ensemble": ("the ensemble's map is the more faithful", "the model's own map is the more faithful",
                          "the two cannot be told apart")}
    for name, g in gains.items():
        interval = iv(g)
        out[f"gain_{name}"] = f"{interval:.3f}"
        out[f"v_{name}"] = verdict(interval, *words[name.split("_")[1]])
        out[f"code_{name}"] = _verdict_code(interval)
    rows = [{"map": _FAITH_LABELS[k], "deletion AUC (lower: better)": out[f"del_{k}"],
             "insertion AUC (higher: better)": out[f"ins_{k}"]} for k in d]
    return rows, out


def _status(codes: Sequence[str]) -> str:
    if all(c == "+" for c in codes):
        return "confirmed"
    if all(c == "-" for c in codes):
        return "contradicted"
    return "left open"


def claims_text(div: dict, tau: dict, faith: dict, level: float = 0.9, faith_other: dict | None = None,
                other_name: str = "", hyper: dict | None = None) -> str:
    """The closing list of chapter 6: which claims the numbers confirm, contradict or leave open, each decided by
    the stated test on this run's intervals."""
    pct = f"{level:.0%}"
    maps_moved = "confirmed" if div["rho_baselines_high"] < 1 else "not seen"
    reliable = [k for k in ("deletion", "insertion", "aopc") if tau[f"tau_{k}_min_high"] < 1]
    changed = [k for k in ("deletion", "insertion", "aopc") if tau[f"distinct_{k}"] > 1]
    rank = ("confirmed" if reliable else "left open" if changed else "not seen")
    faithful = _status([faith["code_del_others"], faith["code_ins_others"]])
    beyond = _status([faith["code_del_blur"], faith["code_ins_blur"]])
    other = ""
    if faith_other is not None:
        o1 = _status([faith_other["code_del_others"], faith_other["code_ins_others"]])
        o2 = _status([faith_other["code_del_blur"], faith_other["code_ins_blur"]])
        other = (f" Scored on the {other_name} instead, the same two tests give **{o1}** (gains "
                 f"{faith_other['gain_del_others']} and {faith_other['gain_ins_others']}) and **{o2}** (gains "
                 f"{faith_other['gain_del_blur']} and {faith_other['gain_ins_blur']}).")
    return "\n".join([
        f"- Brunke et al., baselines change the maps: **{maps_moved}** (test: the {pct} interval of the rank "
        f"correlation between maps under two baselines lies below 1; it is {div['rho_baselines']}). Compared with "
        f"the seed, {div['rho_verdict']}.",
        *([f"- Brunke et al., hyperparameters make the maps diverge: "
           f"**{'confirmed' if hyper['n_hyper_more'] else 'left open'}** (test: for at least one swept "
           f"hyperparameter, the {pct} interval of (rank correlation across its values − across seeds) lies below 0; "
           f"it does for {hyper['n_hyper_more']} of {hyper['n_hypers']})."] if hyper else []),
        f"- Brunke et al., baselines change the evaluation: **{rank}** (test: for at least one metric, the {pct} "
        f"interval of the smallest Kendall τ between two metric baselines' rankings lies below 1; metrics that pass: "
        f"{', '.join(reliable) or 'none'}; metrics whose point rankings differ: {', '.join(changed) or 'none'}).",
        f"- Marginalization makes maps more faithful to each model (Woerl et al.'s remedy, judged by deletion and "
        f"insertion): **{faithful}** (test: both paired gains of the leave-one-out map over the model's own map "
        f"have {pct} intervals above 0 to confirm, below 0 to contradict; they are {faith['gain_del_others']} and "
        f"{faith['gain_ins_others']}).",
        f"- Marginalization helps beyond smoothing: **{beyond}** (same test against the smoothness-matched blurred "
        f"single map; gains {faith['gain_del_blur']} and {faith['gain_ins_blur']})." + other,
    ])
