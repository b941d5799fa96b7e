"""Chapter 3's tables and computed sentences on the SNR of saliency maps (Woerl, Disselhoff & Wand, CVPR 2023).

Every comparison in words is decided by an interval: a paired multi-bootstrap difference (:func:`helpers.snr.compare`)
where the two numbers come from the same models and images, else non-overlapping intervals (:func:`separated`), which
is the conservative choice for numbers from different zoos or different images.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from IPython.display import Markdown

from ..evaluation import agreement, intervals, resolution, snr
from . import coverage
from ..evaluation.intervals import Interval
from . import controls
from .controls import word

Stats = dict[str, dict[str, Interval]]


def method_stats(maps: Mapping[str, torch.Tensor], n_boot: int = 1000, level: float = 0.9, seed: int = 0,
                 n_draws: int = 20) -> Stats:
    """Per method: single-map SNR, mean pairwise correlation and split-half correlation (halves of M // 2 models),
    each with a multi-bootstrap interval over models and images."""
    out: Stats = {}
    for name, a in maps.items():
        g = snr.gram(a)  # once per method, for the SNR and the split-half
        out[name] = {"snr": snr.bootstrap_snr(g, n_boot=n_boot, level=level, seed=seed),
                     "pairwise": agreement.pairwise_interval(a, n_boot=n_boot, level=level, seed=seed),
                     "split_half": snr.split_half_intervals(g, [a.shape[0] // 2], n_draws=n_draws, n_boot=n_boot,
                                                            level=level, seed=seed)[0]}
    return out


def predicted_rho(snr_value: float) -> float:
    """The pairwise correlation that signal plus independent, equally large noise would give: SNR / (1 + SNR)."""
    return snr_value / (1 + snr_value)


def stats_table(stats: Stats, digits: int = 2) -> Markdown:
    """Markdown table: method | SNR | pairwise ρ | ρ predicted by the SNR | split-half ρ (intervals in brackets)."""
    spec = f".{digits}f"
    lines = ["| method | single-map SNR | pairwise ρ | SNR/(1+SNR) | split-half ρ (M/2 vs M/2) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, s in stats.items():
        lines.append(f"| `{name}` | {s['snr']:{spec}} | {s['pairwise']:{spec}} | "
                     f"{predicted_rho(s['snr'].point):{spec}} | {s['split_half']:{spec}} |")
    return Markdown("\n".join(lines))


def separated(a: Interval, b: Interval) -> bool:
    """Whether two intervals do not overlap (used for numbers from different zoos or image sets)."""
    return a.high < b.low or b.high < a.low


def extremes(stats: Stats, key: str = "snr") -> tuple[str, str]:
    """Names with the lowest and the highest point estimate of ``key``."""
    names = list(stats)
    points = [stats[n][key].point for n in names]
    return names[points.index(min(points))], names[points.index(max(points))]


def ranking_sentence(maps: Mapping[str, torch.Tensor], stats: Stats, n_boot: int = 1000, level: float = 0.9,
                     seed: int = 0) -> str:
    """Which method's single maps are noisiest and which cleanest, and whether the paired interval separates them."""
    low, high = extremes(stats)
    if low == high:
        return f"Only `{low}` was measured: its single-map SNR is {stats[low]['snr']}."
    diff = snr.compare(maps[high], maps[low], n_boot=n_boot, level=level, seed=seed)
    tail = intervals.verdict(diff, "so the two differ at this confidence level",
                       "so the two differ at this confidence level",
                       "so even these two cannot be told apart at this confidence level")
    return (f"The single-map SNR is lowest for `{low}` ({stats[low]['snr']}) and highest for `{high}` "
            f"({stats[high]['snr']}); the paired difference is {diff}, {tail}.")


def pair_sentence(maps: Mapping[str, torch.Tensor], a: str, b: str, n_boot: int = 1000, level: float = 0.9,
                  seed: int = 0) -> str:
    """"`a` is noisier than / less noisy than / not distinguishable from `b`", decided by the paired interval."""
    if a not in maps or b not in maps:
        return f"(`{a}` or `{b}` was not among this run's methods.)"
    diff = snr.compare(maps[a], maps[b], n_boot=n_boot, level=level, seed=seed)
    word = intervals.verdict(diff, "less noisy than", "noisier than", "not distinguishable from")
    return f"`{a}` is {word} `{b}` (SNR difference {diff})."


def shared_noise_check(maps: Mapping[str, torch.Tensor], n_boot: int = 1000, level: float = 0.9,
                       seed: int = 0) -> dict[str, str | int | float]:
    """Glue values of the shared-noise diagnostic (:mod:`helpers.evaluation.shared_noise`) on every method's maps,
    and its demonstration on the synthetic zoo of two clusters of seeds that share noise: there the old check
    (the pairwise correlation's interval contains SNR/(1+SNR)) passes although the SNR counts the shared noise as
    signal, and the diagnostic finds it. Built to be able to fail: the exchangeable controls stay below δ (tests)."""
    from ..evaluation import shared_noise

    n_models = next(iter(maps.values())).shape[0]
    if n_models < shared_noise.MIN_MODELS:
        result = (f"this zoo has {n_models} models and the diagnostic needs at least {shared_noise.MIN_MODELS} "
                  f"(with fewer, seeds that share no noise can pass the threshold), so it was not run here")
    else:
        gaps = {m: shared_noise.cluster_gap(v, seed=seed) for m, v in maps.items()}
        control = {m: shared_noise.cluster_gap(shared_noise.shuffled(v, seed), seed=seed) for m, v in maps.items()}
        flagged = [m for m, g in gaps.items() if shared_noise.verdict(g) == "shared noise"]
        top, worst = max(gaps, key=gaps.get), max(control, key=lambda k: abs(control[k]))
        result = (f"{len(gaps) - len(flagged)} of the {len(gaps)} methods show no shared noise; flagged: "
                  f"{', '.join(flagged) or 'none'} (largest gap: {top}, {gaps[top]:.3f}). With the models shuffled "
                  f"independently for every image (every map kept, any structure that follows a seed removed), the "
                  f"largest gap is {control[worst]:.3f} ({worst}), so the "
                  f"{'flags follow the seeds, not the maps' if abs(control[worst]) <= shared_noise.DELTA else 'diagnostic is not reliable on these maps'}")
    two = shared_noise.synthetic_zoo(clusters=2, shared=1.0, noise=1.0, seed=seed)
    two_snr = float(snr.energy_snr(two).mean())
    two_rho = agreement.pairwise_interval(two, n_boot=n_boot, level=level, seed=seed)
    old = "passes" if not two_rho.excludes(predicted_rho(two_snr)) else "fails"
    return {"shared_delta": shared_noise.DELTA, "shared_result": result, "two_gap": shared_noise.cluster_gap(two, seed=seed), "two_snr": two_snr, "two_snr_true": shared_noise.true_snr(1.0, 1.0),
            "two_old_check": old, "two_rho": f"{two_rho:.2f}", "two_predicted": predicted_rho(two_snr)}


def averaging_count(stats: Stats) -> tuple[int, int]:
    """(methods whose split-half ρ interval lies above the pairwise ρ interval, number of methods)."""
    up = sum(1 for s in stats.values() if s["split_half"].low > s["pairwise"].high)
    return up, len(stats)


def class_matrix(maps: Mapping[str, torch.Tensor], labels: torch.Tensor, num_classes: int, n_boot: int = 1000,
                 level: float = 0.9, seed: int = 0) -> dict[str, list[Interval]]:
    """Per method, the SNR of each class (its images only) with a multi-bootstrap interval."""
    return {name: snr.per_class_intervals(a, labels, num_classes, n_boot=n_boot, level=level, seed=seed)
            for name, a in maps.items()}


def class_sentence(intervals: Sequence[Interval], class_names: Sequence[str], method: str) -> str:
    """Lowest and highest class for one method, and whether their intervals overlap."""
    ok = [k for k, iv in enumerate(intervals) if iv.point == iv.point]  # classes with images
    lo = min(ok, key=lambda k: intervals[k].point)
    hi = max(ok, key=lambda k: intervals[k].point)
    sep = separated(intervals[lo], intervals[hi])
    return (f"For `{method}`, class {class_names[lo]} has the lowest SNR ({intervals[lo]}) and class "
            f"{class_names[hi]} the highest ({intervals[hi]}); " +
            ("their intervals do not overlap, so the classes do differ." if sep else
             "their intervals overlap, so this run cannot rank these classes."))


def zoo_comparison(stats: Mapping[str, Stats], method: str) -> str:
    """Which zoo (architecture or seed ablation) has the highest SNR for ``method``, and whether it is separated
    from every other zoo's interval."""
    snrs = {z: s[method]["snr"] for z, s in stats.items() if method in s}
    best = max(snrs, key=lambda z: snrs[z].point)
    worst = min(snrs, key=lambda z: snrs[z].point)
    clear = all(separated(snrs[best], iv) for z, iv in snrs.items() if z != best)
    return (f"`{method}`: highest SNR in `{best}` ({snrs[best]}), lowest in `{worst}` ({snrs[worst]}); the highest is "
            + ("separated from every other zoo." if clear else "not separated from every other zoo."))


def zoo_table(stats: Mapping[str, Stats], key: str = "snr", digits: int = 2) -> Markdown:
    """Methods × zoos (architectures or seed ablations) of one measure with intervals."""
    zoos = list(stats)
    methods = list(next(iter(stats.values())))
    lines = ["| method | " + " | ".join(f"`{z}`" for z in zoos) + " |", "| --- |" + " ---: |" * len(zoos)]
    for m in methods:
        lines.append(f"| `{m}` | " + " | ".join(format(stats[z][m][key], f".{digits}f") for z in zoos) + " |")
    return Markdown("\n".join(lines))


def ordered_pair_count(stats: Mapping[str, Stats], above: str, below: str) -> tuple[int, int]:
    """(methods whose SNR interval in zoo ``above`` lies entirely above that in zoo ``below``, methods)."""
    methods = list(stats[above])
    n = sum(1 for m in methods if stats[above][m]["snr"].low > stats[below][m]["snr"].high)
    return n, len(methods)


# --- the untrained control (issue "Every verdict can fail": reproducible is not the same as learned) -------------

CONTROL_LABELS = {"snr": "SNR", "pairwise": "pairwise ρ"}


def control_stats(trained: Mapping[str, torch.Tensor], untrained: Mapping[str, torch.Tensor],
                  stats: Stats, inputs: torch.Tensor, n_boot: int = 1000, level: float = 0.9,
                  seed: int = 0) -> dict[str, dict[str, Interval]]:
    """Per method, the trained zoo's SNR and pairwise ρ (from ``stats``), the untrained zoo's, their contrasts
    trained − untrained with paired intervals (images resampled once for both zoos, models independently per zoo:
    :func:`snr.contrast`), and how much of the trained seed-averaged map the input
    and the untrained mean map give (:func:`controls.mean_map_parts`)."""
    out: dict[str, dict[str, Interval]] = {}
    for m, a in trained.items():
        u = untrained[m]
        opts = {"n_boot": n_boot, "level": level, "seed": seed}
        parts = controls.mean_map_parts(a, u, inputs, n_boot, level, seed)
        out[m] = {"snr": stats[m]["snr"], "untrained_snr": snr.bootstrap_snr(u, **opts),
                  "snr_contrast": snr.contrast(a, u, **opts),
                  "pairwise": stats[m]["pairwise"], "untrained_pairwise": agreement.pairwise_interval(u, **opts),
                  "pairwise_contrast": snr.contrast(a, u, **opts, measure="pairwise"),
                  "input": parts["input"], "untrained": parts["untrained"],
                  "untrained_input": parts["untrained_input"]}
    return out


def by_contrast(ctl: Mapping[str, Mapping[str, Interval]], key: str = "snr_contrast") -> list[str]:
    """Methods by their contrast trained − untrained of ``key``, largest first."""
    return sorted(ctl, key=lambda m: -ctl[m][key].point)


def control_table(ctl: Mapping[str, Mapping[str, Interval]], snr_threshold: float,
                  rho_threshold: float) -> list[dict[str, str]]:
    """Rows (methods ranked by the SNR contrast): SNR trained, untrained, contrast and its verdict against
    ``snr_threshold``; the contrast of pairwise ρ and its verdict against ``rho_threshold``; the trained mean map's
    correlation with the input and with the untrained mean map."""
    return [{"method": m, "SNR: trained": f"{c['snr']:.2f}", "untrained": f"{c['untrained_snr']:.2f}",
             "trained − untrained": f"{c['snr_contrast']:.2f}", "verdict": word(c["snr_contrast"], snr_threshold),
             "pairwise ρ: trained − untrained": f"{c['pairwise_contrast']:.2f}",
             "verdict (ρ)": word(c["pairwise_contrast"], rho_threshold),
             "mean map vs input": f"{c['input']:.2f}", "mean map vs untrained mean map": f"{c['untrained']:.2f}"}
            for m, c in ((m, ctl[m]) for m in by_contrast(ctl))]


def _names(xs: Sequence[str]) -> str:
    return ", ".join(xs) if xs else "none"


def _range(ctl: Mapping[str, Mapping[str, Interval]], key: str) -> tuple[str, str]:
    lo = min(ctl, key=lambda m: ctl[m][key].point)
    hi = max(ctl, key=lambda m: ctl[m][key].point)
    return f"{ctl[lo][key]:.2f} ({lo})", f"{ctl[hi][key]:.2f} ({hi})"


def control_numbers(ctl: Mapping[str, Mapping[str, Interval]], snr_threshold: float,
                    rho_threshold: float) -> dict[str, str | int]:
    """Glue values of the control (keys ``untrained_…``): the thresholds, the ranking by SNR contrast, the methods
    whose SNR (and pairwise ρ) is learned / not learned / left open, the ranges of the untrained SNR and of the
    mean maps' correlations, and where the method with the highest trained SNR ranks by the contrast."""
    order = by_contrast(ctl)
    out: dict[str, str | int] = {"untrained_snr_threshold": f"{snr_threshold:.2f}",
                                 "untrained_rho_threshold": f"{rho_threshold:.2f}",
                                 "untrained_snr_order": ", ".join(order)}
    for key, thr, stat in (("snr_contrast", snr_threshold, "snr"), ("pairwise_contrast", rho_threshold, "rho")):
        for w in ("learned", "not learned", "left open"):
            ms = [m for m in order if word(ctl[m][key], thr) == w]
            out[f"untrained_{stat}_{w.replace(' ', '_')}"] = _names(ms)
            out[f"untrained_n_{stat}_{w.replace(' ', '_')}"] = len(ms)
    for key, name in (("untrained_snr", "snr"), ("input", "corr_input"), ("untrained", "corr_untrained"),
                      ("untrained_input", "corr_untrained_input")):
        out[f"untrained_{name}_lo"], out[f"untrained_{name}_hi"] = _range(ctl, key)
    best = max(ctl, key=lambda m: ctl[m]["snr"].point)
    moves = resolution.rank_changes({m: c["snr"].point for m, c in ctl.items()},
                                    {m: c["snr_contrast"].point for m, c in ctl.items()})
    out["untrained_n_rank_moves"] = len(moves)
    out.update(untrained_top=order[0], untrained_top_iv=f"{ctl[order[0]]['snr_contrast']:.2f}",
               untrained_bottom=order[-1], untrained_bottom_iv=f"{ctl[order[-1]]['snr_contrast']:.2f}",
               untrained_best_trained=best, untrained_best_trained_rank=order.index(best) + 1,
               untrained_best_trained_iv=f"{ctl[best]['untrained_snr']:.2f}")
    return out


def class_contrast(trained: Mapping[str, torch.Tensor], untrained: Mapping[str, torch.Tensor],
                   labels: torch.Tensor, num_classes: int, n_boot: int = 1000, level: float = 0.9,
                   seed: int = 0) -> dict[str, list[Interval]]:
    """Per method and class, the SNR contrast trained − untrained on that class's images (:func:`snr.contrast`);
    NaN for a class without images."""
    labels = labels.detach().cpu()
    out: dict[str, list[Interval]] = {}
    for m, a in trained.items():
        ga, gu = snr.gram(a), snr.gram(untrained[m])
        out[m] = [snr.contrast(ga[labels == c], gu[labels == c], n_boot, level, seed) if (labels == c).any()
                  else Interval(math.nan, math.nan, math.nan, level) for c in range(num_classes)]
    return out


def class_contrast_numbers(cc: Mapping[str, Sequence[Interval]], threshold: float) -> dict[str, str]:
    """Glue: per method, in how many classes the SNR contrast is learned / not learned / left open."""
    parts = []
    for m, ivs in cc.items():
        words = [word(iv, threshold) for iv in ivs if iv.point == iv.point]
        parts.append(f"{m}: learned in {words.count('learned')}, not learned in {words.count('not learned')}, "
                     f"left open in {words.count('left open')} of {len(words)} classes")
    return {"untrained_class_summary": "; ".join(parts)}


# --- matched resolution -------------------------------------------------------------------------------------------

def coarsest(methods: Sequence[str], inputs: torch.Tensor,
             kwargs: Mapping[str, Mapping[str, object]] | None = None) -> tuple[str, int]:
    """The method with the coarsest patch grid on ``inputs`` and its patch side (:func:`resolution.common_cell`)."""
    kwargs = kwargs or {}
    cell = resolution.common_cell(methods, inputs, kwargs)
    return next(m for m in methods if resolution.method_cell(m, inputs, kwargs.get(m)) == cell), cell


def pooled_stats(maps: Mapping[str, torch.Tensor], cell: int, n_boot: int = 1000, level: float = 0.9,
                 seed: int = 0) -> tuple[dict[str, torch.Tensor], Stats]:
    """Every method's maps pooled to ``cell`` × ``cell`` blocks (:func:`resolution.pool`) and their SNR and
    pairwise ρ with the same multi-bootstrap intervals as at native resolution."""
    pooled = {m: resolution.pool(a, cell) for m, a in maps.items()}
    opts = {"n_boot": n_boot, "level": level, "seed": seed}
    return pooled, {m: {"snr": snr.bootstrap_snr(a, **opts), "pairwise": agreement.pairwise_interval(a, **opts)}
                    for m, a in pooled.items()}


def _ranks(stats: Stats, key: str = "snr") -> dict[str, int]:
    return resolution.ranks({m: s[key].point for m, s in stats.items()})


def resolution_table(native: Stats, pooled: Stats) -> list[dict[str, str | int]]:
    """Rows: per method (native SNR order), SNR and pairwise ρ at native resolution and pooled, and both ranks."""
    rn, rp = _ranks(native), _ranks(pooled)
    return [{"method": m, "SNR native": f"{native[m]['snr']:.2f}", "SNR pooled": f"{pooled[m]['snr']:.2f}",
             "rank native": rn[m], "rank pooled": rp[m], "pairwise ρ native": f"{native[m]['pairwise']:.2f}",
             "pairwise ρ pooled": f"{pooled[m]['pairwise']:.2f}"} for m in sorted(rn, key=rn.get)]


def swapped_pairs(native: Stats, pooled: Stats) -> list[tuple[str, str]]:
    """Pairs (a, b) with a above b by native SNR and below b pooled."""
    out, ms = [], list(native)
    for i, a in enumerate(ms):
        for b in ms[i + 1:]:
            hi, lo = (a, b) if native[a]["snr"].point >= native[b]["snr"].point else (b, a)
            if pooled[hi]["snr"].point < pooled[lo]["snr"].point:
                out.append((hi, lo))
    return out


def resolution_sentence(native_maps: Mapping[str, torch.Tensor], pooled_maps: Mapping[str, torch.Tensor],
                        native: Stats, pooled: Stats, cell: int, coarsest: str, n_boot: int = 1000,
                        level: float = 0.9, seed: int = 0) -> dict[str, str | int]:
    """Glue: where the SNR ranking changes between native and pooled maps (:func:`resolution.rank_changes`), and
    for every pair of methods whose order swaps, whether the swap is beyond the intervals: the paired difference
    (:func:`snr.compare`, same models and images) excludes 0 at both resolutions, with opposite signs."""
    changes = resolution.rank_changes({m: s["snr"].point for m, s in native.items()},
                                      {m: s["snr"].point for m, s in pooled.items()})
    pairs = swapped_pairs(native, pooled)
    firm = []
    for a, b in pairs:
        d_native = snr.compare(native_maps[a], native_maps[b], n_boot, level, seed)
        d_pooled = snr.compare(pooled_maps[a], pooled_maps[b], n_boot, level, seed)
        if d_native.low > 0 and d_pooled.high < 0:
            firm.append(f"{a} above {b} natively ({d_native:.2f}), below pooled ({d_pooled:.2f})")
    grid = f"Pooled to the grid of {cell} × {cell}-pixel blocks of {coarsest}"
    if not changes:
        text = f"{grid}, no method changes its rank by SNR."
    else:
        moves = ", ".join(f"{m} {r0} → {r1}" for m, r0, r1 in changes)
        n_pairs = f"{len(pairs)} pair{'' if len(pairs) == 1 else 's'} of methods"
        text = (f"{grid}, {len(changes)} of the {len(native)} methods change their rank by SNR ({moves}). The "
                f"order changes for {n_pairs}, "
                + (f"for {len(firm)} of them beyond the intervals (the paired difference excludes 0 at both "
                   f"resolutions, with opposite signs): {'; '.join(firm)}." if firm else
                   "for none of them beyond the intervals (no pair's paired difference excludes 0 at both "
                   "resolutions with opposite signs)."))
    return {"res_cell": cell, "res_coarsest": coarsest, "res_n_changes": len(changes), "res_n_swaps": len(pairs),
            "res_n_firm": len(firm), "res_sentence": text}


# --- calibration of the 10-model comparisons ---------------------------------------------------------------------

MIN_CAL_SIMS = coverage.MIN_CAL_SIMS


def design_calibration(name: str, n_models: int, n_images: int, n_sim: int = 200, level: float = 0.9,
                       seed: int = 0) -> dict[str, str]:
    """:func:`helpers.chapters.coverage.design_calibration` for the agreement of this chapter's small zoos."""
    return coverage.design_calibration(name, "pairwise", n_models, n_images, n_sim, level, seed)
