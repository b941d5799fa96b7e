"""The untrained control of chapters 1 and 2: contrasts trained − untrained with paired intervals that can fail."""
from __future__ import annotations

import torch

from helpers.chapters import controls
from helpers.evaluation import agreement
from helpers.evaluation.intervals import Interval


def _zoo(signal: torch.Tensor, noise: float, m: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return signal + noise * torch.randn(m, *signal.shape, generator=gen)


SIGNAL = torch.randn(8, 10, 10, generator=torch.Generator().manual_seed(0))


def test_a_learned_signal_is_learned_and_two_noise_zoos_are_not():
    trained, untrained = _zoo(SIGNAL, 0.7, 10, 1), _zoo(torch.zeros_like(SIGNAL), 1.0, 8, 2)
    tr, un, diff = controls.compare(trained, untrained, 200, 0.9, 0)
    assert tr["pairwise"].point > 0.5 and abs(un["pairwise"].point) < 0.05
    assert diff["pairwise"].point == agreement.contrast(trained, untrained, 200)["pairwise"].point
    assert abs(diff["pairwise"].point - (tr["pairwise"].point - un["pairwise"].point)) < 1e-6
    assert controls.word(diff["pairwise"], 0.05) == "learned"
    # the negative control: two untrained-like zoos of the same kind must not come out "learned"
    noise_a, noise_b = _zoo(SIGNAL, 3.0, 8, 3), _zoo(SIGNAL, 3.0, 8, 4)
    null = agreement.contrast(noise_a, noise_b, 200)
    assert all(controls.word(iv, 0.05) != "learned" for iv in null.values())
    rows = controls.rows(tr, un, diff, 0.05)
    assert [r["measure"] for r in rows] == list(controls.LABELS.values()) and rows[0]["verdict"] == "learned"


def test_an_untrained_zoo_that_shares_the_signal_is_not_learned():
    trained, untrained = _zoo(SIGNAL, 0.7, 10, 1), _zoo(SIGNAL, 0.5, 10, 5)
    diff = agreement.contrast(trained, untrained, 200)
    assert controls.word(diff["pairwise"], 0.05) == "not learned"
    assert "below 0.05" in controls.verdict(diff["pairwise"], 0.05)


def test_mean_map_parts_say_how_much_the_input_gives():
    inputs = SIGNAL[:, None]  # (N, 1, H, W): the "image" is the signal itself
    trained, untrained = _zoo(SIGNAL, 0.7, 10, 1), _zoo(torch.zeros_like(SIGNAL), 1.0, 8, 2)
    parts = controls.mean_map_parts(trained, untrained, inputs, 200, 0.9, 0)
    assert parts["input"].point > 0.9 and abs(parts["untrained"].point) < 0.2
    assert abs(parts["untrained_input"].point) < 0.2


def test_method_numbers_rank_by_the_contrast():
    iv = lambda p: Interval(p, p - 0.02, p + 0.02)  # noqa: E731
    diff = {"a": {"pairwise": iv(0.01), "gain": iv(0.3)}, "b": {"pairwise": iv(0.5), "gain": iv(0.05)}}
    parts = {"a": {"input": iv(0.9), "untrained": iv(0.8)}, "b": {"input": iv(0.1), "untrained": iv(0.0)}}
    out = controls.method_numbers(diff, parts, 0.05)
    assert out["untrained_order"] == "b, a" and out["untrained_pairwise_learned"] == "b"
    assert out["untrained_pairwise_not_learned"] == "a" and out["untrained_gain_left_open"] == "b"
    assert out["untrained_corr_input_hi"].endswith("(a)") and all(k.startswith("untrained_") for k in out)


def test_agreement_rows_use_the_names_of_the_prose():
    trained = _zoo(SIGNAL, 0.7, 10, 1)
    agree = agreement.agreement(trained, 100)
    rows = controls.agreement_rows(agree)
    assert [r["measure"] for r in rows] == ["single vs single", "single vs the others", "split-half",
                                           "split-half − single vs single"]
    assert rows[0]["estimate"] == f"{agree['pairwise'].point:.2f}" and float(rows[0]["low"]) <= float(rows[0]["high"])
    assert not any(k in str(rows) for k in ("pairwise", "single_vs_rest", "split_half'"))
