"""Deep dream of one network and of an ensemble (helpers.dream, helpers.viz_dream)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from helpers.attribution import dream as dr
from helpers.chapters import ch04_dream as ch04
from helpers.evaluation import dream_scores
from helpers.attribution.dream import DreamConfig, Ensemble, _tv, dream, pixel_bounds, split_zoo, start_images
from helpers.evaluation.dream_scores import target_scores

SHAPE = (1, 8, 8)
MEAN, STD = (0.5,), (0.25,)  # valid normalized range [-2, 2]


@pytest.fixture(autouse=True)
def _one_thread(_threads):
    """Tiny networks: one thread is faster than two on a shared CPU (no spinning OpenMP workers)."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(2)


PLAIN = DreamConfig(steps=1, step_size=0.1, normalize_grad=False, jitter=0, blur_every=0, clamp=False, start="mean")


class Linear(nn.Module):
    def __init__(self, k: int = 4, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(int(np.prod(SHAPE)), k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(x, 1))


class TinyCNN(nn.Module):
    def __init__(self, seed: int = 0, k: int = 3) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4 * 4 * 4, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.max_pool2d(self.relu(self.conv(x)), 2), 1))


def cnns(n: int) -> list[nn.Module]:
    return [TinyCNN(seed=s).eval() for s in range(n)]


def test_linear_model_ascends_along_the_weight_row():
    model = Linear().eval()
    w = model.fc.weight.detach()
    r = dream(model, [0, 1, 2, 3], SHAPE, MEAN, STD, PLAIN)
    # from x0 = 0 one step of size eta moves exactly by eta * W[c] (the known gradient of a linear logit)
    assert torch.allclose(r.images.flatten(1), 0.1 * w, atol=1e-6)
    # with gradient normalization: the same direction, scaled to a mean |step| of eta
    r2 = dream(model, [2], SHAPE, MEAN, STD, PLAIN.replace(normalize_grad=True))
    assert torch.allclose(r2.images.flatten(1)[0], 0.1 * w[2] / w[2].abs().mean(), atol=1e-6)
    assert r.logits.shape == (2, 4, 4)
    assert torch.allclose(r.logits[0], model.fc.bias.detach().expand(4, 4), atol=1e-6)


def test_target_logit_rises_monotonically_on_a_small_cnn():
    cfg = DreamConfig(steps=30, step_size=0.02, jitter=0, blur_every=0, start="noise", seed=3)
    r = dream(cnns(1), [0, 1, 2], SHAPE, MEAN, STD, cfg)
    tl = r.target_logits()  # (T+1, B)
    assert (tl[-1] > tl[0] + 0.5).all()
    assert (tl.diff(dim=0) > 0).float().mean() > 0.9
    # with jitter and blur (the regularised dream) it still climbs overall
    r2 = dream(cnns(1), [0, 1, 2], SHAPE, MEAN, STD, DreamConfig(steps=30, step_size=0.05, jitter=1, blur_every=3))
    assert (r2.target_logits()[-1] > r2.target_logits()[0]).all()


def test_ensemble_of_identical_models_equals_the_single_model():
    m = TinyCNN(seed=1).eval()
    cfg = DreamConfig(steps=8, snapshot_every=3, jitter=1, blur_every=2, tv=0.01, l2=0.01)
    single = dream(m, [0, 2], SHAPE, MEAN, STD, cfg)
    for mode in ("loop", "vmap"):
        many = dream([m, copy.deepcopy(m), copy.deepcopy(m)], [0, 2], SHAPE, MEAN, STD, cfg, mode=mode)
        assert torch.allclose(many.images, single.images, atol=1e-5)
        assert torch.allclose(many.logits, single.logits, atol=1e-4)


def test_vmap_and_loop_agree_and_average_the_logits():
    models = cnns(3)
    x = torch.randn(5, *SHAPE)
    loop, vm = Ensemble(models, "loop")(x), Ensemble(models, "vmap")(x)
    assert loop.shape == (3, 5, 3) and torch.allclose(loop, vm, atol=1e-5)
    r = dream(models, [1], SHAPE, MEAN, STD, DreamConfig(steps=2))
    x0 = start_images(1, SHAPE, MEAN, STD, DreamConfig(steps=2))
    with torch.no_grad():
        assert torch.allclose(r.logits[0], torch.stack([m(x0) for m in models]).mean(0), atol=1e-5)
        assert torch.allclose(r.probs[0], torch.stack([m(x0).softmax(-1) for m in models]).mean(0), atol=1e-5)


def test_same_seed_same_dream_other_seed_other_dream():
    cfg = DreamConfig(steps=6, jitter=2, blur_every=2, start="noise", seed=7)
    a = dream(cnns(2), [0, 1], SHAPE, MEAN, STD, cfg)
    b = dream(cnns(2), [0, 1], SHAPE, MEAN, STD, cfg)
    c = dream(cnns(2), [0, 1], SHAPE, MEAN, STD, cfg.replace(seed=8))
    assert torch.equal(a.images, b.images) and torch.equal(a.logits, b.logits)
    assert not torch.allclose(a.images, c.images)


def test_output_shapes_snapshots_and_clamp():
    cfg = DreamConfig(steps=7, snapshot_every=3, step_size=1.0)  # big steps: the clamp must hold
    r = dream(cnns(2), [0, 1, 2, 0], SHAPE, MEAN, STD, cfg)
    assert r.images.shape == (4, *SHAPE)
    assert r.snapshot_steps == [0, 3, 6, 7]
    assert r.snapshots.shape == (4, 4, *SHAPE) and torch.equal(r.snapshots[-1], r.images)
    assert r.logits.shape == r.probs.shape == (8, 4, 3)
    assert torch.allclose(r.probs.sum(-1), torch.ones(8, 4), atol=1e-5)
    assert r.target_logits().shape == r.target_probs().shape == (8, 4)
    lo, hi = pixel_bounds(MEAN, STD)
    assert r.images.min() >= lo.min() - 1e-6 and r.images.max() <= hi.max() + 1e-6
    assert r.images.max() > hi.max() - 1e-3  # some pixels reached the top of the range
    grey = start_images(2, (3, 4, 4), (0.5, 0.4, 0.3), (0.2, 0.2, 0.2), DreamConfig(start="grey"))
    assert torch.allclose(grey[:, :, 0, 0], torch.tensor([0.0, 0.5, 1.0]).expand(2, 3))


def test_penalties_pull_towards_smooth_small_images():
    cfg = DreamConfig(steps=15, jitter=0, blur_every=0, start="noise", noise_std=1.0, clamp=False)
    free = dream(cnns(1), [0], SHAPE, MEAN, STD, cfg)
    tv = dream(cnns(1), [0], SHAPE, MEAN, STD, cfg.replace(tv=0.02))
    l2 = dream(cnns(1), [0], SHAPE, MEAN, STD, cfg.replace(l2=0.2))
    assert _tv(tv.images) < _tv(free.images)
    assert l2.images.norm() < free.images.norm()


def test_target_scores_and_split_zoo():
    models = cnns(3)
    x = torch.randn(2, 3, *SHAPE)  # (S, B, C, H, W)
    logit, prob, margin, hit = target_scores(models, x, [0, 1, 2])
    assert logit.shape == prob.shape == margin.shape == hit.shape == (3, 2, 3)
    with torch.no_grad():
        z = models[1](x[1])
    assert torch.allclose(logit[1, 1], z[torch.arange(3), torch.tensor([0, 1, 2])], atol=1e-5)
    assert torch.equal(hit > 0, margin > 0)
    members, held = split_zoo(models, 2)
    assert len(members) == 2 and held == models[2:]


def test_errors_name_the_fix():
    m = TinyCNN().eval()
    with pytest.raises(ValueError, match="unknown class 3.*0 … 2"):
        dream(m, [0, 3], SHAPE, MEAN, STD, DreamConfig(steps=1))
    with pytest.raises(ValueError, match="unknown class -1"):
        dream(m, [-1], SHAPE, MEAN, STD, DreamConfig(steps=1))
    with pytest.raises(ValueError, match="empty model list"):
        dream([], [0], SHAPE, MEAN, STD)
    with pytest.raises(ValueError, match="no classes"):
        dream(m, [], SHAPE, MEAN, STD)
    with pytest.raises(ValueError, match="x0 has shape"):
        dream(m, [0, 1], SHAPE, MEAN, STD, x0=torch.zeros(1, *SHAPE))
    with pytest.raises(ValueError, match="not \\(C, H, W\\)"):
        dream(m, [0], (8, 8), MEAN, STD)
    with pytest.raises(ValueError, match="channels"):
        dream(m, [0], SHAPE, (0.5, 0.5), (0.2, 0.2))
    with pytest.raises(ValueError, match="unknown mode"):
        Ensemble([m], mode="fast")
    with pytest.raises(ValueError, match="at least one network must be held out"):
        split_zoo(cnns(2), 2)
    for bad in (dict(steps=0), dict(step_size=0), dict(snapshot_every=0), dict(jitter=-1), dict(start="white"),
                dict(tv=-1.0), dict(blur_sigma=0.0)):
        with pytest.raises(ValueError):
            DreamConfig(**bad)
    with pytest.raises(ValueError, match="one image per class"):
        target_scores([m], torch.zeros(2, *SHAPE), [0])


# --- the chapter's experiment and the numbers its prose cites -----------------------------------------------------

def fixed_linear(scale: float) -> Linear:
    """A linear network whose logit of class c is scale · (c + 1) · sum(x): known by hand for any image."""
    m = Linear(k=3).eval()
    with torch.no_grad():
        m.fc.weight.copy_(scale * torch.arange(1.0, 4.0).view(3, 1).expand(3, int(np.prod(SHAPE))))
        m.fc.bias.zero_()
    return m


def test_dream_zoo_matches_separate_dreams_and_keeps_held_out_networks_unseen():
    members = cnns(3)
    cfg = DreamConfig(steps=3, jitter=1, blur_every=2)
    run = dr.dream_zoo(members, 2, [0, 2], SHAPE, MEAN, STD, cfg, mode="vmap")
    assert len(run.singles) == 2 and run.seconds_single > 0 and run.seconds_ensemble > 0
    for k in range(2):
        assert torch.equal(run.singles[k].images, dream(members[k], [0, 2], SHAPE, MEAN, STD, cfg).images)
    assert torch.allclose(run.ensemble.images, dream(members, [0, 2], SHAPE, MEAN, STD, cfg).images, atol=1e-5)
    with pytest.raises(ValueError, match="n_single=4 but the ensemble has 3"):
        dr.dream_zoo(members, 4, [0], SHAPE, MEAN, STD, cfg)


def test_half_ensembles_are_disjoint_halves():
    members = cnns(5)  # halves of 2: networks 0-1 and 2-3, network 4 unused
    cfg = DreamConfig(steps=2)
    a, b = dr.half_ensemble_dreams(members, [1], SHAPE, MEAN, STD, cfg)
    assert torch.allclose(a.images, dream(members[:2], [1], SHAPE, MEAN, STD, cfg).images, atol=1e-6)
    assert torch.allclose(b.images, dream(members[2:4], [1], SHAPE, MEAN, STD, cfg).images, atol=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        dr.half_ensemble_dreams(members[:1], [1], SHAPE, MEAN, STD, cfg)


def test_pixel_and_prototype_correlation_known_answers():
    a = torch.randn(3, *SHAPE, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(dream_scores.pixel_correlation(a, a), torch.ones(3), atol=1e-6)
    assert torch.allclose(dream_scores.pixel_correlation(a, 2 * a + 3), torch.ones(3), atol=1e-6)
    assert torch.allclose(dream_scores.pixel_correlation(a, -a), -torch.ones(3), atol=1e-6)
    u = torch.tensor([[1.0, -1.0, 0.0, 0.0]]).view(1, 1, 2, 2)
    v = torch.tensor([[0.0, 0.0, 1.0, -1.0]]).view(1, 1, 2, 2)
    assert dream_scores.pixel_correlation(u, v).abs().item() < 1e-7  # orthogonal, zero-mean patterns
    with pytest.raises(ValueError, match="equal shape"):
        dream_scores.pixel_correlation(a, a[:2])
    # real images: class 0 = +pattern ± noise, class 1 = −pattern ± noise; the class means are ±pattern (noise cancels)
    pattern = torch.randn(1, *SHAPE, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(1, *SHAPE, generator=torch.Generator().manual_seed(2))
    x = torch.cat([pattern + noise, pattern - noise, -pattern + noise, -pattern - noise])
    y = torch.tensor([0, 0, 1, 1])
    r = dream_scores.prototype_correlation(torch.cat([pattern, pattern]), [0, 1], x, y)
    assert torch.allclose(r, torch.tensor([1.0, -1.0]), atol=1e-5)
    with pytest.raises(ValueError, match="no real image of class 2"):
        dream_scores.prototype_correlation(pattern, [2], x, y)


def test_class_examples():
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    idx = dream_scores.class_examples(y, [2, 0], 3, seed=1)
    assert y[idx].tolist() == [2, 2, 2, 0, 0, 0] and len(set(idx.tolist())) == 6
    assert torch.equal(idx, dream_scores.class_examples(y, [2, 0], 3, seed=1))
    with pytest.raises(ValueError, match="class 1 has 3 images"):
        dream_scores.class_examples(y, [1], 4)


def test_scores_of_known_images_under_linear_networks():
    models = [fixed_linear(1.0), fixed_linear(2.0)]
    cfg = DreamConfig(steps=2, snapshot_every=1, jitter=0, blur_every=0, start="mean")
    r = dream(models[:1], [0, 2], SHAPE, MEAN, STD, cfg)
    logit, prob = dream_scores.score_along(r, models)  # (B, S): mean over the two networks of scale·(c+1)·sum(x)
    total = r.snapshots.flatten(2).sum(-1)  # (S, B)
    expected = (1.5 * torch.tensor([1.0, 3.0]) * total).T
    assert logit.shape == prob.shape == (2, 3) and torch.allclose(logit, expected, atol=1e-4)
    assert torch.allclose(logit[:, 0], torch.zeros(2))  # the mean image (0 in normalized units) scores 0
    curves = dream_scores.score_curves({"one": r}, models[1:])
    assert list(curves) == ["one, own score", "one, held-out networks"]
    steps, own, _ = curves["one, own score"]
    assert steps == [0, 1, 2] and torch.equal(own, r.target_logits().T)
    assert torch.allclose(curves["one, held-out networks"][1], (2 * torch.tensor([1.0, 3.0]) * total).T, atol=1e-4)


def test_first_step_early_gain_blur_effect_and_clamped_share():
    v = torch.tensor([[0.0, 0.5, 1.0], [0.0, 0.7, 0.9]])  # mean 0, 0.6, 0.95
    assert dream_scores.first_step_at([0, 5, 10], v, 0.55) == 5 and dream_scores.first_step_at([0, 5, 10], v, 0.9) == 10
    assert dream_scores.first_step_at([0, 5, 10], v, 0.96) is None and dream_scores.first_step_at([0, 1], torch.tensor([2.0, 0.0]), 1) == 0
    with pytest.raises(ValueError, match="one step per column"):
        dream_scores.first_step_at([0, 5], v, 0.5)
    assert dream_scores.early_gain(torch.arange(11.0).view(11, 1)) == pytest.approx(0.5)
    assert dream_scores.early_gain(torch.tensor([0.0, 8.0, 9.0, 10.0, 10.0])) == pytest.approx(0.9)
    assert np.isnan(dream_scores.early_gain(torch.ones(5, 2)))
    steps = torch.tensor([1.0, 1.0, 1.0, -2.0, 1.0, 1.0, 1.0, -2.0])  # every 4th step loses 2
    curve = torch.cat([torch.zeros(1), steps.cumsum(0)]).view(-1, 1).expand(-1, 3)
    assert dream_scores.blur_effect(curve, 4) == pytest.approx((-2.0, 1.0))
    on, off = dream_scores.blur_effect(curve, 0)
    assert np.isnan(on) and off == pytest.approx(2 / 8)  # the mean change of all steps
    lo, hi = pixel_bounds(MEAN, STD)  # -2 and 2
    img = torch.zeros(1, *SHAPE)
    img.view(-1)[:16] = hi.item()
    img.view(-1)[16:24] = lo.item()
    assert dream_scores.clamped_share(img, MEAN, STD) == pytest.approx(24 / 64)


def test_transfer_rows_leave_the_dreamer_out():
    # 4 networks × 2 classes; networks 0, 1 = the ensemble; network 0 dreamt alone and loves its own dream
    logit = torch.tensor([[100.0, 100.0], [4.0, 6.0], [1.0, 3.0], [2.0, 2.0]])
    prob, margin, hit = logit / 100, logit - 1, (logit > 1.5).float()
    ens = torch.tensor([[9.0, 9.0], [7.0, 7.0], [3.0, 5.0], [4.0, 4.0]])
    real = (torch.full((2, 5), 2.5), torch.full((2, 5), 0.5), torch.ones(2, 5), torch.ones(2, 5))
    rows = dream_scores.transfer_rows((logit, prob, margin, hit), (ens, ens / 100, ens - 1, torch.ones_like(ens)), real, 2)
    assert rows["single_own"]["logit"] == pytest.approx(100.0)
    assert rows["single_others"]["logit"] == pytest.approx(3.0)  # networks 1-3, never network 0
    assert rows["single_held"]["logit"] == pytest.approx(2.0) and rows["single_held"]["min_margin"] == 0.0
    assert rows["single_held"]["top1"] == pytest.approx(0.75)
    assert rows["ens_members"]["logit"] == pytest.approx(8.0) and rows["ens_held"]["logit"] == pytest.approx(4.0)
    assert rows["real_held"] == {"logit": 2.5, "prob": 0.5, "margin": 1.0, "min_margin": 1.0, "top1": 1.0}
    assert dream_scores.held_out_indices(4, 2) == [2, 3] and dream_scores.held_out_indices(4, 2, exclude=[3]) == [2]
    gap = dream_scores.per_network(ens - logit, [2, 3])  # per network: (3+5-1-3)/2 = 2, (4+4-2-2)/2 = 2
    assert gap == pytest.approx({"mean": 2.0, "sd": 0.0, "min": 2.0, "max": 2.0, "n": 2, "n_positive": 2})
    facts = ch04.transfer_facts(rows, gap)
    assert facts["own_word"] == "higher" and facts["held_word"] == "higher" and facts["order"] == "the order flips"
    assert facts["single_drop"] == "98 lower" and facts["ens_drop"] == "4 lower" and facts["drop_word"] == "less"
    assert facts["own_reason"].startswith(": it only has to please one network")
    assert facts["margin_word"] == "higher" and "super-stimuli" not in facts["super_sentence"]  # 2.0 < 2.5
    assert facts["top1_sentence"].startswith("Not every dream") and "83%" in facts["top1_sentence"]  # 5 of 6 pairs
    with pytest.raises(ValueError, match="no held-out network"):
        dream_scores.transfer_rows((logit[:3],) * 4, (ens[:3],) * 4, real, 2, dreamer=2)


def test_transfer_facts_other_outcomes():
    row = lambda lg, m=5.0, t=1.0: {"logit": lg, "prob": 0.9, "margin": m, "min_margin": m, "top1": t}  # noqa: E731
    rows = {"single_own": row(10.0), "single_others": row(9.0), "single_held": row(9.0, m=6.0),
            "ens_members": row(12.0), "ens_held": row(8.0, m=4.0), "real_held": row(3.0)}
    facts = ch04.transfer_facts(rows, {"mean": -1.0})
    assert facts["own_word"] == "lower" and facts["own_reason"] == "" and facts["held_word"] == "lower"
    assert facts["order"] == "the order flips"  # the single dream: lower under its own, higher under held-out
    assert facts["drop_word"] == "more" and facts["margin_word"] == "lower"
    assert facts["super_sentence"].startswith("Both dreams") and facts["top1_sentence"].startswith("Every final")
    assert ch04.transfer_facts(rows, {"mean": 1.0})["order"] == "the order stays the same"


def test_per_network_and_spread():
    d = torch.tensor([[1.0, 1.0], [-2.0, 0.0], [2.0, 4.0]])  # per-network means 1, -1, 3
    s = dream_scores.per_network(d, [0, 1, 2])
    assert s["mean"] == pytest.approx(1.0) and s["sd"] == pytest.approx((8 / 3) ** 0.5)
    assert (s["min"], s["max"], s["n"], s["n_positive"]) == (-1.0, 3.0, 3, 2)
    assert dream_scores.per_network(d, [1])["sd"] == 0.0
    with pytest.raises(ValueError, match="at least one network"):
        dream_scores.per_network(d, [])
    assert dream_scores.spread(torch.tensor([1.0, 3.0])) == pytest.approx({"mean": 2.0, "sd": 1.0, "min": 1.0, "max": 3.0})


def test_phrases():
    assert ch04.networks_phrase(range(20, 24)) == "4 held-out networks (20–23)"
    assert ch04.networks_phrase([2]) == "1 held-out network (network 2)"
    assert ch04.networks_phrase([1, 3], kind="other") == "2 other networks (1, 3)"
    assert ch04.networks_phrase([2], span=False) == "1 held-out network"
    assert ch04.when_phrase(5, 100) == "at step 5" and ch04.when_phrase(None, 6) == "at no step up to step 6"
    assert ch04.change_phrase(18.83, 15.27) == "3.56 lower" and ch04.change_phrase(1.0, 1.5) == "0.5 higher"
    assert ch04.threshold_phrase({"a": 3, "b": 7}, 0.99, 10) == "the mean of every curve reaches 0.99 by step 7"
    assert ch04.threshold_phrase({"a": None, "b": None}, 0.99, 10).startswith("no curve")
    assert ch04.threshold_phrase({"a": 3, "b": None}, 0.99, 10).startswith("the means of 1 of the 2 curves")
    assert "costs logit" in ch04.blur_phrase(-1.0, 0.5, 4) and "costs no logit" in ch04.blur_phrase(1.0, 0.5, 4)
    assert ch04.blur_phrase(float("nan"), 0.5, 0).startswith("No step")


def test_dream_similarity_and_its_facts():
    members = cnns(4)
    cfg = DreamConfig(steps=3)
    run = dr.dream_zoo(members, 2, [0, 1, 2], SHAPE, MEAN, STD, cfg)
    same = copy.deepcopy(members[0])
    halves = dr.half_ensemble_dreams([members[0], same], [0, 1, 2], SHAPE, MEAN, STD, cfg)  # identical halves
    x = torch.randn(6, *SHAPE, generator=torch.Generator().manual_seed(0))
    sim = dream_scores.dream_similarity(run, halves, x, torch.tensor([0, 1, 2, 0, 1, 2]))
    assert torch.allclose(sim["half"], torch.ones(3), atol=1e-5)
    assert torch.allclose(sim["single"], dream_scores.pixel_correlation(run.singles[0].images, run.singles[1].images))
    facts = ch04.similarity_facts(sim, n_ensemble=4)
    assert facts["half"] == 2 and facts["half_note"] == "" and facts["r_half_mean"] == pytest.approx(1.0, abs=1e-5)
    assert facts["half_word"] == "more closely" and facts["half_n_higher"] == 3
    assert facts["repro_sentence"].startswith("Averaging")
    flipped = ch04.similarity_facts({**sim, "half": sim["single"] - 0.1}, n_ensemble=2)
    assert flipped["half_word"] == "no more closely" and flipped["half_n_higher"] == 0
    assert flipped["half_note"].startswith(" (with an ensemble this small")
    with pytest.raises(ValueError, match="n_single_dreams ≥ 2"):
        dream_scores.dream_similarity(run._replace(singles=run.singles[:1]), halves, x, torch.tensor([0, 1, 2, 0, 1, 2]))
