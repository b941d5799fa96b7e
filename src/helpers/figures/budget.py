"""Chapter 8's figures: quality against compute (log budget axis, one line per estimator, intervals as bands, a menu
for the measure and base method) and a gallery of maps at equal budgets with a slider over the budget.
"""
from __future__ import annotations

from typing import Sequence
import plotly.graph_objects as go
import torch
from plotly.colors import DEFAULT_PLOTLY_COLORS
from plotly.subplots import make_subplots

from .common import _levels, image_trace, map_trace, menu, menu_label, slider, square_axes


def _rgba(colour: str, alpha: float) -> str:
    return colour.replace("rgb(", "rgba(").replace(")", f",{alpha})")


def quality_figure(panels: dict[str, dict[str, tuple[Sequence[int], Sequence]]], xlabel: str,
                   title: str = "") -> go.Figure:
    """``panels[label][estimator] = (budgets, intervals)``; the menu picks the panel (measure × base method)."""
    fig, owner = go.Figure(), []
    for p, (label, series) in enumerate(panels.items()):
        for e, (name, (xs, ivs)) in enumerate(series.items()):
            colour, xs = DEFAULT_PLOTLY_COLORS[e % len(DEFAULT_PLOTLY_COLORS)], list(xs)
            low, high = [round(iv.low, 4) for iv in ivs], [round(iv.high, 4) for iv in ivs]
            fig.add_trace(go.Scatter(x=xs + xs[::-1], y=high + low[::-1], fill="toself", line=dict(width=0),
                                     fillcolor=_rgba(colour, 0.18), hoverinfo="skip", showlegend=False,
                                     legendgroup=name, visible=p == 0))
            fig.add_trace(go.Scatter(x=xs, y=[round(iv.point, 4) for iv in ivs], mode="lines+markers", name=name,
                                     legendgroup=name, line=dict(color=colour), visible=p == 0))
            owner += [p, p]
    labels = list(panels)
    layout: dict = {}
    if len(labels) > 1:
        layout["updatemenus"] = [menu(labels, [{"visible": [o == k for o in owner]} for k in range(len(labels))],
                                      y=1.18)]
        layout["annotations"] = [menu_label("◀ measure and base method", 0.42, 1.14)]
    fig.update_layout(title=dict(text=title, y=0.98), xaxis=dict(type="log", title=xlabel),
                      yaxis_title="mean over replicates and images (band: interval)", height=460,
                      margin=dict(l=60, r=10, t=110, b=50), **layout)
    return fig


def gallery_figure(images: torch.Tensor, maps: dict[str, torch.Tensor], budgets: Sequence[int],
                   title: str = "") -> go.Figure:
    """Rows: images (R, C, H, W) in [0, 1]; columns: the input and one estimator each; ``maps[name]`` (B, R, H, W)
    normalized maps at ``budgets`` (an estimator that cannot spend a budget repeats its largest one); a slider
    moves every map to the chosen budget (precomputed frames, no kernel)."""
    names, n_rows = list(maps), images.shape[0]
    cols = 1 + len(names)
    fig = make_subplots(rows=n_rows, cols=cols, horizontal_spacing=0.02, vertical_spacing=0.03,
                        subplot_titles=["input", *names] + [""] * (cols * (n_rows - 1)))
    idx = []
    for r in range(n_rows):
        fig.add_trace(image_trace(images[r]), row=r + 1, col=1)
        for c, name in enumerate(names):
            tr = map_trace(maps[name][0, r], showscale=r == 0 and c == len(names) - 1)
            idx.append(len(fig.data))
            fig.add_trace(tr, row=r + 1, col=2 + c)
    fig.frames = [go.Frame(name=str(b), traces=idx,
                           data=[go.Heatmap(z=_levels(maps[name][k, r])) for r in range(n_rows) for name in names])
                  for k, b in enumerate(budgets)]
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=150 * n_rows + 170,
                      margin=dict(l=10, r=10, t=80, b=70), sliders=[slider([str(b) for b in budgets],
                                                                          "backward passes per image = ")])
    fig.update_annotations(font_size=11)
    square_axes(fig, n_rows * cols)
    return fig
