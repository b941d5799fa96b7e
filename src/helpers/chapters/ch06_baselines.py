"""Chapter 6's tables and sentences: how far maps move with the perturbation baseline and each hyperparameter
(Brunke et al. 2020), what RISE's shared masks add, how metric rankings move, and the claims list with its verdicts.
"""
from __future__ import annotations

from typing import Sequence
import torch

from ..evaluation.intervals import Interval, table_interval
from ..evaluation.ranks import across_values, ranking, ranking_agreement


INTERVAL = "jackknife-t"  # the chapter's interval: its sweeps have 3 models, where the bootstrap undercovers (chapter 9)


def interval(values: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0) -> Interval:
    """Mean of a (models, images) table with the chapter's :data:`INTERVAL` (the two-way jackknife-t: the
    calibration page finds the percentile multi-bootstrap below 0.85 coverage with 2–4 models)."""
    return table_interval(values, n_boot, level, seed, INTERVAL)


def hyper_rows(sweeps: dict[tuple[str, str], torch.Tensor], hypers: dict[str, dict[str, Sequence]],
               methods: Sequence[str], across_s: torch.Tensor, baseline: int = 0, n_boot: int = 1000,
               level: float = 0.9, seed: int = 0,
               monte_carlo: dict[str, torch.Tensor] | None = None) -> tuple[list[dict], dict[str, int]]:
    """Per swept hyperparameter: rank correlation of one model's maps across its values, against the rank
    correlation across seeds (``across_s`` (K, M, N) of :func:`divergence`, same models and images), and how many
    hyperparameters move the maps more than a change of seed does (difference below 0), less, or indistinguishably."""
    rows, codes = [], []
    for (m, name), sw in sweeps.items():
        if m not in methods:
            raise ValueError(f"hyperparameters of {m} need its seed yardstick: add {m} to baseline_methods")
        av, s = across_values(sw, baseline), across_s[list(methods).index(m)]
        d = interval(av - s, n_boot, level, seed)
        code = _verdict_code(d)
        row = {"method": m, "hyperparameter": name, "values": ", ".join(map(str, hypers[m][name])),
               "ρ across values": f"{interval(av, n_boot, level, seed):.2f}",
               "ρ across seeds": f"{interval(s, n_boot, level, seed):.2f}", "difference": f"{d:.2f}",
               "ρ, two method seeds": "—", "difference to it": "—"}
        if monte_carlo is not None and m in monte_carlo:  # a sampled method: beyond its own noise too
            dm = interval(av - monte_carlo[m], n_boot, level, seed)
            row.update({"ρ, two method seeds": f"{interval(monte_carlo[m], n_boot, level, seed):.2f}",
                        "difference to it": f"{dm:.2f}"})
            code = code if _verdict_code(dm) == "-" or code != "-" else "0"
        codes.append(code)
        rows.append(row)
    return rows, {"n_hypers": len(rows), "n_hyper_more": codes.count("-"), "n_hyper_less": codes.count("+"),
                  "n_hyper_same": codes.count("0")}


SHORT = {"rise": "rise", "kernel_shap": "ks"}  # glue prefixes of the sampled methods
YARDSTICK_MODELS = 6  # the book's seed yardstick: all pairs of at least this many models


def yardstick_numbers(methods: Sequence[str], yard: dict, n_boot: int = 1000, level: float = 0.9,
                      seed: int = 0) -> tuple[list[dict], dict[str, object]]:
    """Table and glue values of :func:`helpers.evaluation.sweeps.seed_yardstick` for the sampled methods: the
    agreement between models with the shared method seed and with each model's own (``<m>_shared``,
    ``<m>_independent``), one model under two method seeds (``<m>_masks_only``), and what sharing adds
    (shared − independent, ``<m>_share_gain``) with its verdict; intervals over models and images (:func:`interval`).
    Prefixes: :data:`SHORT`."""
    from ..evaluation.intervals import verdict

    iv = lambda t: interval(t, n_boot, level, seed)  # noqa: E731
    rows, out = [], {}
    for m, mc in yard["monte_carlo"].items():
        k = list(methods).index(m)
        sh, ind = yard["shared"][k], yard["independent"][k]
        gain = iv(sh - ind)
        p = SHORT.get(m, m)
        out.update({f"{p}_shared": f"{iv(sh):.2f}", f"{p}_independent": f"{iv(ind):.2f}",
                    f"{p}_masks_only": f"{iv(mc):.2f}", f"{p}_share_gain": f"{gain:.2f}",
                    f"{p}_share_code": _verdict_code(gain),
                    f"{p}_share_verdict": verdict(gain, "sharing the method seed raises the agreement between models",
                                                  "sharing the method seed lowers the agreement between models",
                                                  "sharing the method seed makes no difference that this run can "
                                                  "detect")})
        rows.append({"method": m, "ρ between models, shared method seed": out[f"{p}_shared"],
                     "ρ between models, own method seeds": out[f"{p}_independent"],
                     "shared − own": out[f"{p}_share_gain"],
                     "ρ, one model, two method seeds": out[f"{p}_masks_only"]})
    return rows, out


def design_numbers(n_sweep: int, n_detail: int, n_images: int, n_classes: int) -> dict[str, object]:
    """Glue values that state chapter 6's design: the yardstick's models and pairs, the models under every
    baseline, the images per class, and whether the yardstick has the book's :data:`YARDSTICK_MODELS`."""
    if n_sweep < 2 or not 1 <= n_detail <= n_sweep:
        raise ValueError(f"n_sweep_models={n_sweep}, n_baseline_models={n_detail}: use 2 ≤ n_sweep_models and "
                         f"1 ≤ n_baseline_models ≤ n_sweep_models")
    small = (f" This profile uses fewer than the {YARDSTICK_MODELS} models of the book's yardstick, so its intervals "
             f"over models are rough." if n_sweep < YARDSTICK_MODELS else "")
    return {"n_sweep": n_sweep, "n_sweep_others": n_sweep - 1, "n_pairs": n_sweep * (n_sweep - 1) // 2,
            "n_detail": n_detail,
            "spread": spread_phrase(n_images, n_classes), "yardstick_note": small}


def spread_phrase(n_images: int, n_classes: int) -> str:
    """"3 of each of the 10 classes" or "one of each of 3 classes": how the images cover the classes (they cycle
    through the classes, :func:`helpers.data.examples_per_class`)."""
    if n_images < n_classes:
        return f"one of each of {n_images} of the {n_classes} classes"
    if n_images % n_classes == 0:
        return f"{n_images // n_classes} of each of the {n_classes} classes"
    return f"{n_images // n_classes} or {n_images // n_classes + 1} of each of the {n_classes} classes"


def _verdict_code(iv: Interval) -> str:
    return "+" if iv.low > 0 else "-" if iv.high < 0 else "0"


def divergence_rows(methods: Sequence[str], across_b: torch.Tensor, across_s: torch.Tensor, n_boot: int = 1000,
                    level: float = 0.9, seed: int = 0,
                    yardstick: torch.Tensor | None = None) -> tuple[list[dict], dict[str, int]]:
    """Per method: rank correlation across baselines, across seeds and their difference (intervals over models and
    images); and how many methods the baseline moves more than (difference below 0), less, or indistinguishably.
    ``yardstick`` (K, M', N): the across-seed column from all the yardstick's models (default ``across_s``); the
    difference is paired over the models of ``across_b``."""
    rows, codes = [], []
    ys = across_s if yardstick is None else yardstick
    for k, m in enumerate(methods):
        ib, is_ = (interval(t[k], n_boot, level, seed) for t in (across_b, ys))
        d = interval(across_b[k] - across_s[k], n_boot, level, seed)
        codes.append(_verdict_code(d))
        rows.append({"method": m, "ρ across baselines": f"{ib:.2f}", "ρ across seeds": f"{is_:.2f}",
                     "difference": f"{d:.2f}"})
    return rows, {"n_baseline_more": codes.count("-"), "n_baseline_less": codes.count("+"),
                  "n_baseline_same": codes.count("0")}


MAPS_DELTA = 0.05  # "baselines change the maps" needs the rank correlation's interval below 1 − this


def moved(iv: Interval, delta: float = MAPS_DELTA) -> str:
    """Brunke et al.'s claim on one rank-correlation interval: confirmed only if the maps move by more than δ."""
    return "confirmed" if iv.high < 1 - delta else "not confirmed"


def divergence_summary(across_b: torch.Tensor, across_s: torch.Tensor, n_boot: int = 1000, level: float = 0.9,
                       seed: int = 0, control: torch.Tensor | None = None,
                       yardstick: torch.Tensor | None = None) -> dict[str, object]:
    """Glue values for the mean over methods of the across-baseline and across-seed rank correlations, and for the
    negative control ``control`` (K, M, N): the rank correlation of maps under one baseline and under the same
    baseline shifted by 0.01, which the claim's test must not call a change. ``yardstick`` (K, M', N), the
    across-seed correlations of all the yardstick's models, gives ``rho_seeds`` (default ``across_s``, the
    models of ``across_b``, which the paired difference uses)."""
    ib = interval(across_b.mean(0), n_boot, level, seed)
    is_ = interval((across_s if yardstick is None else yardstick).mean(0), n_boot, level, seed)
    d = interval((across_b - across_s).mean(0), n_boot, level, seed)
    from ..evaluation.intervals import verdict

    out: dict[str, object] = {"maps_delta": MAPS_DELTA, "maps_moved": moved(ib)}
    if control is not None:  # a confirmed change must also be larger than the control's: below its interval
        ic = interval(control.mean(0), n_boot, level, seed)
        out.update(control_rho=f"{ic:.3f}", control_moved=moved(ic),
                   maps_moved="confirmed" if moved(ib) == "confirmed" and ib.high < ic.low else "not confirmed")
    return {**out, "rho_baselines": f"{ib:.2f}", "rho_seeds": f"{is_:.2f}", "rho_diff": f"{d:.2f}",
            "rho_baselines_high": ib.high, "rho_diff_code": _verdict_code(d),
            "rho_verdict": verdict(d, "a change of seed moves the maps more than a change of baseline",
                                   "a change of baseline moves the maps more than a change of seed",
                                   "the two cannot be told apart at this level")}


_CURVES = (("deletion", "deletion (MoRF)"), ("lerf", "deletion (LeRF)"), ("insertion", "insertion"))


def curve_series(methods: Sequence[str], baselines: Sequence[str],
                 mc: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Mean curves per (method, curve kind) and metric baseline, for :func:`curves_figure`."""
    return {f"{m}: {label}": {b: mc[key][k, j].mean((0, 1)) for j, b in enumerate(baselines)}
            for k, m in enumerate(methods) for key, label in _CURVES}


def _winners(methods: Sequence[str], baselines: Sequence[str], scores: dict[str, torch.Tensor]) -> str:
    label = {"deletion": "deletion area", "insertion": "insertion area", "aopc": "AOPC"}
    groups = {}
    for key, s in scores.items():
        best = s.mean((-2, -1)).argmax(0).tolist()  # winner per baseline
        groups[key] = {methods[w]: [b for b, bw in zip(baselines, best) if bw == w] for w in dict.fromkeys(best)}
    everyone = {w for g in groups.values() for w in g}
    if len(everyone) == 1:
        return f"the same method, `{everyone.pop()}`, comes first under every metric baseline by all three metrics."
    parts = [f"by {label[k]}, " + "; ".join(f"`{w}` under {', '.join(bs)}" for w, bs in g.items())
             for k, g in groups.items()]
    return "the method ranked first is not always the same: " + "; ".join(parts) + "."


def ranking_rows(methods: Sequence[str], baselines: Sequence[str], scores: dict[str, torch.Tensor],
                 n_boot: int = 1000, level: float = 0.9, seed: int = 0) -> tuple[list[dict], dict[str, object]]:
    """The ranking of methods by each metric under each metric baseline (best first), and glue values: Kendall τ
    between baselines (mean and least similar pair, with intervals), the number of distinct rankings, the winners."""
    rows = [{"metric baseline": b, **{k: ranking(methods, s[:, j].mean((-2, -1))) for k, s in scores.items()}}
            for j, b in enumerate(baselines)]
    out: dict[str, object] = {"winner_sentence": _winners(methods, baselines, scores)}
    for k, s in scores.items():
        _, mean_tau, min_tau = ranking_agreement(s, n_boot, level, seed)
        out.update({f"tau_{k}_mean": f"{mean_tau:.2f}", f"tau_{k}_min": f"{min_tau:.2f}",
                    f"tau_{k}_min_high": min_tau.high, f"distinct_{k}": len({r[k] for r in rows})})
    return rows, out


_FAITH_LABELS = {"single": "single (model m's own map)", "others": "others (leave-one-out mean)",
                 "ensemble": "ensemble (mean-logit model's map)", "blurred": "blurred single (smoothness-matched)"}


def faithfulness_rows(faith: dict[str, dict[str, torch.Tensor]], n_boot: int = 1000, level: float = 0.9,
                      seed: int = 0) -> tuple[list[dict], dict[str, object]]:
    """Table and glue values of :func:`faithfulness`: mean AUCs with intervals, paired gains (positive = the first
    map is the more faithful) with their verdicts."""
    from ..evaluation.intervals import verdict

    iv = lambda t: interval(t, n_boot, level, seed)  # noqa: E731
    d, i = faith["deletion"], faith["insertion"]
    out: dict[str, object] = {f"{p}_{k}": f"{iv(t[k]):.3f}" for p, t in (("del", d), ("ins", i)) for k in d}
    out["sigma_mean"] = float(faith["sigma"]["blur"].mean())
    rel = float(faith["sigma"]["ensemble_vs_mean"])
    out["ens_sentence"] = (f"equals the mean of all M maps up to float rounding (largest difference {rel:.1e} of "
                           f"the largest value): the method is linear in the model's output, so the ensemble's map "
                           f"is the marginalized map that includes model m" if rel < 1e-3 else
                           f"differs from the mean of all M maps (largest difference {rel:.2f} of the largest "
                           f"value): for this method, explaining the ensemble is not the same as averaging maps")
    gains = {"del_others": d["single"] - d["others"], "ins_others": i["others"] - i["single"],
             "del_blur": d["blurred"] - d["others"], "ins_blur": i["others"] - i["blurred"],
             "del_ensemble": d["single"] - d["ensemble"], "ins_ensemble": i["ensemble"] - i["single"]}
    words = {"others": ("the leave-one-out map is the more faithful", "the model's own map is the more faithful",
                        "the two cannot be told apart"),
             "blur": ("marginalization beats blurring", "blurring beats marginalization",
                      "marginalization and blurring cannot be told apart"),
             "ensemble": ("the ensemble's map is the more faithful", "the model's own map is the more faithful",
                          "the two cannot be told apart")}
    for name, g in gains.items():
        giv = iv(g)
        out[f"gain_{name}"] = f"{giv:.3f}"
        out[f"v_{name}"] = verdict(giv, *words[name.split("_")[1]])
        out[f"code_{name}"] = _verdict_code(giv)
    rows = [{"map": _FAITH_LABELS[k], "deletion AUC (lower: better)": out[f"del_{k}"],
             "insertion AUC (higher: better)": out[f"ins_{k}"]} for k in d]
    return rows, out


def _status(codes: Sequence[str]) -> str:
    if all(c == "+" for c in codes):
        return "confirmed"
    if all(c == "-" for c in codes):
        return "contradicted"
    return "left open"


def claims_text(div: dict, tau: dict, faith: dict, level: float = 0.9, faith_other: dict | None = None,
                other_name: str = "", hyper: dict | None = None) -> str:
    """The closing list of chapter 6: which claims the numbers confirm, contradict or leave open, each decided by
    the stated test on this run's intervals."""
    pct = f"{level:.0%}"
    maps_moved = div["maps_moved"]
    control = (f" Negative control: the same baseline shifted by {div.get('control_shift', 0.01)} gives "
               f"{div['control_rho']}, so the test says **{div['control_moved']}** there."
               if "control_rho" in div else "")
    reliable = [k for k in ("deletion", "insertion", "aopc") if tau[f"tau_{k}_min_high"] < 1]
    changed = [k for k in ("deletion", "insertion", "aopc") if tau[f"distinct_{k}"] > 1]
    rank = ("confirmed" if reliable else "left open" if changed else "not seen")
    faithful = _status([faith["code_del_others"], faith["code_ins_others"]])
    beyond = _status([faith["code_del_blur"], faith["code_ins_blur"]])
    other = ""
    if faith_other is not None:
        o1 = _status([faith_other["code_del_others"], faith_other["code_ins_others"]])
        o2 = _status([faith_other["code_del_blur"], faith_other["code_ins_blur"]])
        other = (f" Scored on the {other_name} instead, the same two tests give **{o1}** (gains "
                 f"{faith_other['gain_del_others']} and {faith_other['gain_ins_others']}) and **{o2}** (gains "
                 f"{faith_other['gain_del_blur']} and {faith_other['gain_ins_blur']}).")
    return "\n".join([
        f"- Brunke et al., baselines change the maps: **{maps_moved}** (test: the {pct} interval of the rank "
        f"correlation between maps under two baselines lies below 1 − δ, δ = {div['maps_delta']}, and below the "
        f"negative control's interval; it is {div['rho_baselines']}).{control} Compared with the seed, "
        f"{div['rho_verdict']}.",
        *([f"- Brunke et al., hyperparameters make the maps diverge: "
           f"**{'confirmed' if hyper['n_hyper_more'] else 'left open'}** (test: for at least one swept "
           f"hyperparameter, the {pct} interval of (rank correlation across its values − across seeds) lies below 0, "
           f"and for a sampled method also that of (across its values − across two of its own seeds at a fixed "
           f"setting); it does for {hyper['n_hyper_more']} of {hyper['n_hypers']})."] if hyper else []),
        f"- Brunke et al., baselines change the evaluation: **{rank}** (test: for at least one metric, the {pct} "
        f"interval of the smallest Kendall τ between two metric baselines' rankings lies below 1; metrics that pass: "
        f"{', '.join(reliable) or 'none'}; metrics whose point rankings differ: {', '.join(changed) or 'none'}).",
        f"- Marginalization makes maps more faithful to each model (Woerl et al.'s remedy, judged by deletion and "
        f"insertion): **{faithful}** (test: both paired gains of the leave-one-out map over the model's own map "
        f"have {pct} intervals above 0 to confirm, below 0 to contradict; they are {faith['gain_del_others']} and "
        f"{faith['gain_ins_others']}).",
        f"- Marginalization helps beyond smoothing: **{beyond}** (same test against the smoothness-matched blurred "
        f"single map; gains {faith['gain_del_blur']} and {faith['gain_ins_blur']})." + other,
    ])
