"""Chapter 5's glued values and sentences: CLEAR statistics (Kumar, Wong & Taylor, CVPRW 2017) of single and
marginalized maps, their differences with intervals, and the prose that names them.
"""
from __future__ import annotations

from typing import Mapping, Sequence
import torch
from IPython.display import Markdown

from ..attribution.clear import NULLS
from ..book import report
from ..evaluation.clear_stats import (EFFECT, ClearStats, NullComparison, Summary, ZooStats, agreement_with_nulls,
                                      compare_with_nulls, difference, groups, interval_text, model_image_interval,
                                      reading, summarize)
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


NULL_KEYS: dict[str, str] = {"permuted": "perm", "shared": "shared"}


ESTIMATES: list[tuple[str, str]] = [  # (group, metric) of the null tables: every estimate the prose cites
    ("all", "top: predicted"), ("confident correct", "top: predicted"), ("unconfident correct", "top: predicted"),
    ("wrong", "top: predicted"), ("wrong", "top: runner-up"), ("wrong", "runner-up is true"),
    ("confident correct", "pixels: predicted"), ("confident correct", "mass: predicted"),
    ("unconfident correct", "mass: predicted"), ("confident correct", "negative top: predicted"),
    ("all", "strongest map: predicted"), ("all", "smoothness")]


def image_values(labels: torch.Tensor, n_classes: int) -> dict[str, int]:
    """Glue values of the images behind the statistics: ``n_images``, the classes among them and the fewest
    images of any class (``stat_classes``, ``stat_min_per_class``)."""
    counts = torch.bincount(labels.cpu(), minlength=n_classes)
    return {"n_images": int(labels.numel()), "stat_classes": int((counts > 0).sum()),
            "stat_min_per_class": int(counts.min())}


def summaries_of(zs: Mapping[str, ZooStats], threshold: float) -> dict[str, Summary]:
    """:func:`summarize` of every reading of :func:`zoo_stats` (CLEAR and its nulls), split by prediction group."""
    return {r: summarize(z, by=groups(threshold)) for r, z in zs.items()}


def nulls_of(summaries: Mapping[str, object], start: str) -> dict[str, object]:
    """The nulls' entries of ``summaries`` (or of ``zs``) for ``start``: ``{"permuted": …, "shared": …}``."""
    return {n: summaries[reading(start, n)] for n in NULLS if reading(start, n) in summaries}


def verdict_text(c: NullComparison, start: str) -> str:
    """The sentence a :class:`NullComparison` supports, with its threshold."""
    pts = f"{100 * c.threshold:.0f} points"
    if c.verdict == "maps":
        return f"the maps add it (more than {pts} above both nulls over the whole interval)"
    if c.verdict == "below":
        return f"the maps lower it (more than {pts} below both nulls over the whole interval)"
    if c.verdict == "none":
        return "no maps in this group"
    if start == "response":
        return f"a property of the logits, not a finding about CLEAR (no excess of more than {pts} over the nulls)"
    return (f"not a finding about CLEAR's maps (no excess of more than {pts} over maps that do not belong to their "
            f"classes)")


SHORT_VERDICTS = {"maps": "the maps add it", "below": "the maps lower it", "nulls": "no excess: not a finding",
                  "none": "–"}


def null_values(summaries: Mapping[str, Summary], zs: Mapping[str, ZooStats],
                prefixes: Mapping[str, str] | None = None, threshold: float = EFFECT) -> dict[str, str | float]:
    """Glue values of the nulls of every estimate: ``<p>null_perm_<key>`` / ``<p>null_shared_<key>`` (the nulls),
    ``<p>excess_<key>`` (CLEAR − the larger null, paired), ``<p>excess_perm_<key>`` / ``<p>excess_shared_<key>``
    (CLEAR − each null) and ``<p>verdict_<key>`` (:func:`verdict_text`), with ``<key>`` as in :func:`key` without
    its prefix (``s_conf_top_pred``); the same for the seed agreement (``<key>`` = ``agreement``); ``effect``: the
    threshold."""
    prefixes = {"response": "r_", "unit": "u_"} if prefixes is None else prefixes
    out: dict[str, str | float] = {"effect": threshold, "effect_text": f"{100 * threshold:.0f} points"}
    for s, p in prefixes.items():
        nulls = nulls_of(summaries, s)
        if not nulls:
            continue
        found = [(key(*k), compare_with_nulls(summaries[s], nulls, k, threshold)) for k in summaries[s].points]
        found.append(("agreement", agreement_with_nulls(zs[s], nulls_of(zs, s), threshold=threshold)))
        for name, c in found:
            for n, iv in c.nulls.items():
                out[f"{p}null_{NULL_KEYS[n]}_{name}"] = interval_text(iv)
                out[f"{p}excess_{NULL_KEYS[n]}_{name}"] = points_text(c.over[n])
            out[f"{p}excess_{name}"] = points_text(c.excess)
            out[f"{p}verdict_{name}"] = verdict_text(c, s)
    return out


def null_rows(summaries: Mapping[str, Summary], zs: Mapping[str, ZooStats], start: str,
              estimates: Sequence[tuple[str, str]] | None = None, threshold: float = EFFECT) -> list[dict[str, str]]:
    """Rows of the chapter's null table for one start: per (group, metric) of ``estimates`` and setting, CLEAR's
    value, the two nulls, the excess over the larger null and its verdict; last the seed agreement (default
    ``estimates``: :data:`ESTIMATES`)."""
    nulls = nulls_of(summaries, start)
    rows = []
    for g, m in ESTIMATES if estimates is None else estimates:
        for s in ("single", "marginalized"):
            rows.append((f"{m} ({g})", s, compare_with_nulls(summaries[start], nulls, (s, g, m), threshold)))
    rows.append(("seed agreement of the dominant class", "single",
                 agreement_with_nulls(zs[start], nulls_of(zs, start), threshold=threshold)))
    return [{"statistic": label, "maps of": setting, "CLEAR": interval_text(c.value),
             **{f"{n} null": interval_text(c.nulls[n]) for n in nulls},
             "excess over the larger null": points_text(c.excess), "verdict": SHORT_VERDICTS[c.verdict]}
            for label, setting, c in rows]


def maps_add(summaries: Mapping[str, Summary], start: str, estimates: Sequence[tuple[str, str]] | None = None,
             threshold: float = EFFECT) -> dict[str, str | int]:
    """How many of ``estimates`` (group, metric, default :data:`ESTIMATES`; single and marginalized) the maps add
    to (verdict "maps"), and which, as glue values ``<s>_n_maps_add``, ``<s>_n_estimates`` and
    ``<s>_maps_add_list``."""
    nulls = nulls_of(summaries, start)
    estimates = ESTIMATES if estimates is None else estimates
    hits = [f"{m} ({g}, {s})" for g, m in estimates for s in ("single", "marginalized")
            if compare_with_nulls(summaries[start], nulls, (s, g, m), threshold).verdict == "maps"]
    p = start[0]
    return {f"{p}_n_maps_add": len(hits), f"{p}_n_estimates": 2 * len(estimates),
            f"{p}_maps_add_list": "; ".join(hits) if hits else "none of them"}


def null_table(summaries: Mapping[str, Summary], zs: Mapping[str, ZooStats], start: str,
               threshold: float = EFFECT) -> Markdown:
    """The chapter's table of :func:`null_rows` for ``start`` with its caption (``report.table``)."""
    rows = null_rows(summaries, zs, start, threshold=threshold)
    n = int(zs[start].marginalized.pred.numel())
    caption = (f"**{start.capitalize()} start**, {n} test images, {summaries[start].level:.0%} multi-bootstrap "
               f"intervals over models and images. Excess: CLEAR minus the larger null, replicate by replicate (same "
               f"draws). The maps add a statistic only where the excess exceeds {100 * threshold:.0f} points over "
               f"its whole interval.")
    return Markdown(caption + "\n\n" + report.table(rows).data)
