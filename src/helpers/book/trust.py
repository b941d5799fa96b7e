"""How far to trust the verdicts: every chapter's design under a profile (its statistic, M models, N images and
the interval procedure the chapter uses), simulated by :mod:`helpers.evaluation.calibration` with that interval and
with the other one, and checked: a design the book uses fails the page (and the build) when its own interval
covers less than :data:`~helpers.evaluation.calibration.MIN_COVERAGE` or calls more than
:data:`~helpers.evaluation.calibration.MAX_FALSE` null differences real.

``python -m helpers trust --profile default`` prints the table; the page ``09_how_far_to_trust`` shows it.

:data:`DESIGNS` is the one table to edit when a chapter changes its sizes' parameters or its interval: one
:class:`Entry` per interval family of a chapter. Its sizes are parameter names of the chapter (read from the
profile), optionally scaled: ``"n_images"``, ``"n_per_class*10"`` (ten classes), ``"n_models/2"`` (half the zoo).
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..evaluation.calibration import INTERVALS, Calibration, Design, check, simulate
from .profiles import (
    chapter_parameters,
    declared_parameters,
    find_chapters,
    load_profile,
    project_root,
)


@dataclass(frozen=True)
class Entry:
    """One design of a chapter: ``statistic`` ("pairwise" or "mean") over ``models`` × ``images`` (parameter
    names, optionally ``*k`` or ``/k``) with the chapter's ``interval`` ("bootstrap" or "jackknife-t")."""

    chapter: str
    what: str
    statistic: str
    models: str
    images: str
    interval: str = "bootstrap"


DESIGNS: list[Entry] = [
    Entry("01", "agreement between models", "pairwise", "n_models", "n_images"),
    Entry("02", "agreement between models, per method", "pairwise", "n_models", "n_images"),
    Entry("03", "agreement per method (SNR tables)", "pairwise", "n_models", "n_per_class*10"),
    Entry("03", "architecture and ablation zoos", "pairwise", "n_arch_models", "n_per_class*10"),
    Entry("04", "class-mean gain of the ensemble's dream (dreamers × classes)", "mean", "n_single_dreams", "10"),
    Entry("05", "CLEAR statistics, single vs marginalized", "mean", "n_models", "n_stats"),
    Entry("06", "faithfulness scores (models × images)", "mean", "n_models", "n_images", "jackknife-t"),
    Entry("06", "seed yardstick (models × images)", "mean", "n_sweep_models", "n_images", "jackknife-t"),
    Entry("06", "baseline and hyperparameter divergence", "mean", "n_baseline_models", "n_images", "jackknife-t"),
    Entry("07", "randomization scores (models × images)", "mean", "n_sanity_models", "n_images"),
    Entry("08", "closeness to the held-out mean (replicates × images)", "mean", "n_models/2", "n_images"),
]


_SIZE = re.compile(r"\s*(\w+)\s*(?:([*/])\s*(\d+))?\s*")


def size(expr: str, params: Mapping[str, Any]) -> int | None:
    """The size ``expr`` ("n_images", "n_per_class*10", "n_models/2") under ``params``; None where the parameter
    is missing or None (a size the profile leaves open, e.g. the whole split, is not simulated)."""
    m = _SIZE.fullmatch(expr)
    if m is None:
        raise ValueError(f"size {expr!r}: write a parameter name, optionally *k or /k (e.g. n_per_class*10)")
    value = int(m.group(1)) if m.group(1).isdigit() else params.get(m.group(1))  # "10": a fixed count
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if m.group(2) == "*":
        return value * int(m.group(3))
    if m.group(2) == "/":
        return max(2, value // int(m.group(3)))
    return value


def other(interval: str) -> str:
    """The interval procedure the page sets beside the chapter's own."""
    return next(i for i in INTERVALS if i != interval)


def designs(profile_name: str, root: Path | None = None, entries: Sequence[Entry] | None = None,
            n_boot: int = 200) -> list[Design]:
    """The designs of every chapter under ``profile_name``, with the sizes the chapters will use and each
    chapter's own interval (``n_boot`` replicates for a bootstrap in the simulation)."""
    root = Path(root or project_root())
    if not (root / "profiles" / f"{profile_name}.yaml").is_file() and entries is None:
        import json  # an installed package (Colab): the designs that helpers.book.colab ships with it
        from importlib.resources import files

        shipped = json.loads(files(__package__).joinpath("colab_profile.json").read_text()).get("designs", {})
        if profile_name in shipped:
            return [Design(**{**d, "n_boot": n_boot}) for d in shipped[profile_name]]
    profile = load_profile(profile_name, root / "profiles")
    by_chapter = {c.id: c for c in find_chapters(root / "notebooks")}
    out = []
    for e in DESIGNS if entries is None else entries:
        chapter = by_chapter.get(e.chapter)
        if chapter is None:
            continue
        params = {**declared_parameters(chapter.path), **chapter_parameters(profile, chapter, {}, profile_name)}
        m, n = size(e.models, params), size(e.images, params)
        if m is None or n is None:
            continue
        out.append(Design(f"{e.chapter} {e.what}", e.statistic, m, n, params.get("level", 0.9), n_boot, e.interval))
    return out


def feasible(d: Design) -> bool:
    """Whether the design's interval can be computed at its sizes (a jackknife over models needs 3 models for
    agreements, 2 for tables, and 2 images)."""
    if d.interval == "jackknife-t":
        return d.n_images >= 2 and d.n_models >= (3 if d.statistic == "pairwise" else 2)
    return True


def with_interval(d: Design, interval: str) -> Design:
    return Design(d.name, d.statistic, d.n_models, d.n_images, d.level, d.n_boot, interval)


@dataclass(frozen=True)
class Row:
    """A design simulated with the chapter's interval (``own``) and with the other one (``alt``, None where it
    cannot be computed at these sizes)."""

    own: Calibration
    alt: Calibration | None

    def fix(self) -> str:
        """What to change when ``own`` fails: the other interval where it passes, else the sizes."""
        if self.alt is not None and self.alt.ok():
            return f"use the {self.alt.design.interval} interval (it passes here) or more images or models"
        return "use more images or models"


def report(profile_name: str, n_sim: int = 200, root: Path | None = None, seed: int = 0, n_boot: int = 200,
           extra: Sequence[Design] = (), entries: Sequence[Entry] | None = None) -> list[Row]:
    """Every design of ``profile_name`` (of ``entries``, default :data:`DESIGNS`) and the ``extra`` designs,
    simulated with the chapter's interval and with the other one, on the same ``seed``."""
    rows = []
    for d in [*designs(profile_name, root, entries, n_boot), *extra]:
        alt = with_interval(d, other(d.interval))
        rows.append(Row(simulate(d, n_sim, seed), simulate(alt, n_sim, seed) if feasible(alt) else None))
    return rows


def check_rows(rows: Sequence[Row]) -> None:
    """Raise a one-line ``ValueError`` naming every design whose own interval fails, with its fix."""
    check([r.own for r in rows], [r.fix() for r in rows])


def records(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """One record per design and interval (the chapter's first), for the page's table and figure."""
    out = []
    for row in rows:
        for used, r in ((True, row.own), (False, row.alt)):
            if r is None:
                continue
            d = r.design
            out.append({"chapter": d.name[:2], "design": d.name[3:], "statistic": d.statistic, "M": d.n_models,
                        "N": d.n_images, "interval": d.interval, "used": used, "coverage": r.coverage,
                        "coverage_se": r.coverage_se, "false": r.false_verdicts, "false_se": r.false_se,
                        "power": r.power, "ok": r.ok()})
    return out


def table_rows(rows: Sequence[Row]) -> list[dict[str, str]]:
    """The page's table: per chapter, design and interval, the sizes, coverage ± its Monte Carlo s.e., false
    verdicts, power, and whether the chapter uses that interval and whether it passes."""
    return [{"ch.": r["chapter"], "design": r["design"], "statistic": r["statistic"], "M": str(r["M"]),
             "N": str(r["N"]), "interval": r["interval"] + (" (the chapter's)" if r["used"] else ""),
             "coverage": f"{r['coverage']:.2f} ± {r['coverage_se']:.2f}",
             "false verdicts": f"{r['false']:.2f} ± {r['false_se']:.2f}", "power": f"{r['power']:.2f}",
             "passes": "yes" if r["ok"] else "no"} for r in records(rows)]


def summary(rows: Sequence[Row]) -> dict[str, Any]:
    """Counts and words for the page's prose (all computed from ``rows``)."""
    own_ok = [r for r in rows if r.own.ok()]
    alt = [r for r in rows if r.alt is not None]
    alt_better = [r for r in alt if r.alt.coverage > r.own.coverage + 2 * r.own.coverage_se]
    rescued = [r for r in alt if not r.own.ok() and r.alt.ok()]
    worst = min(rows, key=lambda r: r.own.coverage) if rows else None
    return {"n_designs": len(rows), "n_pass": len(own_ok), "n_fail": len(rows) - len(own_ok),
            "n_alt": len(alt), "n_alt_pass": sum(r.alt.ok() for r in alt), "n_alt_better": len(alt_better),
            "n_rescued": len(rescued),
            "worst_design": worst.own.design.name if worst else "none",
            "worst_coverage": worst.own.coverage if worst else float("nan"),
            "worst_interval": worst.own.design.interval if worst else "none",
            "used_list": "; ".join(f"{r.own.design.name} ({r.own.design.n_models} × {r.own.design.n_images}): "
                                   f"{r.own.design.interval}" for r in rows) or "none",
            "all_pass_word": "every design the book uses passes" if len(own_ok) == len(rows) else
                             f"{len(rows) - len(own_ok)} design(s) the book uses fail"}


def table(rows: Sequence[Row]) -> str:
    """The table of :func:`table_rows` as Markdown (for ``python -m helpers trust``)."""
    body = table_rows(rows)
    if not body:
        return "(no designs)"
    keys = list(body[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(r[k] for k in keys) + " |" for r in body]
    return "\n".join(lines)


def mc_errors(rows: Sequence[Row], n_sim: int, n_boot: int) -> dict[str, Any]:
    """The page's words on precision: the nominal level and the Monte Carlo s.e. of a coverage at that level."""
    level = rows[0].own.design.level if rows else 0.9
    return {"level_pct": f"{level:.0%}", "se_at_level": math.sqrt(level * (1 - level) / n_sim), "n_boot": n_boot}
