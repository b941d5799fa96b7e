"""Line and matrix figures: curves with intervals as error bars or bands, and labelled heatmaps of a matrix.
"""
from __future__ import annotations

from typing import Sequence
import numpy as np
import plotly.graph_objects as go

from .common import line_colours
import torch

from .common import _np


def lines_figure(x: Sequence[float], series: dict[str, Sequence[float]], xlabel: str, ylabel: str,
                 title: str = "", reference: tuple[Sequence[float], str] | None = None,
                 log_y: bool = False, bands: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None
                 ) -> go.Figure:
    """One line per series against ``x`` (no two share a colour), optionally each with its interval as a shaded
    band (``bands[name] = (lows, highs)``) and a dashed reference curve."""
    colours = line_colours(len(series))
    fig = go.Figure()
    for (k, v), c in zip(series.items(), colours):
        if bands and k in bands:
            low, high = bands[k]
            r, g, b = (int(c[i:i + 2], 16) for i in (1, 3, 5)) if c.startswith("#") else (128, 128, 128)
            fig.add_trace(go.Scatter(x=list(x) + list(x)[::-1], y=list(high) + list(low)[::-1], fill="toself",
                                     mode="lines", line=dict(width=0), fillcolor=f"rgba({r},{g},{b},0.15)",
                                     hoverinfo="skip", showlegend=False, legendgroup=k, name=f"{k} interval"))
        fig.add_trace(go.Scatter(x=list(x), y=list(v), mode="lines+markers", name=k, line=dict(color=c),
                                 legendgroup=k))
    if reference is not None:
        fig.add_trace(go.Scatter(x=list(x), y=list(reference[0]), mode="lines", name=reference[1],
                                 line=dict(dash="dash", color="black", width=3)))
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, height=420,
                      margin=dict(l=60, r=10, t=50, b=50), yaxis_type="log" if log_y else None)
    return fig


def matrix_figure(values: np.ndarray | torch.Tensor, row_labels: Sequence[str], col_labels: Sequence[str],
                  colorbar: str, title: str = "", log: bool = False, digits: int = 2) -> go.Figure:
    """A heatmap table (rows × columns) with each value written in its cell; ``log`` colours by log10."""
    v = np.asarray(_np(values), dtype=np.float64)
    if v.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"values have shape {v.shape}, labels give {(len(row_labels), len(col_labels))}: "
                         "pass one label per row and per column")
    colour = np.log10(np.clip(v, 1e-12, None)) if log else v
    fig = go.Figure(go.Heatmap(z=colour, x=list(col_labels), y=list(row_labels), text=np.round(v, digits),
                               texttemplate="%{text}", colorscale="Viridis", hoverongaps=False,
                               colorbar=dict(title=f"log10 {colorbar}" if log else colorbar)))
    fig.update_layout(title=title, height=max(300, 28 * len(row_labels) + 140), yaxis_autorange="reversed",
                      margin=dict(l=120, r=10, t=50, b=80))
    return fig


def interval_figure(x: Sequence[float], intervals: Sequence, name: str, xlabel: str, ylabel: str, title: str = "",
                    reference: tuple[Sequence[float], str] | None = None) -> go.Figure:
    """Point estimates with their confidence band (``intervals``: objects with point/low/high/level) against ``x``,
    optionally with a dashed reference curve."""
    x = list(x)
    low, high = [iv.low for iv in intervals], [iv.high for iv in intervals]
    level = intervals[0].level if intervals else 0.9
    fig = go.Figure([
        go.Scatter(x=x + x[::-1], y=high + low[::-1], fill="toself", line=dict(width=0),
                   fillcolor="rgba(31,119,180,0.2)", hoverinfo="skip", name=f"{level:.0%} interval (models, images)"),
        go.Scatter(x=x, y=[iv.point for iv in intervals], mode="lines+markers", name=name,
                   line=dict(color="rgb(31,119,180)")),
    ])
    if reference is not None:
        fig.add_trace(go.Scatter(x=x, y=list(reference[0]), mode="lines", name=reference[1],
                                 line=dict(dash="dash", color="gray")))
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, height=400,
                      margin=dict(l=60, r=10, t=50, b=50), legend=dict(x=0.45, y=0.1))
    return fig
