"""helpers.chapters.ch07_sanity: verdicts with thresholds, symmetric single vs zoo-mean changes, controls, claims."""
import torch

from helpers.chapters import ch07_sanity as sr
from helpers.evaluation import sanity
from helpers.evaluation.intervals import Interval
from helpers.evaluation.sanity import Paired
from helpers.zoo.architectures import build_model

POOL = sanity.model_pool(4, 50, seed=0)


def _scores(level: float, gen: torch.Generator) -> sanity.Scores:
    single = level + 0.02 * torch.randn(4, 6, generator=gen)
    return sanity.Scores(single, level + 0.02 * torch.randn(6, generator=gen),
                         level + 0.02 * torch.randn(len(POOL), 6, generator=gen))


def _values(level_pos: float, level_signed: float) -> dict:
    """Synthetic scores: the positive method's similarities around ``level_pos``, the signed one's around
    ``level_signed``, in every test."""
    gen = torch.Generator().manual_seed(0)
    return {"gradient": {t: _scores(level_signed, gen) for t in sr.TESTS},
            "guided_backprop": {t: _scores(level_pos, gen) for t in sr.TESTS}}


NO_DIFF = Interval(0.0, -0.1, 0.1)


def _p(single: Interval, mean: Interval, diff: Interval = NO_DIFF) -> Paired:
    return Paired(single, mean, diff)


def test_verdict_numbers_list_methods_changes_and_differences():
    ivs = {"a": {"cascade": _p(Interval(0.2, 0.1, 0.3), Interval(0.7, 0.6, 0.8), Interval(-0.5, -0.6, -0.4))},
           "b": {"cascade": _p(Interval(0.9, 0.8, 0.95), Interval(0.9, 0.85, 0.95))},
           "c": {"cascade": _p(Interval(0.5, 0.4, 0.6), Interval(0.3, 0.2, 0.4))}}
    n = sr.verdict_numbers(ivs, ["cascade"], threshold=0.5)
    assert n["cascade_single_passes"] == "a" and n["cascade_single_fails"] == "b"
    assert n["cascade_single_undecided"] == "c" and n["n_cascade_single_undecided"] == 1
    assert n["cascade_mean_passes"] == "c" and n["cascade_mean_fails"] == "a, b"
    assert n["n_cascade_changed"] == 2 and n["cascade_changed"] == "a (passes → fails), c (undecided → passes)"
    assert (n["n_changed_total"], n["n_verdicts"]) == (2, 3)
    assert n["n_differ_total"] == 1 and n["cascade_differ"] == "a (zoo mean higher)"
    rows = sr.verdict_rows(ivs, ["cascade"], 0.5, positive=["b"])
    assert rows[1]["kind"] == "positive" and rows[0]["cascade: single"] == "0.20 [0.10, 0.30] passes (< 0.5)"
    assert rows[1]["cascade: zoo mean"].endswith("fails (≥ 0.5)") and rows[2]["cascade: single"].endswith(
        "undecided (spans 0.5)")
    assert sr.difference_rows(ivs, ["cascade"])[0]["cascade"] == "-0.50 [-0.60, -0.40] zoo mean higher"


def test_claims_confirm_contradict_or_leave_open():
    text, n = sr.claims(_values(0.9, 0.2), [("gradient", "guided_backprop")], 0.5, POOL, 200, 0.9, 0)
    assert n["claim_class_single_confirm"] == 1 and n["claim_cascade_mean_confirm"] == 1
    assert n["claim_gbp_single"] == "confirm" and n["claim_gradient_single"] == "confirm"
    assert "confirm it for guided_backprop vs gradient" in text and "threshold 0.5" in text
    _, n = sr.claims(_values(0.2, 0.9), [("gradient", "guided_backprop")], 0.5, POOL, 200, 0.9, 0)
    assert n["claim_class_single_contradict"] == 1 and n["claim_gbp_mean"] == "contradict"
    assert n["claim_gradient_mean"] == "contradict"  # the gradient's similarity stays above the threshold
    _, n = sr.claims(_values(0.5, 0.5), [("gradient", "guided_backprop")], 0.5, POOL, 200, 0.9, 0)
    assert n["claim_class_single_open"] == 1


def test_the_adebayo_sentence_needs_both_scores():
    values = _values(0.9, 0.2)  # Guided Backprop survives, the gradient changes: confirmed
    gen = torch.Generator().manual_seed(1)
    values["gradient"]["logits"] = _scores(0.68, gen)  # the gradient survives too
    text, n = sr.claims(values, [("gradient", "guided_backprop")], 0.5, POOL, 200, 0.9, 0)
    assert n["claim_gbp_single"] == "contradict" and n["claim_gbp_mean"] == "contradict"
    assert "the gradient fails the test" in text and "Guided Backprop fails the test" in text
    assert n["claim_gbp_single_gradient"].startswith("0.68")


def _maps():
    torch.manual_seed(0)
    models = [build_model("lenet", 1, 10).eval() for _ in range(2)]
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([1, 2, 3])
    casc = sanity.randomization_maps(["gradient"], models, x, y, names=["fc2", "fc3"])
    ind = sanity.randomization_maps(["gradient"], models, x, y, "independent", names=["fc2", "fc3"])
    cls = sanity.class_maps(["gradient"], models, x, y, (y + 1) % 10)
    return x, casc, ind, cls


def test_scores_from_maps_and_symmetric_intervals():
    _, casc, ind, cls = _maps()
    pool = sanity.model_pool(2, 10)
    cs, is_ = sr.steps(casc, "pearson", pool), sr.steps(ind, "pearson", pool)
    v = sr.scores(cs, is_, cls, "pearson", pool)["gradient"]
    s = v["cascade"]
    assert s.single.shape == (2, 3) and s.point.shape == (3,) and s.draws.shape == (10, 3)
    expected = sanity.similarity(casc.maps["gradient"][:1], casc.maps["gradient"], "pearson")[1:].mean(0)
    assert torch.allclose(s.single, expected)
    assert torch.allclose(v["logits"].single, sanity.similarity(casc.maps["gradient"][0], casc.maps["gradient"][1],
                                                                "pearson"))
    assert torch.allclose(s.draws[0], s.point, atol=1e-5)  # draw 0 is the observed zoo
    curves = sr.curve_intervals({"pearson": cs}, casc, ["pearson", "spearman"], pool, 100, 0.9, 0)
    single, mean = curves["pearson"]["gradient"]
    assert len(single) == 3 and single[0].point == 1.0 and mean[1].low <= mean[1].point <= mean[1].high
    assert curves["spearman"]["gradient"][1][1].low != curves["spearman"]["gradient"][1][1].low  # no band: NaN


def test_controls_come_out_as_they_must_and_the_asymmetric_contrast_counts():
    x = _maps()[0]
    pool = sanity.model_pool(2, 10)
    maps = sr.control_maps(x, n_steps=3, n_models=2, seed=0)
    ivs = sr.intervals(sr.control_scores(maps, "spearman_abs", pool), pool, 200, 0.9, 0)
    n = sr.control_numbers(ivs, 0.5)
    assert n["control_edge_n"] == 10 and n["control_edge_n_fails"] == 10 and n["control_edge_n_differ"] == 0
    assert n["control_noise_n_passes"] == 10
    rows = sr.verdict_rows(ivs, ["cascade"], 0.5, positive=[])
    assert rows[0]["kind"] == "control"
    a = sr.asymmetric_numbers(sr.control_scores(maps, "spearman_abs", pool), ["cascade"], 0.5, 200, 0.9, 0)
    assert a["asym_n_changed_total"] == 0


def test_speed_numbers_and_runtime_rows():
    speed = {"a": 100.0, "b": 2.0, "c": 10.0}
    n = sr.speed_numbers(speed)
    assert (n["fastest"], n["slowest"], n["speed_ratio"]) == ("a", "b", "50×")
    assert [r["method"] for r in sr.runtime_rows(speed, "CPU")] == ["a", "c", "b"]
    assert sr.device_name(torch.device("cpu")).startswith("CPU (")


def test_data_randomization_passes_changed_maps_and_fails_copies():
    gen = torch.Generator().manual_seed(0)
    trained = torch.randn(3, 4, 8, 8, generator=gen)
    pool = sanity.model_pool(3, 20)
    values = sr.data_scores({"copy": trained, "new": trained}, {"copy": trained.clone(),
                                                                "new": torch.randn(3, 4, 8, 8, generator=gen)},
                            "spearman_abs", pool)
    assert torch.allclose(values["copy"]["data"].single, torch.ones(3, 4))
    ivs = sr.intervals(values, pool, 200, 0.9, 0)
    n = sr.random_label_numbers(ivs, [{"train_accuracy": 0.2, "test_accuracy": 0.1}] * 3, 0.5)
    assert n["random_labels_data_single_fails"] == "copy" and n["random_labels_data_mean_passes"] == "new"
    assert n["random_labels_claim_gradient_single"].startswith("cannot test") and all(
        k.startswith("random_labels_") for k in n)


def test_class_maps_reuse_the_cascades_trained_maps():
    torch.manual_seed(0)
    models = [build_model("lenet", 1, 10).eval() for _ in range(2)]
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([1, 2, 3])
    casc = sanity.randomization_maps(["gradient"], models, x, y, names=["fc3"])
    other = sanity.model_maps(["gradient"], models, x, (y + 1) % 10)
    assert torch.allclose(sr.class_maps(casc, other)["gradient"],
                          sanity.class_maps(["gradient"], models, x, y, (y + 1) % 10)["gradient"], atol=1e-6)
