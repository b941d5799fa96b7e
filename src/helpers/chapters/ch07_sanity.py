"""Chapter 7's numbers: per-method sanity scores, verdicts (single and marginalized), the papers' claims, run times.

A method **passes** a test when the similarity between the two maps it compares lies below ``threshold`` for the
whole confidence interval (the map changed), **fails** when the whole interval lies at or above it, and is
**undecided** otherwise (:func:`helpers.evaluation.sanity.verdict`). Single-model and zoo-mean scores get their
intervals from the **same** multi-bootstrap replicates, models and images resampled on both sides
(:func:`helpers.evaluation.sanity.paired_interval`); the asymmetric reading (zoo mean over images only) is kept
only as the contrast that shows what the symmetric one changes.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..evaluation import sanity
from ..evaluation.intervals import Interval
from ..evaluation.sanity import Paired, Scores

TESTS = {"cascade": "cascading randomization (mean over layers)", "logits": "output layer randomized",
         "independent": "independent randomization (mean over layers)", "class": "another class"}
CONTROLS = {"edge": "edge detector (control: ignores the model, must fail)",
            "noise": "fresh noise (control: shares nothing, must pass)"}


def steps(result: sanity.Randomization, metric: str, pool: torch.Tensor) -> dict[str, list[Scores]]:
    """Per method the :class:`Scores` of every randomization step against the trained maps (step 0 included)."""
    return {m: sanity.step_scores(maps[:1], maps, metric, pool) for m, maps in result.maps.items()}


def class_maps(result: sanity.Randomization, other: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The class test's maps (2, M, N, H, W) per method: the predicted class's maps are the cascade's step 0 (the
    trained models explaining it), so only the other class's maps ``other`` (M, N, H, W) need computing."""
    return {m: torch.stack([result.maps[m][0], other[m]]) for m in other}


def scores(cascading: Mapping[str, list[Scores]], independent: Mapping[str, list[Scores]],
           classes: Mapping[str, torch.Tensor], metric: str, pool: torch.Tensor) -> dict[str, dict[str, Scores]]:
    """``{method: {test: Scores}}`` for the tests of :data:`TESTS`, from the step scores of :func:`steps` and the
    class maps (2, M, N, H, W)."""
    out = {}
    for m in cascading:
        first, second = classes[m]
        out[m] = {"cascade": sanity.mean_scores(cascading[m][1:]), "logits": cascading[m][1],
                  "independent": sanity.mean_scores(independent[m][1:]),
                  "class": sanity.step_scores(first, second, metric, pool)[0]}
    return out


def control_maps(inputs: torch.Tensor, n_steps: int, n_models: int, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """The two known-answer controls as maps of every test: ``{control: {"steps" (S, M, N, H, W), "classes"
    (2, M, N, H, W), "data" (2, M, N, H, W)}}``; the edge detector's maps are the same everywhere, the noise maps
    are fresh everywhere."""
    edge = sanity.edge_maps(inputs)
    n, h, w = edge.shape
    out = {"edge": {k: edge.expand(s, n_models, n, h, w) for k, s in (("steps", n_steps), ("classes", 2), ("data", 2))}}
    noise = sanity.noise_maps((2 * n_steps + 4, n_models, n, h, w), seed)
    out["noise"] = {"steps": noise[:n_steps], "independent": noise[n_steps:2 * n_steps],
                    "classes": noise[2 * n_steps:2 * n_steps + 2], "data": noise[2 * n_steps + 2:]}
    return out


def control_scores(maps: Mapping[str, Mapping[str, torch.Tensor]], metric: str,
                   pool: torch.Tensor) -> dict[str, dict[str, Scores]]:
    """``{control: {test: Scores}}`` for the tests of :data:`TESTS` and ``"data"``."""
    out = {}
    for c, mp in maps.items():
        casc = sanity.step_scores(mp["steps"][:1], mp["steps"], metric, pool)
        ind = mp.get("independent", mp["steps"])
        indep = sanity.step_scores(mp["steps"][:1], ind, metric, pool)
        out[c] = {"cascade": sanity.mean_scores(casc[1:]), "logits": casc[1],
                  "independent": sanity.mean_scores(indep[1:]),
                  "class": sanity.step_scores(mp["classes"][0], mp["classes"][1], metric, pool)[0],
                  "data": sanity.step_scores(mp["data"][0], mp["data"][1], metric, pool)[0]}
    return out


def intervals(values: Mapping[str, Mapping[str, Scores]], pool: torch.Tensor, n_boot: int, level: float,
              seed: int) -> dict[str, dict[str, Paired]]:
    """The symmetric (single, zoo mean, difference) intervals of every method's score in every test."""
    return {m: {t: sanity.paired_interval(s, pool, n_boot, level, seed) for t, s in tests.items()}
            for m, tests in values.items()}


def curve_intervals(step_scores: Mapping[str, Mapping[str, list[Scores]]], result: sanity.Randomization,
                    metrics: Sequence[str], pool: torch.Tensor, n_boot: int, level: float,
                    seed: int) -> dict[str, dict[str, tuple[list[Interval], list[Interval]]]]:
    """``{metric: {method: (single, zoo mean)}}``, one interval per randomization step. For the metrics of
    ``step_scores`` (the verdicts' metric) both sides come from the same replicates (:func:`intervals`); for the
    other metrics the single side has its multi-bootstrap interval and the zoo mean only its point (NaN ends: no
    band), since an images-only band would look narrower for a reason that is not in the maps."""
    out: dict[str, dict[str, tuple[list[Interval], list[Interval]]]] = {}
    for metric in metrics:
        out[metric] = {}
        for m, maps in result.maps.items():
            if metric in step_scores:
                ps = [sanity.paired_interval(s, pool, n_boot, level, seed) for s in step_scores[metric][m]]
                out[metric][m] = ([p.single for p in ps], [p.marginal for p in ps])
                continue
            single = sanity.single_similarity(maps[:1], maps, metric)
            marginal = sanity.marginal_similarity(maps[:1], maps, metric).double().mean(-1)
            nan = float("nan")
            out[metric][m] = ([sanity.interval(v, n_boot, level, seed) for v in single],
                              [Interval(float(v), nan, nan, level) for v in marginal])
    return out


def verdict_word(iv: Interval, threshold: float) -> str:
    """The verdict with its threshold: "passes (< 0.5)", "fails (≥ 0.5)" or "undecided (spans 0.5)"."""
    v = sanity.verdict(iv, threshold)
    return {"passes": f"passes (< {threshold:g})", "fails": f"fails (≥ {threshold:g})"}.get(
        v, f"undecided (spans {threshold:g})")


def difference_word(iv: Interval) -> str:
    """What a paired difference (single − zoo mean) supports: which reading is higher, or neither shown."""
    if not sanity.differs(iv):
        return "no difference shown"
    return "single higher" if iv.low > 0 else "zoo mean higher"


def verdict_rows(ivs: Mapping[str, Mapping[str, Paired]], tests: Sequence[str], threshold: float,
                 positive: Sequence[str]) -> list[dict[str, str]]:
    """Table rows: per method its kind (positive / signed / control) and, per test, single and zoo-mean score
    with the verdict at the threshold."""
    rows = []
    for m, by_test in ivs.items():
        row = {"method": m, "kind": "control" if m in CONTROLS else "positive" if m in positive else "signed"}
        for t in tests:
            p = by_test[t]
            row[f"{t}: single"] = f"{p.single:.2f} {verdict_word(p.single, threshold)}"
            row[f"{t}: zoo mean"] = f"{p.marginal:.2f} {verdict_word(p.marginal, threshold)}"
        rows.append(row)
    return rows


def difference_rows(ivs: Mapping[str, Mapping[str, Paired]], tests: Sequence[str]) -> list[dict[str, str]]:
    """Table rows: per method and test the paired difference single − zoo mean (same replicates) and its reading."""
    return [{"method": m, **{t: f"{by_test[t].diff:+.2f} {difference_word(by_test[t].diff)}" for t in tests}}
            for m, by_test in ivs.items()]


def _names(xs: Sequence[str]) -> str:
    return ", ".join(xs) if xs else "none"


def _changes(pairs: Mapping[str, tuple[Interval, Interval]], threshold: float) -> list[str]:
    out = []
    for m, (a_iv, b_iv) in pairs.items():
        a, b = sanity.verdict(a_iv, threshold), sanity.verdict(b_iv, threshold)
        if a != b:
            out.append(f"{m} ({a} → {b})")
    return out


def verdict_numbers(ivs: Mapping[str, Mapping[str, Paired]], tests: Sequence[str],
                    threshold: float) -> dict[str, str | int]:
    """Glue values: per test and reading (single / mean) the methods that pass, fail or stay undecided, the
    methods whose verdict changes when the zoo's mean map replaces the single maps (same replicates on both
    sides), and those whose paired difference single − zoo mean excludes 0."""
    out: dict[str, str | int] = {}
    for t in tests:
        for k, reading in enumerate(("single", "mean")):
            for word in ("passes", "fails", "undecided"):
                ms = [m for m, bt in ivs.items() if sanity.verdict((bt[t].single, bt[t].marginal)[k], threshold) == word]
                out[f"{t}_{reading}_{word}"] = _names(ms)
                out[f"n_{t}_{reading}_{word}"] = len(ms)
                verb = {"passes": ("passes", "pass"), "fails": ("fails", "fail"),
                        "undecided": ("is undecided", "are undecided")}[word]
                out[f"count_{t}_{reading}_{word}"] = f"{len(ms)} {verb[len(ms) != 1]}"  # "1 is undecided"
        changed = _changes({m: (bt[t].single, bt[t].marginal) for m, bt in ivs.items()}, threshold)
        out[f"{t}_changed"] = _names(changed)
        out[f"n_{t}_changed"] = len(changed)
        differ = [f"{m} ({difference_word(bt[t].diff)})" for m, bt in ivs.items() if sanity.differs(bt[t].diff)]
        out[f"{t}_differ"] = _names(differ)
        out[f"n_{t}_differ"] = len(differ)
    out["n_changed_total"] = sum(out[f"n_{t}_changed"] for t in tests)
    out["n_differ_total"] = sum(out[f"n_{t}_differ"] for t in tests)
    out["n_verdicts"] = len(tests) * len(ivs)
    return out


def asymmetric_numbers(values: Mapping[str, Mapping[str, Scores]], tests: Sequence[str], threshold: float,
                       n_boot: int, level: float, seed: int) -> dict[str, str | int]:
    """The contrast: verdict changes when the zoo mean's interval resamples the images only
    (:func:`helpers.evaluation.sanity.asymmetric_interval`), keys ``asym_…``."""
    changed = []
    for t in tests:
        changed += [f"{c} in {t}" for c in _changes(
            {m: sanity.asymmetric_interval(bt[t], n_boot, level, seed) for m, bt in values.items()}, threshold)]
    return {"asym_n_changed_total": len(changed), "asym_changed": _names(changed)}


def control_numbers(ivs: Mapping[str, Mapping[str, Paired]], threshold: float) -> dict[str, str | int]:
    """Glue values of the known-answer controls: how many of each control's verdicts (tests × readings) come out
    as they must (edge detector: fails; noise: passes), and how many paired differences exclude 0."""
    out: dict[str, str | int] = {}
    for c, must in (("edge", "fails"), ("noise", "passes")):
        if c not in ivs:
            continue
        verdicts = [sanity.verdict(iv, threshold) for p in ivs[c].values() for iv in (p.single, p.marginal)]
        out[f"control_{c}_n"] = len(verdicts)
        out[f"control_{c}_n_{must}"] = sum(v == must for v in verdicts)
        out[f"control_{c}_n_differ"] = sum(sanity.differs(p.diff) for p in ivs[c].values())
        out[f"control_{c}_n_tests"] = len(ivs[c])
    return out


def _test(iv: Interval, threshold: float) -> str:
    """"passes the test", "fails the test" or "is undecided" for a similarity interval."""
    v = sanity.verdict(iv, threshold)
    return "is undecided" if v == "undecided" else f"{v} the test"


_PHRASE = {"confirm": "confirm it", "contradict": "contradict it", "leave open": "leave it open"}


def claims(values: Mapping[str, Mapping[str, Scores]], pairs: Sequence[tuple[str, str]], threshold: float,
           pool: torch.Tensor, n_boot: int, level: float, seed: int) -> tuple[str, dict[str, str | int]]:
    """Khakzar et al.'s and Adebayo et al.'s claims against the numbers, as Markdown and glue values.

    Khakzar: the positive variant of each (signed, positive) pair is **less** sensitive, i.e. its similarity is
    higher, to another class and to randomization (paired difference positive − signed, same replicates).
    Adebayo: Guided Backprop survives the randomization of the output layer (fails the test) while the gradient
    does not (passes it): both scores must say so at the threshold, and their difference must be positive;
    GradCAM and the gradient pass cascading randomization."""
    ivs = intervals(values, pool, n_boot, level, seed)
    out: dict[str, str | int] = {}
    lines = []
    for test, what in (("class", "to the explained class"), ("cascade", "to cascading randomization")):
        diffs = {f"{pos} vs {signed}": sanity.paired_interval(values[pos][test] - values[signed][test], pool,
                                                             n_boot, level, seed)
                 for signed, pos in pairs if signed in values and pos in values}
        for k, reading in enumerate(("single models", "the zoo's mean map")):
            confirm, contradict, open_ = [], [], []
            for name, p in diffs.items():
                d = (p.single, p.marginal)[k]
                (confirm if d.low > 0 else contradict if d.high < 0 else open_).append(name)
            key = f"{test}_{'single' if k == 0 else 'mean'}"
            out.update({f"claim_{key}_confirm": len(confirm), f"claim_{key}_contradict": len(contradict),
                        f"claim_{key}_open": len(open_)})
            lines.append(f"- Khakzar et al., positive variants are less sensitive {what}, for {reading}: the "
                         f"numbers confirm it for {_names(confirm)}; contradict it for {_names(contradict)}; "
                         f"leave it open for {_names(open_)}.")
    if "gradient" in values and "guided_backprop" in values:
        diff = sanity.paired_interval(values["guided_backprop"]["logits"] - values["gradient"]["logits"], pool,
                                      n_boot, level, seed)
        for k, reading in enumerate(("single models", "the zoo's mean map")):
            d = (diff.single, diff.marginal)[k]
            gbp = (ivs["guided_backprop"]["logits"].single, ivs["guided_backprop"]["logits"].marginal)[k]
            grad = (ivs["gradient"]["logits"].single, ivs["gradient"]["logits"].marginal)[k]
            # both scores count: Guided Backprop must survive (fail the test) AND the gradient must change (pass it)
            word = ("confirm" if d.low > 0 and gbp.low >= threshold and grad.high < threshold else
                    "contradict" if d.high < 0 or gbp.high < threshold or grad.low >= threshold else "leave open")
            key = "single" if k == 0 else "mean"
            out[f"claim_gbp_{key}"] = word
            out[f"claim_gbp_{key}_phrase"] = _PHRASE[word]
            out.update({f"claim_gbp_{key}_gbp": f"{gbp:.2f}", f"claim_gbp_{key}_gradient": f"{grad:.2f}",
                        f"claim_gbp_{key}_diff": f"{d:+.2f}"})
            lines.append(f"- Adebayo et al., Guided Backprop survives randomizing the output layer while the gradient "
                         f"does not ({reading}): similarity {gbp:.2f} (Guided Backprop {_test(gbp, threshold)} at "
                         f"the threshold {threshold:g}) against the gradient's {grad:.2f} (the gradient "
                         f"{_test(grad, threshold)}), difference {d:+.2f}; the claim needs both, so the numbers "
                         f"{_PHRASE[word]}.")
    for m in ("gradient", "gradcam"):
        if m in ivs:
            for k, reading in enumerate(("single models", "the zoo's mean map")):
                iv = (ivs[m]["cascade"].single, ivs[m]["cascade"].marginal)[k]
                v = sanity.verdict(iv, threshold)
                word = {"passes": "confirm", "fails": "contradict"}.get(v, "leave open")
                out[f"claim_{m}_{'single' if k == 0 else 'mean'}"] = word
                lines.append(f"- Adebayo et al., {m} passes cascading randomization ({reading}): it "
                             f"{'is undecided' if v == 'undecided' else v} here ({iv:.2f}, threshold "
                             f"{threshold:g}); the numbers {_PHRASE[word]}.")
    return "\n".join(lines), out


DATA_TEST = {"data": "data randomization (a zoo trained on permuted labels)"}


def data_scores(trained: Mapping[str, torch.Tensor], shuffled: Mapping[str, torch.Tensor], metric: str,
                pool: torch.Tensor) -> dict[str, dict[str, Scores]]:
    """``{method: {"data": Scores}}``: Adebayo et al.'s data randomization test, each trained model's maps (M, N,
    H, W) against those of the random-label model with the same seeds, and the mean maps of the same model draw
    of both zoos (:func:`helpers.evaluation.sanity.step_scores`)."""
    out = {}
    for m in trained:
        if trained[m].shape != shuffled[m].shape:
            raise ValueError(f"maps of {tuple(trained[m].shape)} and {tuple(shuffled[m].shape)}: give both zoos the "
                             "same number of models (the random-label zoo has the first models' seeds) and images")
        out[m] = {"data": sanity.step_scores(trained[m], shuffled[m], metric, pool)[0]}
    return out


def random_label_numbers(ivs: Mapping[str, Mapping[str, Paired]], records: Sequence[dict],
                         threshold: float) -> dict[str, str | int]:
    """Glue values of the data randomization test, every key starting with ``random_labels_``: the verdicts
    (:func:`verdict_numbers` of the test ``"data"``), the random-label zoo's size and accuracies, and Adebayo et
    al.'s claim that the gradient and GradCAM pass it."""
    out: dict[str, str | int] = {f"random_labels_{k}": v for k, v in verdict_numbers(ivs, ["data"], threshold).items()}
    train = [r["train_accuracy"] for r in records]
    test = [r["test_accuracy"] for r in records]
    out.update(random_labels_n=len(records), random_labels_train_acc=f"{sum(train) / len(train):.1%}",
               random_labels_test_acc=f"{sum(test) / len(test):.1%}")
    for m in ("gradient", "gradcam"):
        for k, reading in enumerate(("single", "mean")):
            if m not in ivs:
                out[f"random_labels_claim_{m}_{reading}"] = f"cannot test ({m} is not among the methods)"
                out[f"random_labels_claim_{m}_{reading}_phrase"] = f"cannot test it ({m} is not among the methods)"
                continue
            v = sanity.verdict((ivs[m]["data"].single, ivs[m]["data"].marginal)[k], threshold)
            word = {"passes": "confirm", "fails": "contradict"}.get(v, "leave open")
            out[f"random_labels_claim_{m}_{reading}"] = word
            out[f"random_labels_claim_{m}_{reading}_phrase"] = _PHRASE[word]
    return out


def runtime_rows(speed: Mapping[str, float], device: str) -> list[dict[str, str | float]]:
    """The run-time table: images per second of every method, fastest first, on ``device``."""
    return [{"method": m, "images per second": f"{v:.1f}", "device": device}
            for m, v in sorted(speed.items(), key=lambda kv: -kv[1])]


def speed_numbers(speed: Mapping[str, float]) -> dict[str, str | float]:
    """Glue values: the fastest and the slowest method, their speeds and the ratio."""
    fast, slow = max(speed, key=speed.get), min(speed, key=speed.get)
    return {"fastest": fast, "fastest_speed": f"{speed[fast]:.0f}", "slowest": slow,
            "slowest_speed": f"{speed[slow]:.1f}", "speed_ratio": f"{speed[fast] / speed[slow]:.0f}×"}


def device_name(device: torch.device) -> str:
    """"CPU (N threads)" or the GPU's name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"
