"""helpers.viz_sanity: the cascade figure's slider frames and the curves' metric menu."""
import torch

from helpers.evaluation import sanity
from helpers.evaluation.intervals import Interval
from helpers.figures import common as viz
from helpers.figures import sanity as viz_sanity
from helpers.zoo.architectures import build_model


def _result():
    torch.manual_seed(0)
    models = [build_model("lenet", 1, 10).eval() for _ in range(2)]
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return sanity.randomization_maps(["gradient", "guided_backprop"], models, x, [1, 2], names=["fc2", "fc3"])


def test_panels_hold_trained_and_randomized_single_and_mean_maps():
    r = _result()
    p = viz_sanity.panels(r.maps, image=1)["gradient"]
    assert p.shape == (3, 4, 28, 28) and p.abs().max() <= 1 + 1e-6
    assert torch.equal(p[:, 0], p[:1, 0].expand(3, -1, -1)) and torch.equal(p[0, 0], p[0, 1])
    assert not torch.allclose(p[2, 1], p[0, 1])  # randomized panels change along the cascade


def test_cascade_figure_slider_replaces_only_the_randomized_panels():
    r = _result()
    fig = viz_sanity.cascade_view(r, torch.rand(1, 28, 28), 0, title="t")
    n_methods = 2
    assert len(fig.data) == 1 + 4 * n_methods and len(fig.frames) == len(r.steps) == 3
    assert len(fig.frames[0].data) == 2 * n_methods  # columns 2 and 4 of every row
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["none", "down to fc3", "down to fc2"]
    expected = viz._levels(viz_sanity.panels(r.maps, 0)["guided_backprop"][2, 3])
    assert (fig.frames[2].data[3].z == expected).all()  # last frame, zoo-mean panel of the second method


def test_curves_figure_has_one_menu_entry_per_metric_and_bands():
    r = _result()
    iv = [Interval(1.0, 1.0, 1.0), Interval(0.5, 0.4, 0.6), Interval(0.2, 0.1, 0.3)]
    curves = {metric: {m: (iv, iv) for m in r.maps} for metric in ("spearman_abs", "ssim")}
    fig = viz_sanity.curves_view(r, curves, [["gradient", "guided_backprop"]], title="t")
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == [sanity.METRIC_LABELS["spearman_abs"], sanity.METRIC_LABELS["ssim"]]
    assert len(fig.data) == 2 * 2 * 4  # metrics × methods × (band, line) × (single, mean)
    visible = buttons[1].args[0]["visible"]
    assert sum(visible) == 8 and not any(visible[:8])
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert list(lines[0].x) == ["trained", "fc3", "fc2"] and list(lines[0].y) == [1.0, 0.5, 0.2]


def test_cascade_figure_has_no_empty_band_above_the_grid():
    """The top margin holds the title only and the rows fill the plot area: the first row starts right under the
    title, whatever the number of methods (it used to sit below a fixed 90 px margin)."""
    r = _result()
    for n in (2, 12):
        maps = {f"m{k}": r.maps["gradient"] for k in range(n)}
        fig = viz_sanity.cascade_view(sanity.Randomization("cascading", r.steps, maps), torch.rand(1, 28, 28), 0,
                                      title="t")
        viz.fit_layout(fig)
        plot_h = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
        assert fig.layout.margin.t <= 50
        assert abs(fig.layout.yaxis.domain[1] - 1.0) < 1e-9  # the first row at the top of the plot area
        row_px = (fig.layout.yaxis.domain[1] - fig.layout.yaxis.domain[0]) * plot_h
        assert 90 <= row_px <= 100  # a square map per row, not a share of a fixed height


def test_curves_without_an_interval_draw_no_band():
    r = _result()
    nan = float("nan")
    iv = [Interval(1.0, 1.0, 1.0), Interval(0.5, 0.4, 0.6), Interval(0.2, 0.1, 0.3)]
    point = [Interval(v.point, nan, nan) for v in iv]
    curves = {"ssim": {m: (iv, point) for m in r.maps}}
    fig = viz_sanity.curves_view(r, curves, [["gradient", "guided_backprop"]], title="t")
    assert len(fig.data) == 2 * 3  # methods × (single band, single line, zoo-mean line)
    assert sum(t.fill == "toself" for t in fig.data) == 2
