"""Figures and tables of the ensemble deep-dream chapter (helpers.viz_dream)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.figures import common as viz
from helpers.figures import dream as viz_dream
from helpers.attribution.dream import DreamConfig, dream

from ..attribution.test_dream import MEAN, SHAPE, STD, cnns


@pytest.fixture(scope="module")
def result():
    return dream(cnns(2), [0, 1, 2], SHAPE, MEAN, STD, DreamConfig(steps=4, snapshot_every=2))


def test_dream_slider_uses_the_shared_slider(result):
    snaps = (result.snapshots * 0.25 + 0.5).clamp(0, 1)
    fig = viz_dream.dream_slider_figure([snaps, snaps], ["a", "b"], ["0", "1", "2"], result.snapshot_steps)
    assert len(fig.data) == 1 and [f.name for f in fig.frames] == ["0", "2", "4"]
    assert fig.frames[0].data[0].source.startswith("data:image/png;base64,")
    expected = viz.slider(["0", "2", "4"], "step ", active=2)
    assert fig.layout.sliders[0].to_plotly_json() == fig.layout.sliders[0].__class__(expected).to_plotly_json()
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis.autorange == "reversed"  # square pixels
    assert list(fig.layout.xaxis.ticktext) == ["0", "1", "2"] and list(fig.layout.yaxis.ticktext) == ["a", "b"]
    assert fig.layout.xaxis.showticklabels and fig.layout.yaxis.showticklabels
    # the last frame is the first image shown, and the two rows are the same dream: the mosaic repeats
    mos = viz_dream.mosaic(np.stack([snaps[-1].numpy()] * 2), gap=1)
    assert np.array_equal(mos[:8], mos[9:])
    with pytest.raises(ValueError, match="matching"):
        viz_dream.dream_slider_figure([snaps], ["a"], ["0", "1"], result.snapshot_steps)
    with pytest.raises(ValueError, match="one label per row"):
        viz_dream.dream_slider_figure([snaps], ["a", "b"], ["0", "1", "2"], result.snapshot_steps)


def test_mosaic_layout():
    imgs = np.zeros((2, 3, 1, 4, 5))
    imgs[1, 2] = 0.5
    out = viz_dream.mosaic(imgs, gap=1, scale=2)
    assert out.shape == (2 * 8 + 1, 3 * 10 + 2)
    assert out[8].min() == 1.0  # the white gap between the rows
    assert np.all(out[9:, 22:] == 0.5) and np.all(out[:8, :10] == 0.0)


def test_curves_and_per_network_figures(result):
    tl, tp = result.target_logits().T.numpy(), result.target_probs().T.numpy()
    cf = viz_dream.curves_figure({"own": (list(range(5)), tl, tp), "x, held-out networks": (list(range(5)), tl, tp)},
                                 reference=(1.0, 0.5))
    assert len(cf.data) == 9  # band + line in two panels per series, one legend entry for the reference
    assert cf.data[5].line.dash == "dash" and cf.data[1].line.dash == "solid"
    assert np.allclose(cf.data[1].y, tl.mean(0))
    fig = viz_dream.zoo_scores_figure(np.arange(6.0).reshape(3, 2), np.ones((3, 2)), n_ensemble=2)
    assert [tr.name for tr in fig.data[:2]] == ["network 0's dream", "ensemble dream (2)"]
    assert list(fig.data[0].text) == ["own", "other", "other"]
    assert list(fig.data[1].text) == ["member", "member", "held-out"]
    assert np.allclose(fig.data[0].y, [0.5, 2.5, 4.5])
    with pytest.raises(ValueError, match="n_ensemble"):
        viz_dream.zoo_scores_figure(np.ones((3, 2)), np.ones((3, 2)), n_ensemble=3)


def test_tables():
    labels = viz_dream.transfer_labels(n_models=3, n_ensemble=2, n_real=40)
    assert labels["single_held"] == "network 0's dream, held-out network 2"
    assert labels["ens_members"] == "ensemble dream, members (networks 0–1)"
    assert viz_dream.transfer_labels(24, 20, 200)["real_held"] == "real test images (200), held-out networks 20–23"
    md = viz_dream.transfer_table({"single_own": {"logit": 12.345, "prob": 0.5}}, row_labels=labels,
                                  col_labels=viz_dream.TRANSFER_COLUMNS, caption="cap").data
    assert md.startswith("cap") and "| network 0's dream, network 0 (own) | 12.3 | 0.500 |" in md
    assert "| | target logit | softmax prob. |" in md
    sim = {"single": torch.tensor([0.2, 0.4]), "half": torch.tensor([0.9, 0.7])}
    st = viz_dream.similarity_table(sim, n_ensemble=20).data
    assert "| network 0 vs network 1 (each alone) | 0.300 | 0.100 | 0.200 | 0.400 |" in st
    assert "networks 0–9 vs networks 10–19 (two ensembles of 10)" in st
    with pytest.raises(ValueError, match="no rows"):
        viz_dream.transfer_table({})
