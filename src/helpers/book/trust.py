"""How far to trust the verdicts: every chapter's design under a profile (its statistic, M models, N images and
interval), simulated by :mod:`helpers.evaluation.calibration`.

``python -m helpers trust --profile default`` prints one row per design: the coverage of its 90 % intervals, its
rate of false "differ" verdicts under the null, its power, and the same for the two-way jackknife interval where
the statistic is an agreement between models; it exits non-zero when a design the book uses fails.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..evaluation.calibration import Calibration, Design, simulate
from .profiles import chapter_parameters, declared_parameters, find_chapters, load_profile, project_root

# chapter -> [(what, statistic, models parameter, images: a parameter name or (parameter, factor))]
_DESIGNS: dict[str, list[tuple[str, str, str, Any]]] = {
    "01": [("agreement between models", "pairwise", "n_models", "n_images")],
    "02": [("agreement between models, per method", "pairwise", "n_models", "n_images")],
    "03": [("agreement per method (SNR tables)", "pairwise", "n_models", ("n_per_class", 10)),
           ("architecture and ablation zoos", "pairwise", "n_arch_models", ("n_per_class", 10))],
    "05": [("CLEAR statistics, single vs marginalized", "mean", "n_models", "n_stats")],
    "06": [("faithfulness scores (models × images)", "mean", "n_models", "n_images"),
           ("baseline and hyperparameter divergence", "pairwise", "n_sweep_models", "n_images")],
    "07": [("randomization scores (models × images)", "mean", "n_sanity_models", "n_images")],
    "08": [("closeness to the held-out mean (replicates × images)", "mean", "n_models", "n_images")],
}


def designs(profile_name: str, root: Path | None = None) -> list[Design]:
    """The designs of every chapter under ``profile_name``, with the sizes the chapters will use."""
    root = Path(root or project_root())
    profile = load_profile(profile_name, root / "profiles")
    out = []
    for chapter in find_chapters(root / "notebooks"):
        params = {**declared_parameters(chapter.path), **chapter_parameters(profile, chapter, {}, profile_name)}
        for what, statistic, models, images in _DESIGNS.get(chapter.id, []):
            m = params.get(models)
            if chapter.id == "08":
                m = max(2, params["n_models"] // 2)  # the estimators' half of the zoo
            n = params[images[0]] * images[1] if isinstance(images, tuple) else params.get(images)
            if not isinstance(m, int) or not isinstance(n, int):
                continue  # a size the profile leaves open (None: the whole split) is not simulated
            out.append(Design(f"{chapter.id} {what}", statistic, m, n, params.get("level", 0.9)))
    return out


def report(profile_name: str, n_sim: int = 200, root: Path | None = None) -> list[tuple[Calibration, ...]]:
    """Every design simulated with the book's interval and, for agreements, with the jackknife-t interval."""
    rows = []
    for d in designs(profile_name, root):
        own = simulate(d, n_sim)
        if d.statistic == "pairwise" and d.n_models >= 3 and d.n_images >= 2:
            alt = Design(d.name, d.statistic, d.n_models, d.n_images, d.level, d.n_boot, "jackknife-t")
            rows.append((own, simulate(alt, n_sim)))
        else:
            rows.append((own,))
    return rows


def table(rows: list[tuple[Calibration, ...]]) -> str:
    lines = ["| design | M | N | interval | coverage | false verdicts | power |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        for r in row:
            d = r.design
            lines.append(f"| {d.name} | {d.n_models} | {d.n_images} | {d.interval} | {r.coverage:.2f} "
                         f"| {r.false_verdicts:.2f} | {r.power:.2f} |")
    return "\n".join(lines)
