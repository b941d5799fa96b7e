"""Chapter 2: marginalized saliency across methods (Woerl et al., CVPR 2023, their "empirical noise levels vary").

The chapter's statistics use ``n_images`` test images (the true class of each, its runner-up, the untrained
control, the method seeds); its figures show the first ``n_shown`` of them. Maps go through the shared map cache
(:mod:`helpers.attribution.mapcache`), batched over images and models. The matched-resolution ranking pools every
map to the coarsest method's patch grid (:mod:`helpers.evaluation.resolution`) before the agreement is measured
again: a patch map cannot disagree inside a patch, so it gains agreement from its coarseness alone.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..attribution import mapcache
from ..evaluation import agreement, resolution
from ..evaluation.intervals import Interval


def shown_layers(zoo_key: str, seed_pairs: Sequence[tuple[int, int]], models: Sequence[nn.Module],
                 methods: Sequence[str], x: torch.Tensor, targets: torch.Tensor, kwargs: Mapping[str, dict],
                 true_maps: Mapping[str, torch.Tensor], runner_maps: Mapping[str, torch.Tensor],
                 n_shown: int) -> dict[str, torch.Tensor]:
    """The figure's maps (L classes, M models, n_shown images, H, W) per method (``targets`` (N, L): true class,
    runner-up, …, from :func:`helpers.zoo.ranked_classes`). The true class, and the runner-up of the methods in
    ``runner_maps``, are sliced from the statistics' maps of all images; every other class is computed for the
    shown images only, through the map cache."""
    n, n_layers = min(n_shown, x.shape[0]), targets.shape[1]
    layers = {m: [true_maps[m][:, :n]] for m in methods}
    for m in methods:
        if m in runner_maps and n_layers > 1:
            layers[m].append(runner_maps[m][:, :n])
    for start in (1, 2):  # the first class still to compute: 1 without runner-up maps, 2 with them
        group = [m for m in methods if len(layers[m]) == start]
        extra = n_layers - start
        if extra <= 0 or not group:
            continue
        xs = x[:n].repeat(extra, *([1] * (x.ndim - 1)))
        ts = targets[:n, start:].T.flatten()
        more = mapcache.method_maps(zoo_key, seed_pairs, models, group, xs, ts, dict(kwargs), False)
        for m in group:
            layers[m].extend(more[m].unflatten(1, (extra, n)).unbind(1))
    return {m: torch.stack(layers[m]) for m in methods}


def seed_maps(zoo_key: str, seed_pairs: Sequence[tuple[int, int]], models: Sequence[nn.Module],
              methods: Sequence[str], x: torch.Tensor, y: torch.Tensor, kwargs: Mapping[str, dict], n_seeds: int,
              true_maps: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Model 0's maps (S, N, H, W) of each stochastic method under ``n_seeds`` method seeds (the chapter's
    ``kwargs[m]["seed"]`` + s): seed 0 is the zoo's own (taken from ``true_maps``), the others go through the map
    cache as a zoo of model 0 alone."""
    out = {}
    for m in methods:
        base = dict(kwargs[m])
        first = int(base.get("seed", 0))
        maps = [true_maps[m][0]]
        for s in range(1, n_seeds):
            kw = {m: {**base, "seed": first + s}}
            maps.append(mapcache.method_maps(zoo_key, list(seed_pairs[:1]), list(models[:1]), [m], x, y, kw,
                                             False)[m][0])
        out[m] = torch.stack(maps)
    return out


@dataclass(frozen=True)
class Resolution:
    """Single-vs-single agreement per method at native resolution and pooled to one common grid of ``cell`` pixels,
    and the paired difference pooled − native (same models, images and bootstrap draws)."""

    cell: int
    native: dict[str, Interval]
    pooled: dict[str, Interval]
    gain: dict[str, Interval]
    native_cells: dict[str, int]

    def ranks(self, which: str) -> dict[str, int]:
        """Rank of each method (1 = most agreement) at ``"native"`` or ``"pooled"`` resolution."""
        return resolution.ranks({m: v.point for m, v in getattr(self, which).items()})

    def changes(self) -> list[tuple[str, int, int]]:
        """``[(method, native rank, pooled rank)]`` of the methods whose rank moves (:func:`resolution.rank_changes`)."""
        return resolution.rank_changes({m: v.point for m, v in self.native.items()},
                                       {m: v.point for m, v in self.pooled.items()})


def matched_resolution(true_maps: Mapping[str, torch.Tensor], x: torch.Tensor, kwargs: Mapping[str, dict],
                       n_boot: int, level: float, seed: int) -> Resolution:
    """Every method's maps (M, N, H, W) pooled to the coarsest method's patch grid, and the agreement of single
    models there against its native value."""
    methods = list(true_maps)
    cell = resolution.common_cell(methods, x, kwargs)
    opts = {"n_boot": n_boot, "level": level, "seed": seed}
    native, pooled, gain = {}, {}, {}
    for m in methods:
        p = resolution.pool(true_maps[m].float(), cell)
        native[m] = agreement.pairwise_interval(true_maps[m], **opts)
        pooled[m] = agreement.pairwise_interval(p, **opts)
        gain[m] = agreement.pairwise_difference(p, true_maps[m].float(), **opts)  # same models, images, draws
    return Resolution(cell, native, pooled, gain,
                      {m: resolution.method_cell(m, x, kwargs.get(m)) for m in methods})


def resolution_rows(res: Resolution) -> list[dict[str, str | int]]:
    """The matched-resolution table: per method (native order, most agreement first) its native patch, the
    single-vs-single agreement on both grids with intervals, pooled − native, and the two ranks."""
    native, pooled = res.ranks("native"), res.ranks("pooled")
    return [{"method": m, "patch of the method (px)": res.native_cells[m],
             "single vs single, native": f"{res.native[m]:.2f}",
             f"pooled to {res.cell}×{res.cell}": f"{res.pooled[m]:.2f}", "pooled − native": f"{res.gain[m]:.2f}",
             "rank native": native[m], "rank pooled": pooled[m]} for m in sorted(native, key=native.get)]


def resolution_numbers(res: Resolution) -> dict[str, str | int]:
    """Glue values: ``res_cell``, ``res_order_native``/``res_order_pooled`` (most agreement first),
    ``res_n_changed`` and ``res_changes`` (a sentence on where the ranking changes), ``res_rises`` (methods whose
    agreement rises with pooling, interval above 0)."""
    native, pooled = res.ranks("native"), res.ranks("pooled")
    changes = res.changes()
    moves = [f"{m} from {a} to {b}" for m, a, b in changes]
    if res.cell == 1:
        sentence = ("every method works on pixels here, so there is nothing to pool and the ranking stays as it is")
    elif not changes:
        sentence = (f"pooling to {res.cell}×{res.cell} pixels leaves the ranking as it is: every method keeps its "
                    f"rank")
    else:
        sentence = (f"pooling to {res.cell}×{res.cell} pixels changes the rank (1 = most agreement) of "
                    f"{len(changes)} of the {len(native)} methods: " + ", ".join(moves))
    rises = [m for m in sorted(native, key=native.get) if res.gain[m].low > 0]
    return {"res_cell": f"{res.cell}×{res.cell}", "res_order_native": ", ".join(sorted(native, key=native.get)),
            "res_order_pooled": ", ".join(sorted(pooled, key=pooled.get)), "res_n_changed": len(changes),
            "res_changes": sentence, "res_rises": ", ".join(rises) or "none",
            "res_top_pooled": min(pooled, key=pooled.get), "res_top_native": min(native, key=native.get)}


def least_separation(low: str, diffs: Mapping[str, Interval],
                     agree: Mapping[str, Mapping[str, Interval]]) -> str:
    """Exercise 2.1's answer: is the least agreeing method separated from the next lowest? From the paired
    differences other − lowest (:func:`helpers.evaluation.agreement.extreme_method`)."""
    if not diffs:
        return f"{low} is the only method in this run, so there is no other method to separate it from"
    nxt = min(diffs, key=lambda m: agree[m]["pairwise"].point)
    d = diffs[nxt]
    if d.low > 0:
        return (f"yes: the next lowest, {nxt}, lies above {low} by {d:.2f}, an interval of the paired difference "
                f"that excludes 0, so this run separates the two")
    return (f"no: the next lowest, {nxt}, differs from {low} by {d:.2f}, an interval of the paired difference "
            f"that contains 0, so this run cannot tell which of the two agrees least")
