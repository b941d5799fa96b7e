"""helpers.sanity_report: verdict lists, single vs marginalized changes, claims from paired differences."""
import torch

from helpers.evaluation import sanity
from helpers.chapters import ch07_sanity as sr
from helpers.evaluation.intervals import Interval
from helpers.zoo.architectures import build_model


def _values(level_pos: float, level_signed: float) -> dict:
    """Synthetic scores: the positive method's similarities around ``level_pos``, the signed one's around
    ``level_signed`` (single (M, N) and marginalized (N,), every test)."""
    gen = torch.Generator().manual_seed(0)
    noise = lambda *s: 0.02 * torch.randn(*s, generator=gen)  # noqa: E731
    make = lambda v: {t: (v + noise(4, 6), v + noise(6)) for t in sr.TESTS}  # noqa: E731
    return {"gradient": make(level_signed), "guided_backprop": make(level_pos)}


def test_verdict_numbers_list_methods_and_changes():
    ivs = {"a": {"cascade": (Interval(0.2, 0.1, 0.3), Interval(0.7, 0.6, 0.8))},
           "b": {"cascade": (Interval(0.9, 0.8, 0.95), Interval(0.9, 0.85, 0.95))},
           "c": {"cascade": (Interval(0.5, 0.4, 0.6), Interval(0.3, 0.2, 0.4))}}
    n = sr.verdict_numbers(ivs, ["cascade"], threshold=0.5)
    assert n["cascade_single_passes"] == "a" and n["cascade_single_fails"] == "b"
    assert n["cascade_single_undecided"] == "c" and n["n_cascade_single_undecided"] == 1
    assert n["cascade_mean_passes"] == "c" and n["cascade_mean_fails"] == "a, b"
    assert n["n_cascade_changed"] == 2 and n["cascade_changed"] == "a (passes → fails), c (undecided → passes)"
    assert (n["n_changed_total"], n["n_verdicts"]) == (2, 3)
    rows = sr.verdict_rows(ivs, ["cascade"], 0.5, positive=["b"])
    assert rows[1]["kind"] == "positive" and rows[0]["cascade: single"] == "0.20 [0.10, 0.30] passes"


def test_claims_confirm_contradict_or_leave_open():
    text, n = sr.claims(_values(0.9, 0.2), [("gradient", "guided_backprop")], 0.5, 200, 0.9, 0)
    assert n["claim_class_single_confirm"] == 1 and n["claim_cascade_mean_confirm"] == 1
    assert n["claim_gbp_single"] == "confirm" and n["claim_gradient_single"] == "confirm"
    assert "confirm it for guided_backprop vs gradient" in text
    _, n = sr.claims(_values(0.2, 0.9), [("gradient", "guided_backprop")], 0.5, 200, 0.9, 0)
    assert n["claim_class_single_contradict"] == 1 and n["claim_gbp_mean"] == "contradict"
    assert n["claim_gradient_mean"] == "contradict"  # the gradient's similarity stays above the threshold
    _, n = sr.claims(_values(0.5, 0.5), [("gradient", "guided_backprop")], 0.5, 200, 0.9, 0)
    assert n["claim_class_single_open"] == 1


def test_scores_from_maps_and_intervals():
    torch.manual_seed(0)
    models = [build_model("lenet", 1, 10).eval() for _ in range(2)]
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([1, 2, 3])
    casc = sanity.randomization_maps(["gradient"], models, x, y, names=["fc2", "fc3"])
    ind = sanity.randomization_maps(["gradient"], models, x, y, "independent", names=["fc2", "fc3"])
    cls = sanity.class_maps(["gradient"], models, x, y, (y + 1) % 10)
    v = sr.scores(casc, ind, cls, "pearson")["gradient"]
    single, marginal = v["cascade"]
    assert single.shape == (2, 3) and marginal.shape == (3,)
    expected = sanity.similarity(casc.maps["gradient"][:1], casc.maps["gradient"], "pearson")[1:].mean(0)
    assert torch.allclose(single, expected)
    assert torch.allclose(v["logits"][0], sanity.similarity(casc.maps["gradient"][0], casc.maps["gradient"][1],
                                                            "pearson"))
    curves = sr.curve_intervals(casc, ["pearson"], 100, 0.9, 0)["pearson"]["gradient"]
    assert len(curves[0]) == 3 and curves[0][0].point == 1.0


def test_speed_numbers_and_runtime_rows():
    speed = {"a": 100.0, "b": 2.0, "c": 10.0}
    n = sr.speed_numbers(speed)
    assert (n["fastest"], n["slowest"], n["speed_ratio"]) == ("a", "b", "50×")
    assert [r["method"] for r in sr.runtime_rows(speed, "CPU")] == ["a", "c", "b"]
    assert sr.device_name(torch.device("cpu")).startswith("CPU (")


def test_the_adebayo_sentence_needs_both_scores():
    values = _values(0.9, 0.2)  # Guided Backprop survives, the gradient changes: confirmed
    values["gradient"]["logits"] = (torch.full((4, 6), 0.68), torch.full((6,), 0.68))  # the gradient survives too
    text, n = sr.claims(values, [("gradient", "guided_backprop")], 0.5, 200, 0.9, 0)
    assert n["claim_gbp_single"] == "contradict" and n["claim_gbp_mean"] == "contradict"
    assert "the gradient fails the test" in text and "Guided Backprop fails the test" in text


def test_data_randomization_passes_changed_maps_and_fails_copies():
    gen = torch.Generator().manual_seed(0)
    trained = torch.randn(3, 4, 8, 8, generator=gen)
    same, other = sanity.data_randomization(trained, trained.clone()), sanity.data_randomization(
        trained, torch.randn(3, 4, 8, 8, generator=gen))
    assert same[0].shape == (3, 4) and same[1].shape == (4,) and torch.allclose(same[0], torch.ones(3, 4))
    ivs = sr.intervals({"copy": {"data": same}, "new": {"data": other}}, 200, 0.9, 0)
    n = sr.random_label_numbers(ivs, [{"train_accuracy": 0.2, "test_accuracy": 0.1}] * 3, 0.5)
    assert n["random_labels_data_single_fails"] == "copy" and n["random_labels_data_mean_passes"] == "new"
    assert n["random_labels_claim_gradient_single"].startswith("cannot test") and all(
        k.startswith("random_labels_") for k in n)
