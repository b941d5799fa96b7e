"""Chapter 7's figures: maps under cascading randomization (slider over the layer) and similarity curves.

Maps are quantized like the other chapters' (:func:`helpers.viz.map_trace`, int8 levels); the slider's frames
replace only the randomized panels, so the page stays small.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..attribution.maps import normalize
from ..evaluation.intervals import Interval
from . import common

TOP_PX, BOTTOM_PX = 44, 90  # the title; the slider with its step labels
COLUMNS = ("model 0,<br>trained", "model 0,<br>randomized", "zoo mean,<br>trained", "zoo mean,<br>randomized")


def panels(maps: Mapping[str, torch.Tensor], image: int = 0) -> dict[str, torch.Tensor]:
    """Per method the four panels (S, 4, H, W) of one image at every cascade step: model 0 trained and randomized,
    the zoo's mean trained and randomized (each map divided by its 99th percentile of |value|, the means taken
    over maps divided by their largest |value|). ``maps[method]`` is (S, M, N, H, W)."""
    out = {}
    for m, a in maps.items():
        one = a[:, :, image]  # (S, M, H, W)
        mean = normalize(one, "maxabs").mean(1)  # (S, H, W)
        single = normalize(one[:, 0], "quantile")
        mean = normalize(mean, "quantile")
        out[m] = torch.stack([single[:1].expand_as(single), single, mean[:1].expand_as(mean), mean], dim=1)
    return out


def cascade_figure(image: torch.Tensor, panels_: Mapping[str, torch.Tensor], steps: Sequence[str],
                   title: str = "", cell_px: int = 96, gap_px: int = 28) -> go.Figure:
    """Rows = methods, columns = model 0 and the zoo mean, trained and randomized from the logits down to the layer
    the slider picks (step 0: nothing randomized). ``image`` (C, H, W) in [0, 1] heads the figure's first column.

    The height follows from the rows: ``cell_px`` per (square) map and ``gap_px`` between rows, room for the two-line
    column labels; the top margin holds only the title, so no empty band opens above the grid (the margin used to
    be a fixed 90 px, and the rows a fixed share of the height however many there were)."""
    methods = list(panels_)
    n_rows = len(methods) + 1
    plot_h = n_rows * cell_px + (n_rows - 1) * gap_px
    fig = make_subplots(rows=n_rows, cols=4, horizontal_spacing=0.02, vertical_spacing=gap_px / plot_h,
                        row_titles=["input"] + methods)
    fig.add_trace(common.image_trace(image), row=1, col=1)
    changing = []
    for r, m in enumerate(methods):
        for c in range(4):
            fig.add_trace(common.map_trace(panels_[m][0, c], showscale=(r == 0 and c == 3)), row=r + 2, col=c + 1)
            if c in (1, 3):
                changing.append((len(fig.data) - 1, m, c))
    top = fig.get_subplot(2, 1).yaxis.domain[1]  # column labels between the input and the first method's row
    for c, label in enumerate(COLUMNS):
        x0, x1 = fig.get_subplot(2, c + 1).xaxis.domain
        fig.add_annotation(text=label, x=(x0 + x1) / 2, xref="paper", y=top, yref="paper", yanchor="bottom",
                           showarrow=False, font=dict(size=11))
    names = [str(s) for s in range(len(steps))]
    fig.frames = [go.Frame(name=names[s], traces=[i for i, _, _ in changing],
                           data=[go.Heatmap(z=common._levels(panels_[m][s, c])) for _, m, c in changing])
                  for s in range(len(steps))]
    labels = ["none"] + [f"down to {s}" for s in steps[1:]]
    fig.update_layout(sliders=[common.slider(names, "randomized: ", labels=labels)],
                      title=dict(text=title, font=dict(size=14)), height=plot_h + TOP_PX + BOTTOM_PX,
                      margin=dict(l=10, r=120, t=TOP_PX, b=BOTTOM_PX))
    fig.update_annotations(font_size=10)
    common.square_axes(fig, n_rows * 4)
    return fig


def _band(x: list, iv: Sequence[Interval], colour: str, name: str, dash: str, group: str,
          visible: bool) -> list[go.Scatter]:
    low, high = [v.low for v in iv], [v.high for v in iv]
    line = go.Scatter(x=x, y=[v.point for v in iv], mode="lines+markers", name=name, legendgroup=group,
                      line=dict(color=colour, dash=dash), visible=visible)
    if all(math.isnan(v) for v in low + high):  # a point without an interval (NaN ends): no band
        return [line]
    return [go.Scatter(x=x + x[::-1], y=high + low[::-1], fill="toself", mode="lines", line=dict(width=0),
                       hoverinfo="skip",
                       fillcolor=_rgba(colour, 0.15), showlegend=False,
                       legendgroup=group, visible=visible),
            line]


BLUES = ("#004488", "#4477AA", "#88CCEE")  # Paul Tol's: signed variants
REDS = ("#882255", "#EE6677", "#CC3311")  # positive variants


def _shades(base: Sequence[str], n: int) -> list[str]:
    """``n`` distinct shades: ``base``, then ones interpolated between its neighbours."""
    if n <= len(base):
        return list(base[:n])
    rgb = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in base]
    out = []
    for k in range(n):
        u = k / (n - 1) * (len(rgb) - 1)
        i = min(int(u), len(rgb) - 2)
        f = u - i
        out.append("#" + "".join(f"{round(a + (b - a) * f):02x}" for a, b in zip(rgb[i], rgb[i + 1])))
    return out


def _rgba(colour: str, alpha: float) -> str:
    """``#rrggbb`` or ``rgb(r,g,b)`` as ``rgba(r,g,b,alpha)``."""
    if colour.startswith("#"):
        r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
        return f"rgba({r},{g},{b},{alpha})"
    return colour.replace("rgb", "rgba").replace(")", f",{alpha})")


def curves_figure(steps: Sequence[str], curves: Mapping[str, Mapping[str, tuple[list[Interval], list[Interval]]]],
                  pairs: Sequence[tuple[str, str]], metric_labels: Mapping[str, str], title: str = "") -> go.Figure:
    """Similarity to the trained map against the randomized layers, one panel per (signed, positive) pair: signed
    variants in blues, positive ones in reds, one shade per method (no two methods share a colour), single models
    solid with their band, the zoo's mean dashed with its band.
    ``curves[metric][method]`` = (single intervals, marginalized intervals), one per step; a menu picks the metric."""
    metrics = list(curves)
    cols = min(3, len(pairs))
    rows = -(-len(pairs) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"{p} vs {s}" for s, p in pairs],
                        shared_yaxes=True, vertical_spacing=0.18, horizontal_spacing=0.04)
    x = list(steps)
    owner = []
    colours = {**dict(zip(dict.fromkeys(s for s, _ in pairs), _shades(BLUES, len(pairs)))),
               **dict(zip(dict.fromkeys(p for _, p in pairs), _shades(REDS, len(pairs))))}
    for k, metric in enumerate(metrics):
        for j, (signed, pos) in enumerate(pairs):
            for method in (signed, pos):
                colour = colours[method]
                single, marginal = curves[metric][method]
                traces = (_band(x, single, colour, f"{method}, single", "solid", method, k == 0)
                          + _band(x, marginal, colour, f"{method}, zoo mean", "dash", method, k == 0))
                for tr in traces:
                    tr.showlegend = tr.showlegend is not False and j < len(pairs)
                    fig.add_trace(tr, row=j // cols + 1, col=j % cols + 1)
                    owner.append(k)
    styles = [{"visible": [o == k for o in owner]} for k in range(len(metrics))]
    fig.update_layout(updatemenus=[common.menu([metric_labels.get(m, m) for m in metrics], styles, y=1.18)],
                      title=dict(text=title, font=dict(size=14), x=0.35), height=330 * rows + 120,
                      margin=dict(l=50, r=10, t=110, b=60), legend=dict(font=dict(size=9)))
    fig.update_yaxes(range=[-0.4, 1.05])
    fig.update_xaxes(tickangle=45, tickfont=dict(size=9))
    return fig


def cascade_view(result, image: torch.Tensor, index: int, title: str = "") -> go.Figure:
    """:func:`cascade_figure` of a :class:`helpers.sanity.Randomization` for image ``index`` (``image``: its pixels
    in [0, 1])."""
    return cascade_figure(image, panels(result.maps, index), result.steps, title=title)


def curves_view(result, curves: Mapping[str, Mapping[str, tuple[list[Interval], list[Interval]]]],
                pairs: Sequence[Sequence[str]], title: str = "") -> go.Figure:
    """:func:`curves_figure` with the steps of ``result`` labelled by their layer and the metrics' names."""
    from ..evaluation.sanity import METRIC_LABELS

    steps = ["trained"] + list(result.steps[1:])
    return curves_figure(steps, curves, [tuple(p) for p in pairs], METRIC_LABELS, title=title)
