"""Chapter 4's class-mean claim: a paired difference over dreamers and classes with an interval, a threshold, and
a wrong-class control that catches a dream which is merely closer to every class's mean."""
from __future__ import annotations

import pytest
import torch

from helpers.chapters import ch04_dream as ch04
from helpers.evaluation import dream_scores


def _protos(g, k=10):
    return torch.randn(k, 1, 8, 8, generator=g)


def test_prototype_matrix_diagonal_is_the_prototype_correlation():
    g = torch.Generator().manual_seed(0)
    means = _protos(g, 3)
    x = torch.cat([means, means])  # two copies: the class means are the patterns themselves
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    dreams = means[[2, 0]] + 0.1 * torch.randn(2, 1, 8, 8, generator=g)
    mat = dream_scores.prototype_matrix(dreams, [2, 0], x, y)
    assert mat.shape == (2, 2)
    assert torch.allclose(mat.diagonal(), dream_scores.prototype_correlation(dreams, [2, 0], x, y))
    assert (mat.diagonal() > 0.9).all() and (mat[0, 1] < 0.9) and (mat[1, 0] < 0.9)
    with pytest.raises(ValueError, match="no real image of class 5"):
        dream_scores.prototype_matrix(dreams, [5, 0], x, y)


def _matrices(own_ens, own_single, wrong_ens, wrong_single, k=10, j=2, seed=0, noise=0.01):
    g = torch.Generator().manual_seed(seed)

    def mat(own, wrong):
        m = wrong + noise * torch.randn(k, k, generator=g)
        return m - torch.diag(m.diagonal()) + torch.diag(own + noise * torch.randn(k, generator=g))

    return {"ensemble": mat(own_ens, wrong_ens), "singles": torch.stack([mat(own_single, wrong_single)
                                                                         for _ in range(j)])}


def test_a_class_specific_gain_is_confirmed():
    facts = ch04.prototype_facts(_matrices(0.6, 0.4, 0.2, 0.2), n_boot=300)
    assert facts["proto_word"] == "closer to" and facts["proto_verdict"] == "confirmed"
    assert facts["wrong_proto_word"] == "not distinguishably closer to"
    assert facts["proto_n_pairs"] == 20 and facts["proto_n_higher"] == 20 and facts["n_dreamers"] == 2
    assert facts["proto_control_sentence"].startswith("The gain is specific")


def test_a_dream_closer_to_every_class_mean_fails_the_control():
    facts = ch04.prototype_facts(_matrices(0.6, 0.4, 0.5, 0.3, seed=1, noise=0.05), n_boot=300)  # same gain elsewhere
    assert facts["proto_word"] == "closer to" and facts["wrong_proto_word"] == "closer to"
    assert facts["proto_verdict"] == "not confirmed"
    assert facts["proto_control_sentence"].startswith("The gain is not specific")


def test_seven_of_ten_classes_and_a_gain_below_the_threshold_are_not_enough():
    mixed = torch.tensor([0.05, 0.04, 0.06, 0.03, 0.05, 0.04, 0.02, -0.1, -0.12, -0.09])  # 7 of 10 higher
    ens = torch.diag(0.3 + mixed) + 0.1 * (1 - torch.eye(10))
    single = torch.diag(torch.full((10,), 0.3)) + 0.1 * (1 - torch.eye(10))
    facts = ch04.prototype_facts({"ensemble": ens, "singles": single[None]}, n_boot=300)
    assert facts["proto_n_higher"] == 7 and facts["proto_word"] == "not distinguishably closer to"
    assert facts["proto_verdict"] == "not confirmed"
    small = ch04.prototype_facts(_matrices(0.43, 0.40, 0.2, 0.2), n_boot=300)  # above 0, below δ = 0.05
    assert small["proto_word"] == "not distinguishably closer to" and small["proto_verdict"] == "not confirmed"


def test_one_class_has_no_control():
    facts = ch04.prototype_facts({"ensemble": torch.ones(1, 1), "singles": torch.zeros(2, 1, 1)}, n_boot=50)
    assert facts["proto_verdict"] == "not confirmed" and facts["wrong_proto_diff"] == "—"
