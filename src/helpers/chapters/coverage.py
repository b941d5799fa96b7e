"""The coverage a chapter gets with fewer models than the book's rule asks for (issue "Every verdict can fail": zoos
compared with each other have at least 16 models, or the chapter shows the coverage of its design).

:func:`design_calibration` simulates the chapter's own design (statistic, M, N, interval) with
:func:`helpers.evaluation.calibration.simulate`, the same simulation as the calibration page (chapter 9, cached
once per design), and words its verdict.
"""
from __future__ import annotations

from ..evaluation import calibration

MIN_CAL_SIMS = 50  # fewer synthetic zoos give a coverage too noisy (standard error above 0.04) for a verdict
FEW_MODELS = 16  # zoos compared with each other have at least this many models, or show their coverage


def design_calibration(name: str, statistic: str, n_models: int, n_images: int, n_sim: int = 200,
                       level: float = 0.9, seed: int = 0, interval: str = "bootstrap") -> dict[str, str | int]:
    """Glue values ``cal_*``: the design (``cal_models``, ``cal_images``, ``cal_sims``), the coverage of its 90 %
    intervals with its Monte Carlo s.e., its false-verdict rate, and a computed sentence on whether the design is
    calibrated (coverage ≥ MIN_COVERAGE and false verdicts ≤ MAX_FALSE), left unjudged with fewer than
    :data:`MIN_CAL_SIMS` zoos."""
    if n_models < 2 or n_images < 1 or (interval == "jackknife-t" and n_images < 2):
        return {"cal_models": n_models, "cal_images": n_images, "cal_sims": 0, "cal_coverage": "—", "cal_false": "—",
                "cal_verdict": f"not judged: an interval over models needs 2 models at least ({n_models} here)"}
    design = calibration.Design(name, statistic, n_models, n_images, level=level, interval=interval)
    cal = calibration.simulate(design, n_sim, seed)
    rule = (f"coverage at least {calibration.MIN_COVERAGE:.2f} and false verdicts at most "
            f"{calibration.MAX_FALSE:.2f}")
    if n_sim < MIN_CAL_SIMS:
        text = f"not judged: {n_sim} synthetic zoos are too few to tell (it takes {MIN_CAL_SIMS}; raise n_cal_sims)"
    elif cal.ok():
        text = f"calibrated ({rule})"
    else:
        text = f"not calibrated (it needs {rule}): read the comparisons of these zoos as rough"
    return {"cal_models": n_models, "cal_images": n_images, "cal_sims": n_sim,
            "cal_coverage": f"{cal.coverage:.2f} ± {cal.coverage_se:.2f}", "cal_false": f"{cal.false_verdicts:.2f}",
            "cal_verdict": text}
