"""Every checker accepts the reference solution and rejects a wrong answer with a message that names the mistake."""
import pytest
import torch

from helpers.book import exercises as ex
from helpers.evaluation.intervals import Interval
from helpers.attribution.maps import pearson


@pytest.fixture(scope="module")
def lenet():
    from helpers.zoo.architectures import build_model

    torch.manual_seed(0)
    return build_model("lenet", 1, 10).eval()


@pytest.fixture(scope="module")
def maps():
    g = torch.Generator().manual_seed(1)
    shared = torch.randn(1, 5, 8, 8, generator=g)
    return shared + 0.8 * torch.randn(6, 5, 8, 8, generator=g) + 3.0  # an offset shared by every model


def test_feedback_renders_a_verdict():
    assert str(ex.Feedback(True, "x")).startswith("✓ Right") and not ex.Feedback(False, "y")
    folded = ex.Feedback(True, "x")._repr_markdown_()  # under a hidden solution the verdict stays folded away
    assert folded.startswith("<details><summary>") and "✓ Right: x" in folded and folded.endswith("</details>")
    assert "no answer yet" in ex.close(None, 1.0, "your value").message


def test_gradient_by_hand(lenet):
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([1, 4, 7])
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(lenet(xg).gather(1, y[:, None]).sum(), xg)
    assert ex.gradient_by_hand(g, lenet, x, y)
    (p,) = torch.autograd.grad(lenet(xg).softmax(1).gather(1, y[:, None]).sum(), xg)
    wrong = ex.gradient_by_hand(p, lenet, x, y)
    assert not wrong and "softmax" in wrong.message
    assert "shape" in ex.gradient_by_hand(g[0], lenet, x, y).message


def test_leave_one_out(maps):
    m = maps.shape[0]
    rest = (maps.sum(0) - maps) / (m - 1)
    assert ex.leave_one_out(pearson(maps, rest).mean(), maps)
    wrong = ex.leave_one_out(pearson(maps, maps.mean(0)).mean(), maps)
    assert not wrong and "contains the model itself" in wrong.message


def test_least_agreeing():
    agree = {"a": {"pairwise": Interval(0.2, 0.1, 0.3)}, "b": {"pairwise": Interval(0.25, 0.2, 0.35)},
             "c": {"pairwise": Interval(0.8, 0.7, 0.9)}}
    assert ex.least_agreeing("a", agree)
    assert "could not separate" in ex.least_agreeing("b", agree).message
    assert "Sort the methods" in ex.least_agreeing("c", agree).message
    assert "not one of" in ex.least_agreeing("nosuch", agree).message


def test_averaging_gain(maps):
    h = maps.shape[0] // 2
    halves = pearson(maps[:h].mean(0), maps[h:].mean(0)).mean()
    pairs = [pearson(maps[i], maps[j]).mean() for i in range(6) for j in range(6) if i != j]
    assert ex.averaging_gain(halves - torch.stack(pairs).mean(), maps)
    with_self = torch.stack([pearson(maps[i], maps[j]).mean() for i in range(6) for j in range(6)]).mean()
    wrong = ex.averaging_gain(halves - with_self, maps)
    assert not wrong and "distinct models" in wrong.message


def test_snr_by_definition(maps):
    from helpers.evaluation.snr import energy_snr

    c = maps - maps.mean((-2, -1), keepdim=True)
    mean, m = c.mean(0), c.shape[0]
    noise = ((c - mean) ** 2).sum((0, 2, 3)) / (m - 1)
    signal = (mean ** 2).sum((-2, -1)) - noise / m
    assert ex.snr_by_definition(signal / noise, maps)
    assert torch.allclose((signal / noise).double(), energy_snr(maps).double(), rtol=1e-4)  # the definition used
    uncentred = ex.snr_by_definition(_ratio(maps), maps)
    assert not uncentred and "Centre every map" in uncentred.message
    biased = ex.snr_by_definition((mean ** 2).sum((-2, -1)) / noise, maps)
    assert not biased and "overestimates the signal" in biased.message


def _ratio(a):
    mean, m = a.mean(0), a.shape[0]
    noise = ((a - mean) ** 2).sum((0, 2, 3)) / (m - 1)
    return ((mean ** 2).sum((-2, -1)) - noise / m) / noise


def test_lowest_snr_class():
    per_class = [Interval(1.0, 0.8, 1.2), Interval(0.5, 0.4, 0.6), Interval(0.55, 0.45, 0.7)]
    names = ["zero", "one", "two"]
    assert ex.lowest_snr_class("one", per_class, names)
    assert "cannot tell the two apart" in ex.lowest_snr_class("two", per_class, names).message
    assert not ex.lowest_snr_class("zero", per_class, names)


def test_split_half_by_hand(maps):
    assert ex.split_half_by_hand(pearson(maps[:2].mean(0), maps[2:4].mean(0)).mean(), maps, 2)
    wrong = ex.split_half_by_hand(pearson(maps[:2].mean(0), maps[:4].mean(0)).mean(), maps, 2)
    assert not wrong and "overlap" in wrong.message
    with pytest.raises(ValueError, match="two disjoint halves"):
        ex.split_half_by_hand(0.5, maps, 4)


def test_dream_checkers(lenet):
    logits = torch.tensor([[9.0, 9.0], [5.0, 4.0], [3.0, 2.0], [6.0, 1.0]])
    assert ex.lowest_scoring_network(2, logits) and not ex.lowest_scoring_network(1, logits)
    assert "not one of" in ex.lowest_scoring_network(0, logits).message  # network 0 scores itself: excluded
    imgs, cls = torch.randn(3, 1, 28, 28), [0, 5, 9]
    with torch.no_grad():
        z = lenet(imgs)
    t = torch.tensor(cls)[:, None]
    assert ex.dream_logit(z.gather(1, t).mean(), lenet, imgs, cls)
    wrong = ex.dream_logit(z.softmax(-1).gather(1, t).mean(), lenet, imgs, cls)
    assert not wrong and "probability" in wrong.message


def test_clear_checkers():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(2, 4, 5, 6, generator=g), torch.randn(2, 4, 5, 6, generator=g)
    assert ex.dominant_by_hand(a.argmax(-3), a)
    assert "argmax of the responses" in ex.dominant_by_hand(a.argmin(-3), a).message
    assert "shape" in ex.dominant_by_hand(a.argmax(-1), a).message
    tied = torch.zeros(1, 3, 2, 2)  # every class ties: any class is right
    assert ex.dominant_by_hand(torch.full((1, 2, 2), 2), tied) and ex.dominant_by_hand(torch.zeros(1, 2, 2), tied)
    half = torch.zeros(1, 3, 1, 2)
    half[0, 1, 0, 0] = 1.0  # pixel 0: class 1 (unique), pixel 1: a three-way tie
    assert ex.changed_share(0.0, half, half) and ex.changed_share(0.5, half, half)  # the tie may count either way
    assert not ex.changed_share(1.0, half, half)
    share = (a.argmax(-3) != b.argmax(-3)).double().mean()
    assert ex.changed_share(share, a, b) and "keep their class" in ex.changed_share(1 - share, a, b).message


def test_perturbation_checkers():
    scores = torch.zeros(3, 2, 2, 2)
    scores[0, 0], scores[1, 0], scores[2, 0] = 1.0, 0.0, 0.5  # baseline 0: a > c > b
    scores[0, 1], scores[1, 1], scores[2, 1] = 0.0, 1.0, 0.5  # baseline 1: b > c > a
    methods, baselines = ["a", "b", "c"], ["zero", "mean"]
    assert ex.ranking_flip(("a", "b", "zero", "mean"), scores, methods, baselines)
    assert not ex.ranking_flip(("b", "a", "zero", "mean"), scores, methods, baselines)
    assert not ex.ranking_flip(None, scores, methods, baselines)
    assert ex.ranking_flip(None, scores[:, :1].expand(-1, 2, -1, -1), methods, baselines)  # no flip: None is right
    assert "answer with" in ex.ranking_flip(("a", "x", "zero", "mean"), scores, methods, baselines).message
    curves = torch.tensor([[1.0, 0.6, 0.2, 0.0], [0.9, 0.9, 0.5, 0.1]])
    right = (curves[:, :1] - curves).mean(-1)
    assert ex.aopc_by_hand(right, curves)
    wrong = ex.aopc_by_hand((curves[:, :1] - curves)[:, 1:].mean(-1), curves)
    assert not wrong and "k = 0 included" in wrong.message


def test_sanity_checkers(lenet):
    from scipy.stats import spearmanr

    from helpers.attribution import positive

    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(8, 8, generator=g), torch.randn(8, 8, generator=g)
    rho = spearmanr(a.abs().flatten(), b.abs().flatten()).statistic
    assert ex.spearman_abs_by_hand(rho, a, b)
    signed = ex.spearman_abs_by_hand(spearmanr(a.flatten(), b.flatten()).statistic, a, b)
    assert not signed and "signed maps" in signed.message
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([3, 5])
    act, grad = positive.layer_gradients(lenet, lenet.gradcam_layer, x, t)
    g2 = grad ** 2
    alpha = torch.where(grad != 0, g2 / (2 * g2 + act.sum((2, 3), keepdim=True) * g2 * grad + 1e-6),
                        torch.zeros_like(g2))
    assert ex.gradcam_pp_weights_by_hand((alpha * grad.clamp_min(0)).sum((2, 3)), act, grad)
    wrong = ex.gradcam_pp_weights_by_hand((alpha * grad).sum((2, 3)), act, grad)
    assert not wrong and "only the positive" in wrong.message
    assert "GradCAM's weight" in ex.gradcam_pp_weights_by_hand(grad.mean((2, 3)), act, grad).message


def test_budget_checkers():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(8, 3, 6, 6, generator=g) + torch.randn(1, 3, 6, 6, generator=g)
    right = pearson(maps[:2].mean(0), maps[4:].mean(0)).mean()
    assert ex.budget_closeness(right, maps, 2)
    wrong = ex.budget_closeness(pearson(maps[:2].mean(0), maps.mean(0)).mean(), maps, 2)
    assert not wrong and "own models" in str(wrong)
    assert ex.noisegrad_variance(0.04 * 4 / 16, 0.2, 2.0, 16)
    shared = ex.noisegrad_variance(0.04 * 4, 0.2, 2.0, 16)
    assert not shared and "independent" in str(shared)


@pytest.mark.parametrize("chapter", ["01_logit_gradients", "02_marginalized_saliency"])
def test_chapters_1_and_2_answer_every_question_inside_the_folded_solutions(chapter):
    """The verdict is folded (Feedback._repr_markdown_), so the question text must not promise it visibly; every
    conceptual question gets a written answer after the solutions, with the run's numbers glued, not typed."""
    import json
    import re

    from ..conftest import ROOT

    cells = json.loads((ROOT / "notebooks" / f"{chapter}.ipynb").read_text())["cells"]
    text = ["".join(c["source"]) for c in cells]
    ex = next(i for i, t in enumerate(text) if "## Exercises" in t)
    assert "shown under it" not in text[ex] and "folded under it" in text[ex]
    items = re.split(r"^(\d+)\. ", text[ex].split("The solutions below")[0], flags=re.MULTILINE)[1:]
    asked = [int(k) for k, body in zip(items[::2], items[1::2]) if "?" in body]
    assert asked, "chapters 1 and 2 ask conceptual follow-ups"
    answers = next(t for t in text[ex + 1:] if t.startswith("<details><summary>Answer"))
    assert all(f"**{k}.**" in answers for k in asked), (asked, answers[:200])
    glued = set(re.findall(r"\{glue:text\}`(\w+)", answers))
    solutions = "".join(t for c, t in zip(cells[ex + 1:], text[ex + 1:]) if c["cell_type"] == "code")
    assert glued and all(k in solutions or k in "".join(text[:ex]) for k in glued), glued
