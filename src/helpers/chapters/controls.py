"""The untrained control beside the headline statistics of chapters 1 and 2 (issue "Every verdict can fail").

Reproducible is not the same as learned: maps of networks at their initial weights can agree with each other, and
look like the input, because architecture and input alone shape them. Every agreement statistic is shown for the
trained zoo and for its untrained control (the same architecture and init seeds, nothing trained:
``ZooSpec.as_control("untrained")``), with the contrast trained − untrained and its paired interval
(:func:`helpers.evaluation.agreement.contrast`: images resampled once for both zoos, models independently per zoo).
A contrast counts as **learned** where its whole interval lies above ``threshold``, as **not learned** where it lies
below, and is **left open** where it contains the threshold. Glue keys of control numbers start with ``untrained_``.
"""
from __future__ import annotations

from typing import Mapping, Sequence
import torch

from ..evaluation import agreement
from ..evaluation.intervals import Interval


LABELS = {"pairwise": "single vs single", "single_vs_rest": "single vs the others", "split_half": "split-half",
          "gain": "split-half − single vs single"}


def word(diff: Interval, threshold: float) -> str:
    """"learned", "not learned" or "left open": where the contrast's interval lies against ``threshold``."""
    if diff.low > threshold:
        return "learned"
    if diff.high < threshold:
        return "not learned"
    return "left open"


def verdict(diff: Interval, threshold: float) -> str:
    """The sentence for one contrast (trained − untrained), naming its threshold."""
    w = word(diff, threshold)
    if w == "learned":
        return (f"above {threshold:.2f} over its whole interval: the trained zoo reproduces more than the "
                f"untrained one, so training, not architecture and input alone, makes this agreement")
    if w == "not learned":
        return (f"below {threshold:.2f} over its whole interval: the untrained zoo reproduces about as much or more, "
                f"so this agreement does not show what the networks learned")
    return f"an interval that contains {threshold:.2f}: whether training adds to this agreement is left open"


def compare(trained: torch.Tensor, untrained: torch.Tensor, n_boot: int, level: float,
            seed: int) -> tuple[dict[str, Interval], dict[str, Interval], dict[str, Interval]]:
    """Agreement of the trained and of the untrained zoo's maps (M, N, H, W) of the same images, and their
    contrast: ``(trained, untrained, trained − untrained)``, each ``{statistic: Interval}``."""
    opts = dict(n_boot=n_boot, level=level, seed=seed)
    return (agreement.agreement(trained, **opts), agreement.agreement(untrained, **opts),
            agreement.contrast(trained, untrained, **opts))


def rows(trained: Mapping[str, Interval], untrained: Mapping[str, Interval], diff: Mapping[str, Interval],
         threshold: float, stats: Sequence[str] = tuple(LABELS)) -> list[dict[str, str]]:
    """Table rows: per statistic the trained zoo, the untrained zoo, the contrast and its verdict."""
    return [{"measure": LABELS[k], "trained": f"{trained[k]:.2f}", "untrained": f"{untrained[k]:.2f}",
             "trained − untrained": f"{diff[k]:.2f}", "verdict": word(diff[k], threshold)} for k in stats]


def numbers(untrained: Mapping[str, Interval], diff: Mapping[str, Interval], threshold: float,
            prefix: str = "untrained_") -> dict[str, str]:
    """Glue values: ``untrained_agree_<stat>``, ``untrained_contrast_<stat>`` and ``untrained_verdict_<stat>``."""
    out = {f"{prefix}threshold": f"{threshold:.2f}"}
    for k in diff:
        out[f"{prefix}agree_{k}"] = f"{untrained[k]:.2f}"
        out[f"{prefix}contrast_{k}"] = f"{diff[k]:.2f}"
        out[f"{prefix}verdict_{k}"] = verdict(diff[k], threshold)
    return out


def image_reference(inputs: torch.Tensor) -> torch.Tensor:
    """The input images as (N, H, W) references for :func:`agreement.mean_map_correlation` (channels summed)."""
    return inputs.detach().float().sum(1).cpu()


def mean_map_parts(trained: torch.Tensor, untrained: torch.Tensor, inputs: torch.Tensor, n_boot: int,
                   level: float, seed: int) -> dict[str, Interval]:
    """How much of the trained zoo's seed-averaged map architecture and input alone give: its correlation with the
    input image (``input``), with the untrained zoo's mean map (``untrained``), and the untrained mean map's own
    correlation with the input (``untrained_input``); each averaged over images, interval over images."""
    ref = image_reference(inputs)
    opts = dict(n_boot=n_boot, level=level, seed=seed)
    return {"input": agreement.mean_map_correlation(trained, ref, **opts),
            "untrained": agreement.mean_map_correlation(trained, untrained.mean(0).cpu(), **opts),
            "untrained_input": agreement.mean_map_correlation(untrained, ref, **opts)}


def method_table(agree: Mapping[str, Mapping[str, Interval]], un: Mapping[str, Mapping[str, Interval]],
                 diff: Mapping[str, Mapping[str, Interval]], parts: Mapping[str, Mapping[str, Interval]],
                 threshold: float) -> list[dict[str, str]]:
    """Chapter 2's control table, methods ranked by the contrast of single-vs-single agreement (largest first)."""
    out = []
    for m in ranked(diff):
        out.append({"method": m, "single vs single: trained": f"{agree[m]['pairwise']:.2f}",
                    "untrained": f"{un[m]['pairwise']:.2f}", "trained − untrained": f"{diff[m]['pairwise']:.2f}",
                    "verdict": word(diff[m]["pairwise"], threshold),
                    "averaging gain: trained − untrained": f"{diff[m]['gain']:.2f}",
                    "mean map vs input": f"{parts[m]['input']:.2f}",
                    "mean map vs untrained mean map": f"{parts[m]['untrained']:.2f}"})
    return out


def ranked(diff: Mapping[str, Mapping[str, Interval]], stat: str = "pairwise") -> list[str]:
    """Methods by their contrast (trained − untrained) of ``stat``, largest first."""
    return sorted(diff, key=lambda m: -diff[m][stat].point)


def _names(xs: Sequence[str]) -> str:
    return ", ".join(xs) if xs else "none"


def method_numbers(diff: Mapping[str, Mapping[str, Interval]], parts: Mapping[str, Mapping[str, Interval]],
                   threshold: float) -> dict[str, str | int]:
    """Chapter 2's glue values of the control: the ranking by contrast, the methods whose agreement is learned,
    not learned or left open (single vs single, and the averaging gain), and the range of the mean maps'
    correlations with the input and with the untrained mean map."""
    order = ranked(diff)
    out: dict[str, str | int] = {"untrained_threshold": f"{threshold:.2f}", "untrained_order": ", ".join(order)}
    for stat in ("pairwise", "gain"):
        for w in ("learned", "not learned", "left open"):
            ms = [m for m in order if word(diff[m][stat], threshold) == w]
            key = w.replace(" ", "_")
            out[f"untrained_{stat}_{key}"] = _names(ms)
            out[f"untrained_n_{stat}_{key}"] = len(ms)
    for part in ("input", "untrained"):
        lo = min(parts, key=lambda m: parts[m][part].point)
        hi = max(parts, key=lambda m: parts[m][part].point)
        out[f"untrained_corr_{part}_lo"] = f"{parts[lo][part]:.2f} ({lo})"
        out[f"untrained_corr_{part}_hi"] = f"{parts[hi][part]:.2f} ({hi})"
    top = order[0]
    out.update(untrained_top=top, untrained_top_iv=f"{diff[top]['pairwise']:.2f}", untrained_bottom=order[-1],
               untrained_bottom_iv=f"{diff[order[-1]]['pairwise']:.2f}")
    return out


def agreement_rows(agree: Mapping[str, Interval], stats: Sequence[str] = tuple(LABELS)) -> list[dict[str, str]]:
    """Chapter 1's agreement table: one row per statistic of :func:`helpers.evaluation.agreement.agreement`, named
    as in the prose (:data:`LABELS`: "single vs single", "single vs the others", "split-half", …), with its
    estimate and interval."""
    return [{"measure": LABELS[k], "estimate": f"{agree[k].point:.2f}", "low": f"{agree[k].low:.2f}",
             "high": f"{agree[k].high:.2f}"} for k in stats if k in agree]
