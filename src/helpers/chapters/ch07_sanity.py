"""Chapter 7's numbers: per-method sanity scores, verdicts (single and marginalized), the papers' claims, run times.

A method **passes** a test when the similarity between the two maps it compares lies below ``threshold`` for the
whole confidence interval (the map changed), **fails** when the whole interval lies at or above it, and is
**undecided** otherwise (:func:`helpers.sanity.verdict`). Single-model scores have intervals over models and images
(multi-bootstrap), marginalized ones over images (the zoo's mean map is one map per image).
"""
from __future__ import annotations

from typing import Mapping, Sequence
import torch

from ..evaluation.intervals import Interval
from ..evaluation import sanity


TESTS = {"cascade": "cascading randomization (mean over layers)", "logits": "output layer randomized",
         "independent": "independent randomization (mean over layers)", "class": "another class"}


def scores(cascading: sanity.Randomization, independent: sanity.Randomization,
           classes: Mapping[str, torch.Tensor], metric: str) -> dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """``{method: {test: (single (M, N), marginalized (N,))}}`` similarities for the tests of :data:`TESTS`."""
    out = {}
    for m in cascading.maps:
        single, marginal = _curve(cascading.maps[m], metric)
        ind_single, ind_marginal = _curve(independent.maps[m], metric)
        first, second = classes[m]
        out[m] = {"cascade": (sanity.cascade_score(single), sanity.cascade_score(marginal)),
                  "logits": (single[1], marginal[1]),
                  "independent": (sanity.cascade_score(ind_single), sanity.cascade_score(ind_marginal)),
                  "class": (sanity.single_similarity(first, second, metric),
                            sanity.marginal_similarity(first, second, metric))}
    return out


def _curve(maps: torch.Tensor, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    return sanity.single_similarity(maps[:1], maps, metric), sanity.marginal_similarity(maps[:1], maps, metric)


def curve_intervals(result: sanity.Randomization, metrics: Sequence[str], n_boot: int, level: float,
                    seed: int) -> dict[str, dict[str, tuple[list[Interval], list[Interval]]]]:
    """``{metric: {method: (single, marginalized)}}``: one interval per randomization step of the similarity to the
    trained map (single: over models and images; marginalized: over images)."""
    out: dict[str, dict[str, tuple[list[Interval], list[Interval]]]] = {}
    for metric in metrics:
        out[metric] = {}
        for m, maps in result.maps.items():
            single, marginal = _curve(maps, metric)
            out[metric][m] = ([sanity.interval(v, n_boot, level, seed) for v in single],
                              [sanity.interval(v, n_boot, level, seed) for v in marginal])
    return out


def intervals(values: Mapping[str, Mapping[str, tuple[torch.Tensor, torch.Tensor]]], n_boot: int, level: float,
              seed: int) -> dict[str, dict[str, tuple[Interval, Interval]]]:
    """The (single, marginalized) interval of every method's score in every test."""
    return {m: {t: (sanity.interval(s, n_boot, level, seed), sanity.interval(g, n_boot, level, seed))
                for t, (s, g) in tests.items()} for m, tests in values.items()}


def verdict_rows(ivs: Mapping[str, Mapping[str, tuple[Interval, Interval]]], tests: Sequence[str],
                 threshold: float, positive: Sequence[str]) -> list[dict[str, str]]:
    """Table rows: per method its kind (positive / signed) and, per test, single and zoo-mean score with verdict."""
    rows = []
    for m, by_test in ivs.items():
        row = {"method": m, "kind": "positive" if m in positive else "signed"}
        for t in tests:
            single, marginal = by_test[t]
            row[f"{t}: single"] = f"{single:.2f} {sanity.verdict(single, threshold)}"
            row[f"{t}: zoo mean"] = f"{marginal:.2f} {sanity.verdict(marginal, threshold)}"
        rows.append(row)
    return rows


def _names(xs: Sequence[str]) -> str:
    return ", ".join(xs) if xs else "none"


def verdict_numbers(ivs: Mapping[str, Mapping[str, tuple[Interval, Interval]]], tests: Sequence[str],
                    threshold: float) -> dict[str, str | int]:
    """Glue values: per test and reading (single / mean) the methods that pass, fail or stay undecided, and the
    methods whose verdict changes when the zoo's mean map replaces the single maps."""
    out: dict[str, str | int] = {}
    for t in tests:
        changed = []
        for k, reading in enumerate(("single", "mean")):
            for word in ("passes", "fails", "undecided"):
                ms = [m for m, bt in ivs.items() if sanity.verdict(bt[t][k], threshold) == word]
                out[f"{t}_{reading}_{word}"] = _names(ms)
                out[f"n_{t}_{reading}_{word}"] = len(ms)
                verb = {"passes": ("passes", "pass"), "fails": ("fails", "fail"),
                        "undecided": ("is undecided", "are undecided")}[word]
                out[f"count_{t}_{reading}_{word}"] = f"{len(ms)} {verb[len(ms) != 1]}"  # "1 is undecided"
        for m, bt in ivs.items():
            a, b = (sanity.verdict(iv, threshold) for iv in bt[t])
            if a != b:
                changed.append(f"{m} ({a} → {b})")
        out[f"{t}_changed"] = _names(changed)
        out[f"n_{t}_changed"] = len(changed)
    out["n_changed_total"] = sum(out[f"n_{t}_changed"] for t in tests)
    out["n_verdicts"] = len(tests) * len(ivs)
    return out


def paired(values: Mapping[str, Mapping[str, tuple[torch.Tensor, torch.Tensor]]], a: str, b: str, test: str,
           n_boot: int, level: float, seed: int) -> tuple[Interval, Interval]:
    """Single and marginalized intervals of the paired difference (score of ``a`` − score of ``b``) in ``test``."""
    (sa, ma), (sb, mb) = values[a][test], values[b][test]
    return sanity.interval(sa - sb, n_boot, level, seed), sanity.interval(ma - mb, n_boot, level, seed)


def _test(iv: Interval, threshold: float) -> str:
    """"passes the test", "fails the test" or "is undecided" for a similarity interval."""
    v = sanity.verdict(iv, threshold)
    return "is undecided" if v == "undecided" else f"{v} the test"


_PHRASE = {"confirm": "confirm it", "contradict": "contradict it", "leave open": "leave it open"}


def claims(values: Mapping[str, Mapping[str, tuple[torch.Tensor, torch.Tensor]]],
           pairs: Sequence[tuple[str, str]], threshold: float, n_boot: int, level: float,
           seed: int) -> tuple[str, dict[str, str | int]]:
    """Khakzar et al.'s and Adebayo et al.'s claims against the numbers, as Markdown and glue values.

    Khakzar: the positive variant of each (signed, positive) pair is **less** sensitive, i.e. its similarity is
    higher, to another class and to randomization. Adebayo: Guided Backprop survives the randomization of the output
    layer while the gradient does not; GradCAM and the gradient pass cascading randomization."""
    ivs = intervals(values, n_boot, level, seed)
    out: dict[str, str | int] = {}
    lines = []
    for test, what in (("class", "to the explained class"), ("cascade", "to cascading randomization")):
        for k, reading in enumerate(("single models", "the zoo's mean map")):
            confirm, contradict, open_ = [], [], []
            for signed, pos in pairs:
                if signed not in values or pos not in values:
                    continue
                diff = paired(values, pos, signed, test, n_boot, level, seed)[k]
                (confirm if diff.low > 0 else contradict if diff.high < 0 else open_).append(f"{pos} vs {signed}")
            key = f"{test}_{'single' if k == 0 else 'mean'}"
            out.update({f"claim_{key}_confirm": len(confirm), f"claim_{key}_contradict": len(contradict),
                        f"claim_{key}_open": len(open_)})
            lines.append(f"- Khakzar et al., positive variants are less sensitive {what}, for {reading}: the "
                         f"numbers confirm it for {_names(confirm)}; contradict it for {_names(contradict)}; "
                         f"leave it open for {_names(open_)}.")
    if "gradient" in values and "guided_backprop" in values:
        for k, reading in enumerate(("single models", "the zoo's mean map")):
            diff = paired(values, "guided_backprop", "gradient", "logits", n_boot, level, seed)[k]
            gbp, grad = ivs["guided_backprop"]["logits"][k], ivs["gradient"]["logits"][k]
            # both scores count: Guided Backprop must survive (fail the test) AND the gradient must change (pass it)
            word = ("confirm" if diff.low > 0 and gbp.low >= threshold and grad.high < threshold else
                    "contradict" if diff.high < 0 or gbp.high < threshold or grad.low >= threshold else "leave open")
            out[f"claim_gbp_{'single' if k == 0 else 'mean'}"] = word
            lines.append(f"- Adebayo et al., Guided Backprop survives randomizing the output layer while the gradient "
                         f"does not ({reading}): similarity {gbp:.2f} (Guided Backprop {_test(gbp, threshold)} at "
                         f"the threshold {threshold:g}) against the gradient's {grad:.2f} (the gradient "
                         f"{_test(grad, threshold)}); the numbers {_PHRASE[word]}.")
    for m in ("gradient", "gradcam"):
        if m in ivs:
            for k, reading in enumerate(("single models", "the zoo's mean map")):
                v = sanity.verdict(ivs[m]["cascade"][k], threshold)
                word = {"passes": "confirm", "fails": "contradict"}.get(v, "leave open")
                out[f"claim_{m}_{'single' if k == 0 else 'mean'}"] = word
                lines.append(f"- Adebayo et al., {m} passes cascading randomization ({reading}): it "
                             f"{'is undecided' if v == 'undecided' else v} here ({ivs[m]['cascade'][k]:.2f}); the "
                             f"numbers {_PHRASE[word]}.")
    return "\n".join(lines), out


DATA_TEST = {"data": "data randomization (a zoo trained on permuted labels)"}


def data_scores(trained: Mapping[str, torch.Tensor], shuffled: Mapping[str, torch.Tensor],
                metric: str) -> dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """``{method: {"data": (single (M, N), marginalized (N,))}}``: Adebayo et al.'s data randomization test, the
    trained models' maps against those of the random-label zoo with the same seeds
    (:func:`helpers.evaluation.sanity.data_randomization`)."""
    return {m: {"data": sanity.data_randomization(trained[m], shuffled[m], metric)} for m in trained}


def random_label_numbers(ivs: Mapping[str, Mapping[str, tuple[Interval, Interval]]], records: Sequence[dict],
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
                continue
            v = sanity.verdict(ivs[m]["data"][k], threshold)
            out[f"random_labels_claim_{m}_{reading}"] = {"passes": "confirm", "fails": "contradict"}.get(
                v, "leave open")
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
