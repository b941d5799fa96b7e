"""CLEAR figures use the book's shared controls (viz.slider, viz.menu, viz.square_axes) and stay consistent."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.evaluation import clear_stats as clear
from helpers.figures import clear as viz_clear
from helpers.evaluation.intervals import Interval


def _rgb(*shape: int) -> np.ndarray:
    return np.random.default_rng(0).random((*shape, 5, 5, 3)).astype(np.float32)


def test_examples_figure_columns_and_square_pixels():
    images, heat = torch.rand(2, 1, 5, 5), torch.rand(2, 5, 5) * 2 - 1
    fig = viz_clear.examples_figure(images, heat, [_rgb(2), _rgb(2)], ["a", "b"],
                                    columns=("input", "heatmap", "positive", "negative"))
    assert len(fig.data) == 2 * 4
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis8.scaleanchor == "x8"
    assert fig.layout.yaxis.autorange == "reversed"
    with pytest.raises(ValueError, match="4 columns need 4 titles"):
        viz_clear.examples_figure(images, heat, [_rgb(2), _rgb(2)], ["a", "b"])
    with pytest.raises(ValueError, match="same N images"):
        viz_clear.examples_figure(images, heat, _rgb(3), ["a", "b"])


def test_marginal_figure_slider_menu_and_frames():
    n_img, n_m, k = 3, 4, 10
    shares = torch.rand(n_m, n_img, k)
    fig = viz_clear.marginal_clear_figure(
        torch.rand(n_img, 1, 5, 5), [_rgb(n_img), _rgb(n_img)], [_rgb(n_m, n_img), _rgb(n_m, n_img)], shares,
        [f"image {i}" for i in range(n_img)], [str(c) for c in range(k)],
        single_labels=["model 0, +", "model 0, −"], running_labels=["mean, +", "mean, −"], m_values=[1, 2, 4])
    per_image = 1 + 2 + 2 + 1
    assert len(fig.data) == n_img * per_image
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["1", "2", "4"] and [f.name for f in fig.frames] == ["1", "2", "4"]
    assert list(steps[2].args[0]) == ["4"] and steps[2].method == "animate"
    # each frame replaces the two running panels and the bars of every image
    assert len(fig.frames[0].data) == n_img * 3 and len(fig.frames[0].traces) == n_img * 3
    frame_bars = fig.frames[2].data[2]
    np.testing.assert_allclose(frame_bars.y, np.round(shares[3, 0].numpy(), 3))
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == [f"image {i}" for i in range(n_img)]
    visible = buttons[1].args[0]["visible"]
    assert sum(visible) == per_image and visible[per_image:2 * per_image] == [True] * per_image
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis6.scaleanchor is None  # bars: free axis
    assert fig.layout.yaxis6.tickformat == ".0%"


def test_marginal_figure_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same"):
        viz_clear.marginal_clear_figure(torch.rand(2, 1, 5, 5), _rgb(2), _rgb(3, 3), torch.rand(3, 2, 10),
                                        ["a", "b"], [str(c) for c in range(10)])
    with pytest.raises(ValueError, match="one label per single"):
        viz_clear.marginal_clear_figure(torch.rand(2, 1, 5, 5), _rgb(2), _rgb(3, 2), torch.rand(3, 2, 10),
                                        ["a", "b"], [str(c) for c in range(10)], single_labels=["x", "y"])


def test_stats_markdown_rows_and_labels():
    iv = Interval(0.25, 0.2, 0.3)
    summary = clear.Summary({("single", "wrong", "mass: predicted"): 0.25,
                             ("marginalized", "wrong", "mass: predicted"): float("nan")},
                            {("single", "wrong", "mass: predicted"): torch.full((5,), 0.25),
                             ("marginalized", "wrong", "mass: predicted"): torch.full((5,), float("nan"))},
                            {("single", "wrong"): 8, ("marginalized", "wrong"): 0})
    md = viz_clear.stats_markdown({"unit start": summary}, ["mass: predicted"], caption="cap").data
    lines = md.splitlines()
    assert lines[0] == "cap" and "| unit start | single | wrong | 8 | 25.0% [25.0%, 25.0%] |" in lines
    assert "| unit start | marginalized | wrong | 0 | – |" in lines
    assert viz_clear.example_labels(torch.tensor([3, 9]), torch.tensor([3, 4]), [str(c) for c in range(10)]) == [
        "✓ true 3, pred 3", "✗ true 9, pred 4"]
    assert viz_clear.class_list([4, 6], [str(c) for c in range(10)]) == "4 and 6"
    assert viz_clear.class_list([4, 6, 1], [str(c) for c in range(10)]) == "4, 6 and 1"
    assert str(iv) == "0.25 [0.20, 0.30]"


def test_the_share_axis_is_labelled_outside_the_image_panels():
    """Its % ticks on the left were drawn over the last CLEAR panel (issue "A page a reader trusts")."""
    fig = viz_clear.marginal_clear_figure(torch.rand(1, 1, 5, 5), _rgb(1), _rgb(2, 1), torch.rand(2, 1, 10),
                                          ["a"], [str(c) for c in range(10)])
    bars = fig.layout.yaxis4
    assert bars.tickformat == ".0%" and bars.side == "right" and fig.layout.margin.r >= 40
    assert fig.layout.xaxis4.domain[0] > fig.layout.xaxis3.domain[1]  # the bar panel starts right of the images


def test_joint_normalize_keeps_class_strengths_and_ignores_a_hot_pixel():
    r = torch.zeros(1, 2, 10, 10)
    r[0, 0] = 1.0
    r[0, 1] = 0.5
    r[0, 0, 0, 0] = 100.0  # one extreme pixel
    out = viz_clear.joint_normalize(r)
    assert out.abs().max() == 1 and out[0, 0, 5, 5] == 1.0  # the hot pixel does not make the class pale
    assert 0.45 < float(out[0, 1, 5, 5]) < 0.55  # the weaker class stays about half as bright
    assert torch.equal(viz_clear.joint_normalize(torch.zeros(1, 2, 3, 3)), torch.zeros(1, 2, 3, 3))
