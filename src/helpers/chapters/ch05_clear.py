"""Chapter 5's glued values and sentences: CLEAR statistics (Kumar, Wong & Taylor, CVPRW 2017) of single and
marginalized maps, their differences with intervals, and the prose that names them.
"""
from __future__ import annotations

from typing import Mapping
import torch

from ..evaluation.clear_stats import ClearStats, Summary, ZooStats, difference, interval_text, model_image_interval
from ..evaluation.intervals import Interval, verdict


METRIC_KEYS: dict[str, str] = {
    "pixels: predicted": "pix_pred", "mass: predicted": "mass_pred", "mass: true": "mass_true",
    "mass: runner-up": "mass_second", "top: predicted": "top_pred", "top: true": "top_true",
    "top: runner-up": "top_second", "negative top: predicted": "negtop_pred", "runner-up is true": "second_true",
    "strongest map: predicted": "strong_pred", "smoothness": "smooth"}


GROUP_KEYS: dict[str, str] = {"all": "all", "correct": "ok", "wrong": "bad", "confident correct": "conf",
                              "unconfident correct": "unconf"}


def key(setting: str, group: str, metric: str | None = None, prefix: str = "") -> str:
    """The glue key of an estimate: ``key("single", "wrong", "top: runner-up")`` -> ``"s_bad_top_second"``
    (``metric=None``: the number of maps, ``"s_bad_n"``)."""
    tail = "n" if metric is None else METRIC_KEYS[metric]
    return f"{prefix}{setting[0]}_{GROUP_KEYS[group]}_{tail}"


def prose_values(summary: Summary, prefix: str = "") -> dict[str, str | int]:
    """Every estimate of ``summary`` as interval text and every group size, under :func:`key` names (for glue)."""
    out: dict[str, str | int] = {key(s, g, prefix=prefix): n for (s, g), n in summary.counts.items()}
    out.update({key(s, g, m, prefix): interval_text(summary.interval(s, g, m)) for (s, g, m) in summary.points})
    return out


def points_text(diff: Interval) -> str:
    """A difference of two shares in percentage points: ``"+1.8 points [+0.9, +2.7]"``."""
    if diff.point != diff.point:
        return "no difference can be computed"
    if diff.low != diff.low:
        return f"{100 * diff.point:+.1f} points"
    return f"{100 * diff.point:+.1f} points [{100 * diff.low:+.1f}, {100 * diff.high:+.1f}]"


def contrast(diff: Interval, higher: str = "higher", lower: str = "lower",
             same: str = "no clear difference") -> str:
    """The difference with the word it supports (:func:`helpers.intervals.verdict`: ``higher`` only if the interval
    lies above 0): ``"+1.8 points [+0.9, +2.7] (higher)"``."""
    if diff.point != diff.point:
        return "not computable (a group has no maps)"
    return f"{points_text(diff)} ({verdict(diff, higher, lower, same)})"


def comparisons(summary: Summary, prefix: str = "") -> dict[str, str]:
    """Phrases for the prose, each a paired difference with its verdict (:func:`contrast`):

    - ``d_<group>_<metric>``: marginalized − single ("a clear rise" / "a clear drop" / "no clear change");
    - ``<s|m>_<group>_second_vs_pred_top`` / ``_mass``: runner-up − predicted class, within single or marginalized
      maps ("the runner-up more often" / "the predicted class more often" / "no clear difference")."""
    out = {}
    for (s, g, m) in summary.points:
        if s == "single":
            out[f"{prefix}d_{GROUP_KEYS[g]}_{METRIC_KEYS[m]}"] = contrast(
                difference(summary, (s, g, m), None, ("marginalized", g, m)), "a clear rise", "a clear drop",
                "no clear change")
    for (s, g) in summary.counts:
        for what in ("top", "mass"):
            if (s, g, f"{what}: predicted") in summary.points and (s, g, f"{what}: runner-up") in summary.points:
                out[f"{prefix}{s[0]}_{GROUP_KEYS[g]}_second_vs_pred_{what}"] = contrast(
                    difference(summary, (s, g, f"{what}: predicted"), None, (s, g, f"{what}: runner-up")),
                    "the runner-up more often" if what == "top" else "the runner-up holds more",
                    "the predicted class more often" if what == "top" else "the predicted class holds more",
                    "no clear difference")
    return out


def reading_comparisons(unit: Summary, response: Summary, prefix: str = "ur_") -> dict[str, str]:
    """Response start minus unit start for every estimate both summaries hold (same multi-bootstrap draws, so the
    difference is paired): ``ur_<s>_<group>_<metric>`` -> ``"+48.0 points [+44.1, +51.2] (higher)"``."""
    return {f"{prefix}{s[0]}_{GROUP_KEYS[g]}_{METRIC_KEYS[m]}": contrast(
        difference(unit, (s, g, m), response, (s, g, m)), "higher with the response start",
        "lower with the response start", "no clear difference") for (s, g, m) in unit.points if (s, g, m) in response.points}


def shown_values(stats: ClearStats) -> dict[str, float | int | str]:
    """Glue values for the shown images' marginalized maps (``stats`` (N,)): how many, the largest share of any
    image's positive mass, whether that gives an image to one class, and how often the top class is not the
    ensemble's prediction."""
    largest = float(stats.shares.amax(-1).max()) if stats.shares.numel() else float("nan")
    return {"shown_n": int(stats.pred.numel()), "shown_max_share": largest,
            "shown_one_class": ("the marginalized map gives none of them to one class" if not largest >= 0.5
                                else "the marginalized map can give an image largely to one class"),
            "shown_top_not_pred": int((stats.top != stats.pred).sum())}


def glue_values(summaries: Mapping[str, Summary], zs: Mapping[str, ZooStats], class_corr: torch.Tensor,
                prefixes: Mapping[str, str] | None = None) -> dict[str, float | int | str]:
    """Everything chapter 5's prose cites from the statistics, for ``report.glue_all``: per reading (prefix ``r_`` for
    the response start, ``u_`` for the unit start) every estimate (:func:`prose_values`), the single-vs-marginalized
    phrases (:func:`comparisons`), the seed agreement, the disagreement of the two marginalizations; the paired
    response − unit phrases (:func:`reading_comparisons`, prefix ``ur_``) with a verdict sentence; the class
    correlation of the unit-start maps with the words it supports; the interval level and the number of images."""
    prefixes = {"response": "r_", "unit": "u_"} if prefixes is None else prefixes
    out: dict[str, float | int | str] = {}
    for s, p in prefixes.items():
        out.update(prose_values(summaries[s], p))
        out.update(comparisons(summaries[s], p))
        out[f"{p}agreement"] = interval_text(model_image_interval(zs[s].agreement, zs[s]))
        out[f"{p}how"] = float(torch.nanmean(zs[s].how_disagreement.double()))
    if {"unit", "response"} <= set(summaries):
        out.update(reading_comparisons(summaries["unit"], summaries["response"]))
        key_ = ("single", "confident correct", "top: predicted")
        if key_ in summaries["unit"].points:
            diff = difference(summaries["unit"], key_, summaries["response"])
            out["ur_conf_sentence"] = "This run has no confident correct maps to compare the two starts on" \
                if diff.point != diff.point else verdict(
                diff,
                "Starting from the response makes the predicted class the top class of confident correct maps more "
                "often than the unit start does",
                "Starting from the response makes the predicted class the top class of confident correct maps less "
                "often than the unit start does",
                "Where the back-projection starts does not clearly change how often the predicted class is the top "
                "class of confident correct maps")
    first = next(iter(zs.values()))
    corr = model_image_interval(class_corr, first)
    out.update({"class_corr": interval_text(corr, pct=False),
                "class_corr_words": ("the maps look alike, and small differences decide the argmax" if corr.low > 0.5
                                     else "the maps are not alike across classes"),
                "level": next(iter(summaries.values())).level, "n_stats_images": int(first.marginalized.pred.numel()),
                "chance": 1 / first.marginalized.shares.shape[-1]})
    return out
