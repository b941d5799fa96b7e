"""Chapter 8: what marginalization buys at equal compute. The seed mean of a zoo (Woerl et al., CVPR 2023) against
SmoothGrad (Smilkov et al. 2017), NoiseGrad and FusionGrad (Bykov et al., AAAI 2022) on one model, and the
mean-logit ensemble's map (Bykov et al. 2021), budget by budget (backward passes per image).

The zoo is split in two halves: the *estimation* half E (models 0 … M/2 − 1) feeds every estimator, the *held-out*
half H gives the reference, its seed-marginalized map, built from models no estimator saw.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence
import torch
from torch import nn

from ..attribution import attribute, mapcache
from ..attribution.noise import budget_maps
from ..evaluation import budget as bud
from ..zoo.outputs import MeanLogit

SINGLE = ("smoothgrad", "noisegrad", "fusiongrad")
SEED = "seed mean"


def noise_levels(sigma: float, input_sigma: float) -> dict[str, tuple[float, float]]:
    """(weight σ, input σ) of each single-model estimator: SmoothGrad is FusionGrad without weight noise."""
    return {"smoothgrad": (0.0, input_sigma), "noisegrad": (sigma, 0.0), "fusiongrad": (sigma, input_sigma)}


def untrained(models: Sequence[nn.Module], new_model, init_seeds: Sequence[int]) -> list[nn.Module]:
    """The untrained control zoo: each model's architecture at the weights of its own init seed (no training)."""
    device = next(models[0].parameters()).device
    return [new_model(s).to(device).eval() for s in init_seeds]


def single_maps(zoo_key: str, seed_pairs: Sequence[tuple[int, int]], models: Sequence[nn.Module],
                x: torch.Tensor, y: torch.Tensor, budgets: Sequence[int], base: str, estimator: str, sigma: float,
                input_sigma: float, seed: int) -> torch.Tensor:
    """(B, R, N, H, W) channel-summed maps of one single-model estimator on each model r (method seed ``seed + r``,
    independent samples per model) at every budget, through the map cache."""
    kw = {"budgets": list(budgets), "sigma": sigma, "input_sigma": input_sigma, "base": base, "seed": seed,
          "estimator": estimator}
    k = mapcache.key(zoo_key, seed_pairs, "fusiongrad", kw, x, y)
    hit = mapcache.load(k)
    if hit is not None:
        return hit.to(x.device)
    out = torch.stack([budget_maps(m, x, y, list(budgets), sigma, input_sigma, base, seed + r).sum(-3)
                       for r, m in enumerate(models)], 1)
    mapcache.save(k, out)
    return out


@dataclass
class Study:
    """Maps and statistics of one zoo: ``stats[measure][base][estimator] = (budgets, (B, R, N) values)``."""

    seed_budgets: list[int]
    single_budgets: list[int]
    maps: dict[str, torch.Tensor] = field(default_factory=dict)  # base → per-model maps (M, N, H, W)
    estimates: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # base → estimator → (B, R, N, H, W)
    stats: dict[str, dict[str, dict[str, tuple[list[int], torch.Tensor]]]] = field(default_factory=dict)


def study(zoo_key: str, seed_pairs: Sequence[tuple[int, int]], models: Sequence[nn.Module], x: torch.Tensor,
          y: torch.Tensor, bases: Sequence[str], max_budget: int, sigma: float, input_sigma: float,
          seed: int) -> Study:
    """Every estimator at every budget on the estimation half, with closeness to the held-out half's mean map and
    split-half reproducibility."""
    half = len(models) // 2
    if half < 2:
        raise ValueError(f"n_models={len(models)}: chapter 8 needs at least 4 models (two halves of 2)")
    seed_b = bud.budgets_up_to(half, [half])
    single_b = bud.budgets_up_to(max(max_budget, half), [half])
    out = Study(seed_b, single_b)
    for base in bases:
        maps = mapcache.method_maps(zoo_key, seed_pairs, models, [base], x, y, progress=False)[base]
        est, ref = maps[:half], maps[half:2 * half].mean(0)
        out.maps[base] = maps
        out.estimates[base] = {SEED: bud.cyclic_means(est, seed_b)}
        for name, (s, si) in noise_levels(sigma, input_sigma).items():
            out.estimates[base][name] = single_maps(zoo_key, seed_pairs[:half], models[:half], x, y, single_b, base,
                                                    name, s, si, seed)
        close = {name: bud.closeness(e, ref) for name, e in out.estimates[base].items()}
        split = {name: bud.split_half_single(e) for name, e in out.estimates[base].items() if name != SEED}
        split[SEED] = bud.split_half_seed(est, maps[half:2 * half], seed_b)
        for measure, vals in (("closeness", close), ("split-half", split)):
            out.stats.setdefault(measure, {})[base] = {
                name: (seed_b if name == SEED else single_b, vals[name]) for name in out.estimates[base]}
    return out


def panels(st: Study, n_boot: int, level: float, seed: int, suffix: str = "") -> dict:
    """Quality-figure panels ``{"measure · base": {estimator: (budgets, intervals)}}``."""
    label = {"closeness": "closeness to the held-out seed mean", "split-half": "split-half reproducibility"}
    return {f"{label[m]}{suffix} · {b}": {e: (bs, bud.intervals(v, n_boot, level, seed)) for e, (bs, v) in s.items()}
            for m, per in st.stats.items() for b, s in per.items()}


def at(st: Study, measure: str, base: str, estimator: str, budget: int) -> torch.Tensor:
    """The (R, N) statistic of one estimator at one budget."""
    bs, v = st.stats[measure][base][estimator]
    return v[bs.index(budget)]


def curve_points(st: Study, base: str, n_boot: int, level: float, seed: int) -> dict[str, str]:
    """Glue values: closeness and split-half of every estimator at budgets 1, M/2 and the largest."""
    half, top = st.seed_budgets[-1], st.single_budgets[-1]
    out = {}
    for measure, short in (("closeness", "close"), ("split-half", "split")):
        for e in st.stats[measure][base]:
            key = e.replace(" ", "_")
            for b, tag in ((1, "1"), (half, "half"), (top, "top")):
                if b in st.stats[measure][base][e][0]:
                    iv = bud.mean_interval(at(st, measure, base, e, b), n_boot, level, seed)
                    out[f"{short}_{key}_{tag}"] = f"{iv:.2f}"
    return out


def equal_budget_verdicts(st: Study, base: str, delta: float, n_boot: int, level: float,
                          seed: int) -> dict[str, object]:
    """Which estimator buys the most closeness and reproducibility at the equal budget M/2, decided against the
    runner-up at threshold δ; and whether the best single-model estimator at its largest budget catches up."""
    half, top = st.seed_budgets[-1], st.single_budgets[-1]
    out: dict[str, object] = {"half": half, "top": top, "delta": delta}
    for measure, short in (("closeness", "close"), ("split-half", "split")):
        means = {e: float(at(st, measure, base, e, half).mean()) for e in st.stats[measure][base]}
        ranked = sorted(means, key=means.get, reverse=True)
        best, second = ranked[0], ranked[1]
        d = bud.decide(at(st, measure, base, best, half) - at(st, measure, base, second, half), delta,
                       f"`{best}` beats `{second}`", f"`{second}` beats `{best}`",
                       f"`{best}` and `{second}` are equal within the threshold", n_boot, level, seed)
        single_best = max(SINGLE, key=lambda e: float(at(st, measure, base, e, top).mean()))
        c = bud.decide(at(st, measure, base, SEED, half) - at(st, measure, base, single_best, top), delta,
                       f"the seed mean at {half} passes still beats `{single_best}` at {top}",
                       f"`{single_best}` at {top} passes beats the seed mean at {half}",
                       f"`{single_best}` at {top} passes equals the seed mean at {half} within the threshold",
                       n_boot, level, seed)
        out.update({f"{short}_best": best, f"{short}_second": second, f"{short}_verdict": d.text,
                    f"{short}_code": d.code, f"{short}_catch": c.text, f"{short}_catch_code": c.code})
    return out


def null_control(st: Study, base: str, delta: float, n_boot: int, level: float, seed: int) -> dict[str, str]:
    """The negative control of the verdict rule: two seed means over disjoint quarters of the zoo (same
    estimator, independent models) compared by closeness; the rule must not call either better."""
    half = st.seed_budgets[-1]
    q = max(1, half // 2)
    est = st.maps[base][:half]
    ref = st.maps[base][half:2 * half].mean(0)
    a, b = (bud.closeness(bud.cyclic_means(est, [q], start), ref)[0] for start in (0, q))
    d = bud.decide(a - b, delta, "the first quarter beats the second", "the second quarter beats the first",
                   "the two quarters are equal within the threshold", n_boot, level, seed)
    return {"null_q": q, "null_verdict": d.text, "null_code": d.code}


def untrained_verdicts(tr: Study, un: Study, base: str, delta: float, n_boot: int, level: float,
                       seed: int) -> dict[str, object]:
    """The seed mean's closeness advantage over the best single-model estimator at M/2, on the trained zoo, on the
    untrained control zoo, and their paired contrast (trained − untrained, paired by seed pair and image)."""
    half = tr.seed_budgets[-1]
    best = max(SINGLE, key=lambda e: float(at(tr, "closeness", base, e, half).mean()))
    adv = {name: at(s, "closeness", base, SEED, half) - at(s, "closeness", base, best, half)
           for name, s in (("trained", tr), ("untrained", un))}
    out: dict[str, object] = {"u_best": best}
    for name, a in adv.items():
        d = bud.decide(a, delta, "the seed mean is closer", f"`{best}` is closer",
                       "the two are equally close within the threshold", n_boot, level, seed)
        out[f"adv_{name}"], out[f"adv_{name}_code"] = d.text, d.code
    c = bud.decide(adv["trained"] - adv["untrained"], delta,
                   "the advantage is larger on the trained zoo: it survives the untrained control",
                   "the advantage is larger on the untrained zoo: it does not come from training",
                   "the advantage is the same on both zoos within the threshold: it does not survive the control",
                   n_boot, level, seed)
    out["adv_contrast"], out["adv_contrast_code"] = c.text, c.code
    for e, tag in ((SEED, "seed"), (best, "best")):
        out[f"u_close_{tag}"] = f"{bud.mean_interval(at(un, 'closeness', base, e, half), n_boot, level, seed):.2f}"
    return out


def ensemble_identity(models: Sequence[nn.Module], maps: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                      base: str) -> float:
    """Largest |ensemble map − mean of maps| relative to the largest |mean|: 0 up to rounding for a method linear
    in the model's output (the gradient and input × gradient), whatever the models."""
    ens = attribute(base, MeanLogit(models), x, y).sum(1)
    mean = maps.mean(0)
    return float((ens - mean).abs().amax() / mean.abs().amax().clamp_min(1e-30))


def faithfulness(models: Sequence[nn.Module], st: Study, x: torch.Tensor, y: torch.Tensor, base: str,
                 baseline: torch.Tensor, n_steps: int, patch: int, score: str, delta: float, n_boot: int,
                 level: float, seed: int) -> tuple[list[dict], dict[str, object]]:
    """Deletion and insertion AUC at the equal budget M/2 of every estimator on model r of the estimation half,
    next to model r's single map blurred to the estimator's smoothness, with paired gains over the blur control."""
    half = st.seed_budgets[-1]
    ests = {e: v[(st.seed_budgets if e == SEED else st.single_budgets).index(half)]
            for e, v in st.estimates[base].items()}
    f = bud.faithfulness_vs_blur(models[:half], x, y, st.maps[base][:half], ests, baseline, n_steps, patch, score)
    d, i = f["deletion"], f["insertion"]
    iv = lambda t: f"{bud.mean_interval(t, n_boot, level, seed):.3f}"  # noqa: E731
    rows, out = [], {}
    for e in ests:
        gd = bud.decide(d[f"{e} blur"] - d[e], delta, "beats its blur control", "loses to its blur control",
                        "equals its blur control within the threshold", n_boot, level, seed)
        gi = bud.decide(i[e] - i[f"{e} blur"], delta, "beats its blur control", "loses to its blur control",
                        "equals its blur control within the threshold", n_boot, level, seed)
        key = e.replace(" ", "_")
        out.update({f"f_{key}_del": gd.text, f"f_{key}_ins": gi.text, f"f_{key}_codes": gd.code + gi.code})
        rows.append({"estimator": e, "deletion AUC (lower: better)": iv(d[e]), "its blur control": iv(d[f"{e} blur"]),
                     "insertion AUC (higher: better)": iv(i[e]), "its blur control ": iv(i[f"{e} blur"])})
    rows.append({"estimator": "single map (budget 1)", "deletion AUC (lower: better)": iv(d["single"]),
                 "its blur control": "", "insertion AUC (higher: better)": iv(i["single"]), "its blur control ": ""})
    return rows, out


def pass_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, base: str, n: int, sigma: float,
                 input_sigma: float) -> float:
    """Seconds per backward pass per image of a single-model estimator on this machine (best of 2 timed runs)."""
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        budget_maps(model, x, y, [n], sigma, input_sigma, base, 0)
        best = min(best, time.perf_counter() - t0)
    return best / (n * x.shape[0])


def cost_rows(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, base: str, half: int, sigma: float,
              input_sigma: float, records: Sequence[dict]) -> tuple[list[dict], dict[str, object]]:
    """Cost of each estimator at budget M/2: backward passes and seconds per image on this machine, and, apart,
    the training it needs (from the zoo's records: M/2 models for the seed mean, one for the others)."""
    from ..attribution.marginal import Marginalized

    seed_mean = Marginalized(base, models[:half])  # the book's batched seed mean (vmap over models where it pays)
    t_seed = min(_timed(lambda: seed_mean.attribute(x, y)) for _ in range(3))
    per_model = sum(r["train_seconds"] for r in records) / len(records)
    rows = [{"estimator": SEED, "backward passes per image": half, "ms per image": f"{1e3 * t_seed / len(x):.2f}",
             "training (s, from the zoo's records)": f"{per_model * half:.0f}"}]
    for name, (s, si) in noise_levels(sigma, input_sigma).items():
        t = pass_seconds(models[0], x, y, base, half, s, si) * half
        rows.append({"estimator": name, "backward passes per image": half, "ms per image": f"{1e3 * t:.2f}",
                     "training (s, from the zoo's records)": f"{per_model:.0f}"})
    return rows, {"train_per_model": f"{per_model:.1f}", "train_half": f"{per_model * half:.0f}"}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def gallery_maps(st: Study, base: str, images: int) -> tuple[dict[str, torch.Tensor], list[int]]:
    """Model 0's (replicate 0's) maps of every estimator at every single-model budget, for the gallery: the seed
    mean repeats its largest budget (M/2) beyond it. Normalized for display."""
    from ..attribution.maps import normalize

    out = {}
    for e, v in st.estimates[base].items():
        bs = st.seed_budgets if e == SEED else st.single_budgets
        idx = [bs.index(min(b, bs[-1])) if min(b, bs[-1]) in bs else len(bs) - 1 for b in st.single_budgets]
        out[e] = normalize(v[idx, 0, :images], "quantile")
    return out, list(st.single_budgets)


def sanity_kwargs(n_samples: int, sigma: float, input_sigma: float, seed: int) -> dict[str, dict]:
    """Registry arguments of the estimators for chapter 7's randomization tests (SmoothGrad, which chapter 7 tests,
    is left out: the registry's captum version loops over images and would dominate the chapter's time)."""
    return {"gradient": {}, "noisegrad": {"n_samples": n_samples, "sigma": sigma, "seed": seed},
            "fusiongrad": {"n_samples": n_samples, "sigma": sigma, "input_sigma": input_sigma, "seed": seed}}


def sanity_rows(result, metric: str, threshold: float, n_boot: int, level: float,
                seed: int) -> tuple[list[dict], dict[str, str]]:
    """Chapter 7's cascading-randomization score (similarity to the trained map averaged over the randomized steps)
    of each estimator, and of the seed mean of the gradient over the same models; a map **passes** when the whole
    interval lies below ``threshold`` (it changed with the weights)."""
    from ..evaluation import sanity

    rows, out = [], {}
    for m, (single, marginal) in sanity.curves(result, metric).items():
        values = [(m, sanity.interval(sanity.cascade_score(single), n_boot, level, seed))]
        if m == "gradient":
            values.append((SEED, sanity.interval(sanity.cascade_score(marginal), n_boot, level, seed)))
        for name, iv in values:
            word = sanity.verdict(iv, threshold)
            rows.append({"estimator": name, f"cascading score ({metric})": f"{iv:.2f}", "verdict": word})
            out[f"s_{name.replace(' ', '_')}"] = f"{iv:.2f} ({word})"
    return rows, out
