"""Statistics of CLEAR maps (Kumar, Wong & Taylor, CVPRW 2017) over images and seeds: per-image statistics,
agreement between seeds, and single-model vs marginalized summaries with multi-bootstrap intervals over models and
images.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Mapping, Sequence
import torch
from torch import nn

from ..attribution.clear import (_check_models, _check_responses, _num_classes, check_marginalization, check_null,
                                 check_start, focus, focus_both, marginalize, null_maps, null_permutations,
                                 per_model_responses, scale_responses)
from .intervals import Interval, percentile
from ..zoo.outputs import zoo_logits


def select_examples(pred: torch.Tensor, labels: torch.Tensor, n_correct: int, n_wrong: int,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random indices of ``n_correct`` correctly and ``n_wrong`` wrongly predicted images (fewer if there are
    not that many)."""
    if pred.shape != labels.shape or pred.ndim != 1:
        raise ValueError(f"pred {tuple(pred.shape)} and labels {tuple(labels.shape)} must be (N,): pass one "
                         f"model's predictions")
    gen = torch.Generator().manual_seed(seed)
    ok = (pred == labels).cpu()
    pick = (lambda mask, n: torch.nonzero(mask)[:, 0][torch.randperm(int(mask.sum()), generator=gen)[:n]])
    return pick(ok, n_correct), pick(~ok, n_wrong)


def random_subset(n_total: int, n: int | None, seed: int = 0) -> torch.Tensor:
    """Sorted seeded random indices of ``n`` of ``n_total`` images (all of them for ``None`` or n ≥ n_total)."""
    if n is None or n >= n_total:
        return torch.arange(n_total)
    if n < 1:
        raise ValueError(f"n={n}: pass a positive number of images (or None for all)")
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


@dataclass(frozen=True)
class ClearStats:
    """Per-image CLEAR numbers, each of shape (…, N) (``…``: models or resampled zoos).

    ``shares[..., k]`` is the fraction of the positive focus mass Σ_p max(R̂(p), 0) on pixels whose dominant class is
    k, ``pixel_shares[..., k]`` the fraction of the pixels with positive focus whose dominant class is k and
    ``neg_shares`` the same as ``shares`` for the negative focus (mass Σ_p max(−min_k R_k(p), 0)). ``top`` and
    ``neg_top`` are the classes with the largest positive / negative mass (−1: the map has none); ``pred`` / ``second``
    the best and second-best classes by logit, ``confidence`` the softmax probability of ``pred``; ``smoothness``
    the fraction of neighbouring pixel pairs (both with positive focus) that share their dominant class;
    ``strongest`` the class whose map has the largest total |R_k| (−1: all maps are zero)."""

    true: torch.Tensor
    pred: torch.Tensor
    second: torch.Tensor
    confidence: torch.Tensor
    top: torch.Tensor
    neg_top: torch.Tensor
    smoothness: torch.Tensor
    strongest: torch.Tensor
    shares: torch.Tensor  # (…, N, K)
    pixel_shares: torch.Tensor  # (…, N, K)
    neg_shares: torch.Tensor  # (…, N, K)

    @property
    def correct(self) -> torch.Tensor:
        return self.pred == self.true

    def share_of(self, cls: torch.Tensor, what: str = "shares") -> torch.Tensor:
        return getattr(self, what).gather(-1, cls.unsqueeze(-1)).squeeze(-1)


def _class_mass(cls: torch.Tensor, mass: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(shares (…, K) of ``mass`` per class, top class or −1 where there is no mass)."""
    per_class = torch.zeros(*cls.shape[:-1], k, dtype=mass.dtype, device=mass.device).scatter_add_(-1, cls, mass)
    total = per_class.sum(-1, keepdim=True)
    top = torch.where(total[..., 0] > 0, per_class.argmax(-1), torch.full_like(total[..., 0], -1, dtype=torch.long))
    return per_class / total.clamp_min(torch.finfo(mass.dtype).tiny), top


def neighbour_agreement(dom_class: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fraction of horizontally or vertically adjacent pixel pairs, both in ``mask``, with the same dominant class:
    (…, H, W) -> (…,); NaN where no pair is in the mask. Low values = a speckled CLEAR map."""
    same = both = 0
    for a, b in (((..., slice(1, None), slice(None)), (..., slice(None, -1), slice(None))),
                 ((..., slice(None), slice(1, None)), (..., slice(None), slice(None, -1)))):
        pair = mask[a] & mask[b]
        same = same + ((dom_class[a] == dom_class[b]) & pair).flatten(-2).sum(-1)
        both = both + pair.flatten(-2).sum(-1)
    return same.float() / both.float().where(both > 0, torch.tensor(float("nan"), device=both.device))


def image_stats(responses: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> ClearStats:
    """CLEAR statistics of ``responses`` (…, N, K, H, W) given the model's ``logits`` (…, N, K) and ``labels`` (N,)."""
    _check_responses(responses, min_ndim=4)
    if logits.shape != responses.shape[:-2]:
        raise ValueError(f"logits {tuple(logits.shape)} do not match responses {tuple(responses.shape)}: "
                         f"pass one row of K logits per image, shape {tuple(responses.shape[:-2])}")
    if labels.shape != (responses.shape[-4],):
        raise ValueError(f"labels {tuple(labels.shape)} do not match the {responses.shape[-4]} images: "
                         f"pass one label per image")
    k = responses.shape[-3]
    (dom, val), (neg, neg_val) = focus_both(responses)
    pos = val > 0
    shares, top = _class_mass(dom.flatten(-2), val.clamp_min(0).flatten(-2), k)
    pixel_shares, _ = _class_mass(dom.flatten(-2), pos.flatten(-2).to(val.dtype), k)
    neg_shares, neg_top = _class_mass(neg.flatten(-2), neg_val.clamp_min(0).flatten(-2), k)
    best2 = logits.topk(2, dim=-1).indices
    true = labels.to(logits.device).expand(best2.shape[:-1])
    confidence = logits.float().softmax(-1).amax(-1)
    strength = torch.linalg.vector_norm(responses, 1, dim=(-2, -1))  # (…, N, K): Σ |R_k(p)|
    strongest = torch.where(strength.amax(-1) > 0, strength.argmax(-1), torch.full_like(top, -1))
    return ClearStats(true, best2[..., 0], best2[..., 1], confidence, top, neg_top, neighbour_agreement(dom, pos),
                      strongest, shares, pixel_shares, neg_shares)


def stack_stats(parts: Sequence[ClearStats], dim: int = 0, cat: bool = False) -> ClearStats:
    """Stack (or with ``cat`` concatenate) the fields of several :class:`ClearStats` along ``dim``."""
    op = torch.cat if cat else torch.stack
    return ClearStats(*(op([getattr(p, f.name) for p in parts], dim) for f in fields(ClearStats)))


def class_correlation(responses: torch.Tensor) -> torch.Tensor:
    """Mean Pearson correlation between the K maps of one image over all pairs of classes: (…, K, H, W) -> (…,).
    Near 1: the K maps look alike and small differences decide the argmax (a class-blind back-projection)."""
    _check_responses(responses)
    k = responses.shape[-3]
    r = responses.flatten(-2).float()
    r = r - r.mean(-1, keepdim=True)
    r = r / r.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    corr = r @ r.transpose(-1, -2)
    return (corr.sum((-1, -2)) - corr.diagonal(dim1=-2, dim2=-1).sum(-1)) / (k * (k - 1))


def seed_agreement(dom_class: torch.Tensor, mask: torch.Tensor, n_classes: int) -> torch.Tensor:
    """How often the other models agree with model m on a pixel's dominant class: (M, …, H, W) -> (M, …).

    Over the pixels where model m and another model both have focus (``mask``), the fraction of (pixel, other
    model) pairs with the same dominant class; NaN where there is no such pair (e.g. M = 1)."""
    onehot = torch.nn.functional.one_hot(dom_class, n_classes) * mask[..., None]
    counts = onehot.sum(0)  # (…, H, W, K): models per class and pixel
    same = (counts.expand_as(onehot).gather(-1, dom_class[..., None]).squeeze(-1) - 1) * mask  # others with m's class
    both = (mask.sum(0) - 1) * mask
    same, both = same.flatten(-2).sum(-1).double(), both.flatten(-2).sum(-1).double()
    return same / both.where(both > 0, torch.tensor(float("nan"), dtype=both.dtype, device=both.device))


def class_disagreement(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Fraction of the pixels with positive focus in ``a`` or ``b`` (both (…, K, H, W)) whose dominant class differs:
    (…,), NaN where neither map has positive focus."""
    ca, va = focus(a)
    cb, vb = focus(b)
    any_focus = ((va > 0) | (vb > 0)).flatten(-2)
    differ = ((ca != cb).flatten(-2) & any_focus).sum(-1).double()
    n = any_focus.sum(-1).double()
    return differ / n.where(n > 0, torch.tensor(float("nan"), dtype=n.dtype, device=n.device))


@dataclass(frozen=True)
class ZooStats:
    """CLEAR statistics of a zoo for one reading (start): ``single`` (M, N) per model, ``marginalized`` (N,) over all
    M models, ``boot`` (B, N) marginalized over zoos drawn from the M models with replacement (``weights`` (B, M):
    how often each model is drawn; ``image_weights`` (B, N): how often each image is drawn, the multi-bootstrap of
    Sellam et al., ICLR 2022), ``agreement`` (M, N) how often the other models agree with model m on the
    dominant class of a pixel (:func:`seed_agreement`), ``how_disagreement`` (N,) the fraction of pixels (with
    positive focus in either map) whose dominant class differs between the two marginalizations of
    :data:`MARGINALIZATIONS` (0 for the unit start, where they coincide)."""

    single: ClearStats
    marginalized: ClearStats
    boot: ClearStats
    weights: torch.Tensor
    image_weights: torch.Tensor
    agreement: torch.Tensor  # (M, N)
    how_disagreement: torch.Tensor  # (N,)

    @property
    def n_models(self) -> int:
        return int(self.weights.shape[1])


def bootstrap_weights(n_models: int, n_boot: int, seed: int = 0) -> torch.Tensor:
    """(B, M) counts: how often each of the M models is drawn in each of ``n_boot`` resampled zoos of size M."""
    if n_boot < 1 or n_models < 1:
        raise ValueError(f"n_boot={n_boot}, n_models={n_models}: pass positive numbers")
    draws = torch.randint(0, n_models, (n_boot, n_models), generator=torch.Generator().manual_seed(seed))
    return torch.zeros(n_boot, n_models).scatter_add_(1, draws, torch.ones(n_boot, n_models))


def reading(start: str, null: str | None = None) -> str:
    """The key of a reading in :func:`zoo_stats`'s output: ``"response"`` (CLEAR) or ``"response:permuted"`` (a
    null of :data:`helpers.attribution.clear.NULLS`)."""
    return start if null is None else f"{start}:{check_null(null)}"


def _resampled(weights: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Σ_m w_bm · maps_m for (B, M) weights and (M, n, K, H, W) maps: (B, n, K, H, W), stored class-last, so that the
    per-pixel argmax over classes reads it without a copy (:func:`helpers.attribution.clear.class_last`)."""
    return torch.einsum("bm,mnkhw->bnhwk", weights, maps).movedim(-1, -3)


def _block_parts(unit_all: torch.Tensor, z_all: torch.Tensor, yb: torch.Tensor, weights: torch.Tensor,
                 perm: torch.Tensor, starts: Sequence[str], nulls: Sequence[str], how: str, chunk: int,
                 parts: dict[str, list]) -> None:
    """Append to ``parts[reading]`` the statistics of one block of images (unit maps (M, n, K, H, W), logits
    (M, n, K)) for every start, for CLEAR and for each null (same logits, null unit maps)."""
    m, k = unit_all.shape[0], unit_all.shape[2]
    for null in (None, *nulls):
        d_all = unit_all if null is None else null_maps(unit_all, null, perm)
        for j in range(0, d_all.shape[1], chunk):
            unit, z, yc = d_all[:, j:j + chunk], z_all[:, j:j + chunk], yb[j:j + chunk]
            zb = torch.einsum("bm,m...->b...", weights / m, z)
            for s in starts:
                r = scale_responses(unit, z, s)
                rb = (scale_responses(_resampled(weights / m, unit), zb, s) if how == "ensemble"
                      else _resampled(weights / m, r))
                dom, val = focus(r)
                marg = marginalize(unit, z, s, how)
                other = marginalize(unit, z, s, "ensemble" if how == "explanations" else "explanations")
                parts[reading(s, null)].append((image_stats(r, z, yc), image_stats(marg, z.mean(0), yc),
                                                image_stats(rb, zb, yc), seed_agreement(dom, val > 0, k),
                                                class_disagreement(marg, other)))
                del rb


def _collect(parts: dict[str, list], weights: torch.Tensor, image_weights: torch.Tensor) -> dict[str, ZooStats]:
    cpu = (lambda st: ClearStats(*(getattr(st, f.name).cpu() for f in fields(ClearStats))))
    out = {}
    for s, p in parts.items():
        single, marg, boot = (cpu(stack_stats([q[j] for q in p], dim=d, cat=True)) for j, d in enumerate((1, 0, 1)))
        out[s] = ZooStats(single, marg, boot, weights.cpu(), image_weights, torch.cat([q[3] for q in p], -1).cpu(),
                          torch.cat([q[4] for q in p]).cpu())
    return out


def _check_readings(starts: Sequence[str], nulls: Sequence[str], how: str) -> None:
    for s in starts:
        check_start(s)
    for null in nulls:
        check_null(null)
    check_marginalization(how)


def map_stats(unit: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor,
              starts: Sequence[str] = ("response", "unit"), nulls: Sequence[str] = (), how: str = "explanations",
              n_boot: int = 200, seed: int = 0, memory: int = 2 ** 28) -> dict[str, ZooStats]:
    """:func:`zoo_stats` from given unit-start maps (M, N, K, H, W) and logits (M, N, K) (e.g. synthetic ones):
    one :class:`ZooStats` per :func:`reading`, CLEAR's and each null's on the same multi-bootstrap draws."""
    _check_readings(starts, nulls, how)
    if unit.ndim != 5 or logits.shape != unit.shape[:3] or labels.shape != unit.shape[1:2]:
        raise ValueError(f"unit {tuple(unit.shape)}, logits {tuple(logits.shape)} and labels {tuple(labels.shape)}: "
                         f"pass maps (M, N, K, H, W), logits (M, N, K) and labels (N,)")
    m, n, k, h, w = unit.shape
    weights = bootstrap_weights(m, n_boot, seed).to(unit.device)
    chunk = max(1, memory // (4 * n_boot * k * h * w))
    perm = null_permutations(n, k, seed + 2)
    parts: dict[str, list] = {reading(s, null): [] for null in (None, *nulls) for s in starts}
    _block_parts(unit, logits, labels.to(unit.device), weights, perm, starts, nulls, how, chunk, parts)
    return _collect(parts, weights, bootstrap_weights(n, n_boot, seed + 1))


def zoo_stats(models: Sequence[nn.Module], x: torch.Tensor, labels: torch.Tensor, backend: str = "deconvolution",
              starts: Sequence[str] = ("response", "unit"), how: str = "explanations", n_boot: int = 200,
              seed: int = 0, batch_size: int = 4096, memory: int = 2 ** 28,
              nulls: Sequence[str] = ()) -> tuple[dict[str, ZooStats], torch.Tensor]:
    """CLEAR statistics of every reading in ``starts`` (and of every null in ``nulls``, keys :func:`reading`) and
    the class correlation (M, N) of the unit-start maps.

    One back-projection per model and chunk of images serves every reading (the response start only rescales the
    unit maps, a null rearranges them: :func:`helpers.attribution.clear.null_maps`, one seeded class permutation
    per image). The marginalized map follows ``how`` (:func:`marginalize`); its prediction is the mean-logit
    ensemble's. ``n_boot`` resampled zoos give intervals over models, the same draws for CLEAR and its nulls (so
    their differences are paired); ``memory`` bounds the bytes of one chunk."""
    _check_models(models)
    _check_readings(starts, nulls, how)
    m, (h, w) = len(models), x.shape[-2:]
    k = _num_classes(models[0], x)
    weights = bootstrap_weights(m, n_boot, seed).to(x.device)
    block = max(1, memory // (4 * m * k * h * w))  # images per back-projection block
    chunk = max(1, memory // (4 * n_boot * k * h * w))  # images per resampling chunk
    perm = null_permutations(x.shape[0], k, seed + 2)
    parts: dict[str, list] = {reading(s, null): [] for null in (None, *nulls) for s in starts}
    corr = []
    for i in range(0, x.shape[0], block):
        xb, yb = x[i:i + block], labels[i:i + block].to(x.device)
        unit_all = per_model_responses(models, xb, backend, batch_size, start="unit")  # (M, n, K, H, W)
        corr.append(class_correlation(unit_all))
        _block_parts(unit_all, zoo_logits(models, xb), yb, weights, perm[i:i + block], starts, nulls, how, chunk,
                     parts)
    return _collect(parts, weights, bootstrap_weights(x.shape[0], n_boot, seed + 1)), torch.cat(corr, -1).cpu()


METRICS: dict[str, Callable[[ClearStats], torch.Tensor]] = {
    "pixels: predicted": lambda s: s.share_of(s.pred, "pixel_shares"),
    "mass: predicted": lambda s: s.share_of(s.pred),
    "mass: true": lambda s: s.share_of(s.true),
    "mass: runner-up": lambda s: s.share_of(s.second),
    "top: predicted": lambda s: (s.top == s.pred).float(),
    "top: true": lambda s: (s.top == s.true).float(),
    "top: runner-up": lambda s: (s.top == s.second).float(),
    "negative top: predicted": lambda s: (s.neg_top == s.pred).float(),
    "runner-up is true": lambda s: (s.second == s.true).float(),
    "strongest map: predicted": lambda s: (s.strongest == s.pred).float(),
    "smoothness": lambda s: s.smoothness,
}


def groups(threshold: float | None = None) -> dict[str, Callable[[ClearStats], torch.Tensor]]:
    """Prediction groups: all, correct, wrong; with a softmax ``threshold`` the correct ones are split into
    confident correct (confidence > threshold) and unconfident correct."""
    if threshold is None:
        return {"all": lambda s: torch.ones_like(s.correct), "correct": lambda s: s.correct,
                "wrong": lambda s: ~s.correct}
    return {"all": lambda s: torch.ones_like(s.correct),
            "confident correct": lambda s: s.correct & (s.confidence > threshold),
            "unconfident correct": lambda s: s.correct & (s.confidence <= threshold),
            "wrong": lambda s: ~s.correct}


def _pooled(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(values with NaN and unselected entries set to 0, the selection as float) for weighted means."""
    ok = mask & torch.isfinite(values)
    return torch.where(ok, values, torch.zeros_like(values)).double(), ok.double()


def single_replicates(values: torch.Tensor, mask: torch.Tensor, model_weights: torch.Tensor,
                      image_weights: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Mean of ``values`` (M, N) over the (model, image) pairs in ``mask``: (point, replicates (B,)), each replicate
    weighting models and images by how often the multi-bootstrap draw b holds them (Sellam et al., ICLR 2022)."""
    v, ok = _pooled(values, mask)
    w, u = model_weights.double(), image_weights.double()
    point = float(v.sum() / ok.sum()) if ok.sum() > 0 else float("nan")
    return point, ((w @ v) * u).sum(-1) / ((w @ ok) * u).sum(-1)


def marginal_replicates(values: torch.Tensor, mask: torch.Tensor, boot_values: torch.Tensor, boot_mask: torch.Tensor,
                        image_weights: torch.Tensor,
                        bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, torch.Tensor]:
    """Mean of ``values`` (N,) over the images in ``mask``: (point, replicates (B,)). Replicate b uses the map, the
    prediction and the group of the zoo drawn in b (``boot_values``, ``boot_mask`` (B, N)) and its image weights.

    A drawn zoo repeats models, so its mean map averages fewer distinct models (about 63 % of M) and is noisier than
    the zoo's own: statistics of the argmax (smoothness, top class) come out shifted. The replicates are therefore
    shifted by the bootstrap's estimate of that bias (their mean minus the point estimate; Efron & Tibshirani 1993,
    §10.2), which keeps their spread and centres them on the estimate; shifted replicates are clipped to ``bounds``
    (every metric of :data:`METRICS` is a fraction)."""
    v, ok = _pooled(values, mask)
    point = float(v.sum() / ok.sum()) if ok.sum() > 0 else float("nan")
    vb, okb = _pooled(boot_values, boot_mask)
    u = image_weights.double()
    reps = (vb * u).sum(-1) / (okb * u).sum(-1)
    finite = torch.isfinite(reps)
    if finite.any() and point == point:
        reps = (reps - (reps[finite].mean() - point)).clamp(*bounds)
    return point, reps


@dataclass(frozen=True)
class Summary:
    """Point estimates and multi-bootstrap replicates of CLEAR metrics, keyed by (setting, group, metric) with
    setting "single" (pooled over (model, image) pairs) or "marginalized" (the mean over all M models)."""

    points: dict
    reps: dict
    counts: dict  # (setting, group) -> number of maps
    level: float = 0.9

    def interval(self, setting: str, group: str, metric: str) -> Interval:
        key = (setting, group, metric)
        if key not in self.points:
            raise KeyError(f"no estimate for {key}: choose among {sorted(self.points)[:6]} …")
        return percentile(self.points[key], self.reps[key], self.level)

    def rows(self, settings: Sequence[str] = ("single", "marginalized")) -> list[dict]:
        """One row per setting and group: ``n`` and an :class:`~helpers.intervals.Interval` per metric."""
        metrics = list(dict.fromkeys(k[2] for k in self.points))
        return [{"setting": s, "group": g, "n": self.counts[(s, g)],
                 **{m: self.interval(s, g, m) for m in metrics}}
                for s in settings for g in dict.fromkeys(k[1] for k in self.points)]


def summarize(zs: ZooStats, metrics: Sequence[str] | None = None,
              by: Mapping[str, Callable[[ClearStats], torch.Tensor]] | None = None, level: float = 0.9) -> Summary:
    """Every metric of :data:`METRICS` (or ``metrics``) for every group of ``by`` (default correct / wrong), single
    and marginalized, with replicates of the multi-bootstrap over models and images stored in ``zs``."""
    names = list(METRICS) if metrics is None else list(metrics)
    by = groups() if by is None else by
    points, reps, counts = {}, {}, {}
    for g, sel in by.items():
        mask, m_mask, b_mask = sel(zs.single), sel(zs.marginalized), sel(zs.boot)
        counts[("single", g)], counts[("marginalized", g)] = int(mask.sum()), int(m_mask.sum())
        for k in names:
            points[("single", g, k)], reps[("single", g, k)] = single_replicates(
                METRICS[k](zs.single), mask, zs.weights, zs.image_weights)
            points[("marginalized", g, k)], reps[("marginalized", g, k)] = marginal_replicates(
                METRICS[k](zs.marginalized), m_mask, METRICS[k](zs.boot), b_mask, zs.image_weights)
    return Summary(points, reps, counts, level)


def difference(a: Summary, key_a: tuple[str, str, str], b: Summary | None = None,
               key_b: tuple[str, str, str] | None = None) -> Interval:
    """The paired difference b − a of two estimates (same multi-bootstrap draws: one zoo, or two readings of it)."""
    b = a if b is None else b
    key_b = key_a if key_b is None else key_b
    return percentile(b.points[key_b] - a.points[key_a], b.reps[key_b] - a.reps[key_a], a.level)


EFFECT = 0.05  # the smallest excess over the nulls that counts as the maps' own (5 points of a share or rate)


@dataclass(frozen=True)
class NullComparison:
    """A CLEAR statistic beside its nulls (:data:`helpers.attribution.clear.NULLS`), all on the same multi-bootstrap
    draws: ``value`` and ``nulls[name]`` with their intervals, ``over[name]`` = value − that null (paired),
    ``excess`` = value − the larger null (per replicate) and the ``verdict`` it supports at ``threshold``:

    - ``"maps"``: the excess lies above the threshold over its whole interval (the maps add it);
    - ``"below"``: the value lies more than the threshold below every null over the whole interval;
    - ``"nulls"``: otherwise: a null without the maps' class content comes within the threshold of it (or above);
    - ``"none"``: the group has no maps."""

    value: Interval
    nulls: dict
    over: dict
    excess: Interval
    verdict: str
    threshold: float = EFFECT


def excess_verdict(excess: Interval, over: Mapping[str, Interval], threshold: float = EFFECT) -> str:
    """``"maps"``, ``"below"`` or ``"nulls"`` (see :class:`NullComparison`); ``"none"`` for an empty group."""
    if excess.point != excess.point:
        return "none"
    if excess.low > threshold:
        return "maps"
    if over and all(iv.high < -threshold for iv in over.values()):
        return "below"
    return "nulls"


def null_comparison(point: float, reps: torch.Tensor, null_points: Mapping[str, float],
                    null_reps: Mapping[str, torch.Tensor], level: float = 0.9,
                    threshold: float = EFFECT) -> NullComparison:
    """Compare a statistic (point, replicates (B,)) with its nulls, replicate by replicate (the draws must be the
    same: paired differences)."""
    if not null_points:
        raise ValueError("no null given: pass at least one null's point and replicates")
    names = list(null_points)
    over = {n: percentile(point - null_points[n], reps - null_reps[n], level) for n in names}
    top_point = max(null_points[n] for n in names)
    top_reps = torch.stack([null_reps[n].double() for n in names]).amax(0)
    excess = percentile(point - top_point, reps.double() - top_reps, level)
    return NullComparison(percentile(point, reps, level), {n: percentile(null_points[n], null_reps[n], level)
                                                           for n in names},
                          over, excess, excess_verdict(excess, over, threshold), threshold)


def compare_with_nulls(clear: Summary, nulls: Mapping[str, Summary], key: tuple[str, str, str],
                       threshold: float = EFFECT) -> NullComparison:
    """:func:`null_comparison` of one estimate (setting, group, metric) of ``clear`` with the same estimate of
    each null's :class:`Summary` (summaries of :func:`zoo_stats` readings: same draws)."""
    return null_comparison(clear.points[key], clear.reps[key], {n: s.points[key] for n, s in nulls.items()},
                           {n: s.reps[key] for n, s in nulls.items()}, clear.level, threshold)


def agreement_with_nulls(clear: ZooStats, nulls: Mapping[str, ZooStats], level: float = 0.9,
                         threshold: float = EFFECT) -> NullComparison:
    """The seed agreement (:func:`seed_agreement`, mean over models and images) of CLEAR beside its nulls'."""
    def rep(zs: ZooStats) -> tuple[float, torch.Tensor]:
        return single_replicates(zs.agreement, torch.ones_like(zs.agreement, dtype=torch.bool), zs.weights,
                                 zs.image_weights)

    point, reps = rep(clear)
    got = {n: rep(z) for n, z in nulls.items()}
    return null_comparison(point, reps, {n: g[0] for n, g in got.items()}, {n: g[1] for n, g in got.items()}, level,
                           threshold)


def model_image_interval(values: torch.Tensor, zs: ZooStats, level: float = 0.9) -> Interval:
    """Mean of per-(model, image) ``values`` (M, N), e.g. ``zs.agreement`` (:func:`seed_agreement`) or the class
    correlation of :func:`zoo_stats`, with the multi-bootstrap interval of ``zs``'s draws."""
    mask = torch.ones_like(values, dtype=torch.bool)
    return percentile(*single_replicates(values, mask, zs.weights, zs.image_weights), level)


def interval_text(iv: Interval, pct: bool = True, digits: int = 1) -> str:
    """``"13.6% [12.1%, 15.0%]"`` for the prose and tables; ``"–"`` for an empty group, no brackets without an
    interval (e.g. a single model)."""
    spec = f".{digits}%" if pct else f".{digits + 1}f"
    if iv.point != iv.point:
        return "–"
    if iv.low != iv.low:
        return format(iv.point, spec)
    return format(iv, spec)


def dominance_confusion(stats: ClearStats, wrong_only: bool = True) -> torch.Tensor:
    """(K, K) counts over maps (wrong predictions by default): row = top class of the CLEAR map, column = the
    second-best class by logit. The diagonal counts maps whose largest share goes to the runner-up class."""
    k = stats.shares.shape[-1]
    top, second = stats.top.reshape(-1), stats.second.reshape(-1)
    keep = top >= 0
    if wrong_only:
        keep &= ~stats.correct.reshape(-1)
    return torch.bincount(top[keep] * k + second[keep], minlength=k * k).reshape(k, k)


def frequent_top(confusion: torch.Tensor, n: int = 2) -> tuple[list[int], float, int]:
    """(the ``n`` classes that are most often the top class, their share of the maps, the least frequent one)."""
    per_class = confusion.sum(1)
    order = per_class.argsort(descending=True)
    total = int(per_class.sum())
    share = float(per_class[order[:n]].sum()) / total if total else float("nan")
    return [int(c) for c in order[:n]], share, int(order[-1])
