"""The shared-noise diagnostic sees the two-cluster zoo that ρ̄ ≈ SNR/(1+SNR) passes, and stays quiet on
exchangeable seeds, equal or unequally noisy."""
from __future__ import annotations

import pytest

from helpers.chapters import ch03_snr
from helpers.evaluation import shared_noise, snr
from helpers.evaluation.agreement import pairwise_interval


def test_two_clusters_of_seeds_are_found():
    two = shared_noise.synthetic_zoo(clusters=2, shared=1.0, noise=1.0)
    gap = shared_noise.cluster_gap(two)
    assert gap > 10 * shared_noise.DELTA and shared_noise.verdict(gap) == "shared noise"
    weak = shared_noise.synthetic_zoo(clusters=2, shared=0.3, noise=1.0, seed=1)
    assert shared_noise.cluster_gap(weak) > shared_noise.DELTA


@pytest.mark.parametrize("heterogeneity", [0.0, 0.4])
def test_exchangeable_seeds_give_no_gap(heterogeneity):
    for seed in range(3):
        z = shared_noise.synthetic_zoo(clusters=1, noise=1.4, heterogeneity=heterogeneity, seed=seed)
        assert abs(shared_noise.cluster_gap(z)) < shared_noise.DELTA / 2


def test_the_old_check_passes_the_two_cluster_zoo_while_its_snr_is_inflated():
    """ρ̄ ≈ SNR/(1+SNR) holds on the two-cluster zoo: the old check could not fail there."""
    two = shared_noise.synthetic_zoo(clusters=2, shared=1.0, noise=1.0)
    s = float(snr.energy_snr(two).mean())
    rho = pairwise_interval(two, n_boot=200)
    assert rho.low <= ch03_snr.predicted_rho(s) <= rho.high or abs(rho.point - ch03_snr.predicted_rho(s)) < 0.05
    own_noise_only = 1.0 / (1.0 + 1.0)  # signal energy over the seeds' own noise and the shared noise
    assert s > 1.5 * own_noise_only  # the shared noise is counted as signal


def test_too_small_a_zoo_is_refused():
    with pytest.raises(ValueError, match="needs ≥ 6 models and ≥ 4 images"):
        shared_noise.cluster_gap(shared_noise.synthetic_zoo(n_models=5))


def test_at_the_smallest_zoo_it_allows_exchangeable_seeds_stay_below_the_threshold():
    gaps = [shared_noise.cluster_gap(shared_noise.synthetic_zoo(n_models=shared_noise.MIN_MODELS, n_images=10,
                                                                noise=1.4, heterogeneity=0.3, seed=k))
            for k in range(10)]
    assert max(gaps) < shared_noise.DELTA


def test_shuffling_the_models_per_image_removes_the_gap():
    two = shared_noise.synthetic_zoo(clusters=2, shared=1.0, noise=1.0)
    assert abs(shared_noise.cluster_gap(shared_noise.shuffled(two))) < shared_noise.DELTA
    assert sorted(shared_noise.shuffled(two)[:, 0].flatten().tolist()) == sorted(two[:, 0].flatten().tolist())
