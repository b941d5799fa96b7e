import numpy as np
import pytest
import torch

from helpers.figures import common as viz
from helpers.figures import lines as line_figures
from helpers.figures import maps as map_figures


def test_running_mean_figure_structure():
    n, s, m = 3, 2, 5
    images = torch.rand(n, 1, 8, 8)
    singles = torch.rand(s, n, 8, 8) * 2 - 1
    running = torch.rand(m, n, 8, 8) * 2 - 1
    fig = map_figures.running_mean_figure(images, singles, running, ["a", "b", "c"], ["m0", "m1"])
    per_image = s + 2
    assert len(fig.data) == n * per_image
    assert [tr.visible for tr in fig.data] == [k < per_image for k in range(n * per_image)]
    assert len(fig.frames) == m and [f.name for f in fig.frames] == ["1", "2", "3", "4", "5"]
    mean_idx = [k * per_image + per_image - 1 for k in range(n)]
    assert list(fig.frames[0].traces) == mean_idx
    z = np.asarray(fig.frames[4].data[1].z)
    assert z.dtype == np.int8 and fig.data[3].zmax == viz.LEVELS
    np.testing.assert_allclose(z / viz.LEVELS, running[4, 1].numpy(), atol=0.5 / viz.LEVELS + 1e-6)
    assert len(fig.layout.sliders[0].steps) == m
    buttons = fig.layout.updatemenus[0].buttons
    assert buttons[2].args[0]["visible"] == [k // per_image == 2 for k in range(n * per_image)]


def test_rgb_inputs_become_image_traces():
    tr = viz.image_trace(torch.rand(3, 4, 4))
    assert tr.type == "image" and np.asarray(tr.z).shape == (4, 4, 3)
    assert viz.image_trace(torch.rand(1, 4, 4)).type == "heatmap"


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="same N images"):
        map_figures.running_mean_figure(torch.rand(2, 1, 4, 4), torch.rand(1, 3, 4, 4), torch.rand(2, 2, 4, 4), ["a", "b"],
                                ["m"])


def test_show_in_book_mode_writes_html_without_plotlyjs(monkeypatch):
    import plotly.graph_objects as go

    shown = []
    monkeypatch.setenv(viz.ENV_BOOK, "1")
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    viz.show(go.Figure(go.Scatter(y=[1, 2])))
    html = shown[0].data
    assert "plotly-graph-div" in html and "cdn.plot.ly" not in html and len(html) < 100_000


def test_m_values_limit_the_frames():
    images, singles, running = torch.rand(2, 1, 4, 4), torch.rand(1, 2, 4, 4), torch.rand(8, 2, 4, 4)
    fig = map_figures.grid_figure([images], [singles], [running], ["g"], ["in", "s", "mean"], m_values=[1, 2, 4, 8])
    assert [f.name for f in fig.frames] == ["1", "2", "4", "8"]
    np.testing.assert_allclose(np.asarray(fig.frames[3].data[0].z) / viz.LEVELS, running[7, 0].numpy(), atol=0.006)
    with pytest.raises(ValueError, match="m_values must start at 1"):
        map_figures.grid_figure([images], [singles], [running], ["g"], ["in", "s", "mean"], m_values=[2, 9])


def test_matrix_figure_writes_values_and_colours_by_log():
    v = np.array([[1.0, 10.0], [100.0, 0.5], [2.0, 3.0]])
    fig = line_figures.matrix_figure(v, ["a", "b", "c"], ["x", "y"], "SNR", log=True)
    tr = fig.data[0]
    np.testing.assert_allclose(np.asarray(tr.z), np.log10(v))
    np.testing.assert_allclose(np.asarray(tr.text, dtype=float), v)
    assert list(tr.y) == ["a", "b", "c"] and tr.colorbar.title.text == "log10 SNR"
    with pytest.raises(ValueError, match="one label per row"):
        line_figures.matrix_figure(v, ["a", "b"], ["x", "y"], "SNR")


def test_layer_menu_toggles_opacity_and_frames_cover_every_layer():
    n, s, m, layers = 2, 1, 3, 3
    images = torch.rand(n, 1, 4, 4)
    singles = torch.rand(layers, s, n, 4, 4) * 2 - 1
    running = torch.rand(layers, m, n, 4, 4) * 2 - 1
    fig = map_figures.running_mean_figure(images, singles, running, ["a", "b"], ["m0"], layer_labels=["x", "y", "z"])
    per_image = 1 + layers * (s + 1)
    assert len(fig.data) == n * per_image
    image_menu, layer_menu = fig.layout.updatemenus
    assert [b.label for b in layer_menu.buttons] == ["x", "y", "z"]
    opacity = layer_menu.buttons[2].args[0]["opacity"]
    # image 0: input (always shown), layer x (single, mean), y, z
    assert opacity[:per_image] == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    assert image_menu.buttons[1].args[0]["visible"] == [k >= per_image for k in range(n * per_image)]
    assert [tr.opacity for tr in fig.data[:per_image]] == [None, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    frame = fig.frames[2]
    assert len(frame.traces) == n * layers and len(fig.frames) == m
    k = list(frame.traces).index(per_image + 1 + 2 * (s + 1) + s)  # image 1, layer z, mean panel
    np.testing.assert_allclose(np.asarray(frame.data[k].z) / viz.LEVELS, running[2, 2, 1].numpy(), atol=0.006)


def test_class_map_figure_puts_the_true_class_first():
    per_class = torch.randn(4, 3, 2, 5, 5)  # K=4 classes, M=3 models, N=2 images
    labels = torch.tensor([2, 0])
    fig = map_figures.class_map_figure(torch.rand(2, 1, 5, 5), per_class, labels, ["a", "b"], list("pqrs"), ["m0"])
    assert [b.label for b in fig.layout.updatemenus[1].buttons] == ["true class", "class p", "class q", "class r",
                                                                      "class s"]
    from helpers.attribution.maps import normalize

    first_single = np.asarray(fig.data[1].z) / viz.LEVELS  # image 0, layer "true class" = class 2, model 0
    np.testing.assert_allclose(first_single, normalize(per_class[2, 0, 0], "quantile").numpy(), atol=0.006)


def test_rank_labels_name_the_true_class_first():
    assert viz.rank_labels(3) == ["true class", "runner-up", "third"]
    labels = viz.rank_labels(12)
    assert len(labels) == 12 and labels[9] == "tenth" and labels[11] == "rank 12"


def test_lines_never_share_a_colour():
    from helpers.figures.common import line_colours
    from helpers.figures.lines import lines_figure

    for n in (3, 11, 15, 24):
        assert len(set(line_colours(n))) == n
    fig = lines_figure([1, 2], {f"m{k}": [0.1 * k, 0.2] for k in range(11)}, "M", "r")
    assert len({t.line.color for t in fig.data}) == 11


def test_fit_layout_fits_the_column_and_makes_room_for_menus():
    """Issue 25: a figure wider than the column is narrowed, a single-entry menu is dropped with its label, the
    title sits above the menus, each label right of its dropdown, and an open 15-entry list fits in the figure."""
    import plotly.graph_objects as go

    from helpers.figures import common

    long = common.menu([f"method {k}" for k in range(15)], [{} for _ in range(15)], y=1.1)
    single = common.menu(["only"], [{}], x=0.6, y=1.1)
    fig = go.Figure(go.Scatter(y=[1, 2]), layout=dict(
        width=1010, height=300, title="A title", margin=dict(t=40, b=40, l=10, r=10), updatemenus=[long, single],
        annotations=[common.menu_label("◀ choose the method", 0.1, 1.1),
                     common.menu_label("◀ the only one", 0.7, 1.1)]))
    common.fit_layout(fig)
    lay = fig.layout
    assert lay.width <= common.COLUMN_PX and len(lay.updatemenus) == 1
    assert [a.text for a in lay.annotations] == ["◀ choose the method"]
    plot_h = lay.height - lay.margin.t - lay.margin.b
    menu_top = lay.margin.t - (lay.updatemenus[0].y - 1) * plot_h
    assert menu_top >= 17 * 1.3  # below the title's line
    assert lay.height >= menu_top + 15 * common.MENU_ENTRY_PX
    plot_w = lay.width - lay.margin.l - lay.margin.r
    assert lay.annotations[0].x * plot_w >= len("method 14") * 7  # right of the dropdown's header


def test_lines_figure_draws_an_interval_band_per_series():
    from helpers.figures import lines

    fig = lines.lines_figure([1, 2], {"a": [0.1, 0.2], "b": [0.3, 0.4]}, "M", "r",
                             bands={"a": ([0.0, 0.1], [0.2, 0.3])})
    fills = [t for t in fig.data if t.fill == "toself"]
    assert len(fills) == 1 and list(fills[0].y) == [0.2, 0.3, 0.1, 0.0]
    assert len({t.line.color for t in fig.data if t.fill != "toself"}) == 2
