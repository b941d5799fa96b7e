"""Chapter 3's tables and computed sentences on the SNR of saliency maps (Woerl, Disselhoff & Wand, CVPR 2023).

Every comparison in words is decided by an interval: a paired multi-bootstrap difference (:func:`helpers.snr.compare`)
where the two numbers come from the same models and images, else non-overlapping intervals (:func:`separated`), which
is the conservative choice for numbers from different zoos or different images.
"""
from __future__ import annotations

from typing import Mapping, Sequence
import torch
from IPython.display import Markdown

from ..evaluation.intervals import Interval
from ..evaluation import agreement
from ..evaluation import intervals
from ..evaluation import snr


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
