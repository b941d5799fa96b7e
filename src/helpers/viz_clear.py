"""Plotly figures for CLEAR maps (Kumar et al., CVPRW 2017) that work on the static site.

CLEAR maps are RGB pictures, embedded as small PNGs (``go.Image(source=…)``) so that a slider over M with one
frame per M stays light. Like :mod:`helpers.viz`, every slider position is precomputed.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from IPython.display import Markdown
from plotly.subplots import make_subplots

from .clear import PALETTE, palette_rgb
from .viz import _np, image_trace, map_trace, png_uri


def rgb_trace(rgb: np.ndarray | torch.Tensor) -> go.Image:
    """A CLEAR map (H, W, 3) as a pixelated image trace."""
    return go.Image(source=png_uri(rgb), hoverinfo="skip")


def _squares(fig: go.Figure, cols: int, rows: int = 1) -> None:
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed", constrain="domain")
    for i in range(1, rows * cols + 1):
        suffix = str(i) if i > 1 else ""
        fig.layout[f"yaxis{suffix}"].scaleanchor = f"x{suffix}"


def legend_figure(class_names: Sequence[str], palette: Sequence[str] = PALETTE, title: str = "CLEAR colours",
                  height: int = 110) -> go.Figure:
    """One coloured square per class, labelled with the class name (the CLEAR colour legend)."""
    colours = palette_rgb(palette, len(class_names))
    fig = go.Figure(go.Scatter(
        x=list(range(len(class_names))), y=[0] * len(class_names), mode="markers+text", text=list(class_names),
        textposition="bottom center", hoverinfo="text",
        marker=dict(symbol="square", size=26, color=[f"rgb{tuple(int(round(255 * v)) for v in c)}" for c in colours],
                    line=dict(width=1, color="black"))))
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=height, showlegend=False,
                      margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white")
    fig.update_xaxes(visible=False, range=[-0.6, len(class_names) - 0.4])
    fig.update_yaxes(visible=False, range=[-0.9, 0.5])
    return fig


def examples_figure(images: torch.Tensor, heatmaps: torch.Tensor, clear_rgb: np.ndarray, row_labels: Sequence[str],
                    title: str = "", columns: Sequence[str] = ("input", "binary heatmap (predicted class)",
                                                               "CLEAR map")) -> go.Figure:
    """Rows of input | one-class heatmap (normalised, [-1, 1]) | CLEAR map, as in Fig. 1 of Kumar et al. (2017).

    ``images`` (N, C, H, W) in [0, 1], ``heatmaps`` (N, H, W), ``clear_rgb`` (N, H, W, 3).
    """
    n = images.shape[0]
    if heatmaps.shape[0] != n or clear_rgb.shape[0] != n or len(row_labels) != n:
        raise ValueError("images, heatmaps, clear_rgb and row_labels must describe the same N images")
    fig = make_subplots(rows=n, cols=3, horizontal_spacing=0.01, vertical_spacing=0.04,
                        row_titles=list(row_labels), column_titles=list(columns))
    for i in range(n):
        fig.add_trace(image_trace(images[i]), row=i + 1, col=1)
        fig.add_trace(map_trace(heatmaps[i], showscale=i == 0), row=i + 1, col=2)
        fig.add_trace(rgb_trace(clear_rgb[i]), row=i + 1, col=3)
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=150 * n + 80, width=760,
                      margin=dict(l=10, r=190, t=70, b=10))
    fig.update_annotations(font_size=11)
    _squares(fig, 3, n)
    return fig


def marginal_clear_figure(images: torch.Tensor, single_rgb: np.ndarray, running_rgb: np.ndarray,
                          running_shares: np.ndarray | torch.Tensor, image_labels: Sequence[str],
                          class_names: Sequence[str], palette: Sequence[str] = PALETTE, single_label: str = "model 1",
                          title: str = "", height: int = 380) -> go.Figure:
    """Input | CLEAR of one model | CLEAR of the mean over M models | class shares of that mean, with a slider over M
    and a dropdown over images (frames replace only the mean and its bars, as in ``viz.running_mean_figure``).

    ``single_rgb`` (N, H, W, 3); ``running_rgb`` (M, N, H, W, 3); ``running_shares`` (M, N, K).
    """
    n_img, n_m = images.shape[0], running_rgb.shape[0]
    shares = _np(running_shares)
    if single_rgb.shape[0] != n_img or running_rgb.shape[1] != n_img or shares.shape[:2] != (n_m, n_img) \
            or len(image_labels) != n_img:
        raise ValueError("images, single_rgb, running_rgb, running_shares and image_labels must describe the same "
                         "N images (and running_* the same M)")
    colours = [f"rgb{tuple(int(round(255 * v)) for v in c)}" for c in palette_rgb(palette, len(class_names))]
    fig = make_subplots(rows=1, cols=4, horizontal_spacing=0.04, column_widths=[0.22, 0.22, 0.22, 0.34],
                        subplot_titles=["input", f"CLEAR, {single_label}", "CLEAR, mean over M models",
                                        "share of positive response mass"])

    def bars(m: int, n: int) -> go.Bar:
        return go.Bar(x=list(class_names), y=np.round(shares[m, n], 3), marker_color=colours, showlegend=False,
                      hovertemplate="class %{x}: %{y:.1%}<extra></extra>")

    changing = []
    for n in range(n_img):
        traces = [image_trace(images[n]), rgb_trace(single_rgb[n]), rgb_trace(running_rgb[0, n]), bars(0, n)]
        for c, tr in enumerate(traces):
            tr.visible = n == 0
            fig.add_trace(tr, row=1, col=c + 1)
        changing += [len(fig.data) - 2, len(fig.data) - 1]
    fig.frames = [go.Frame(name=str(m + 1), traces=changing,
                           data=[tr for n in range(n_img) for tr in (go.Image(source=png_uri(running_rgb[m, n])),
                                                                     bars(m, n))])
                  for m in range(n_m)]
    steps = [dict(method="animate", label=str(m + 1),
                  args=[[str(m + 1)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                           transition=dict(duration=0))]) for m in range(n_m)]
    buttons = [dict(method="restyle", label=image_labels[n],
                    args=[{"visible": [k // 4 == n for k in range(len(fig.data))]}]) for n in range(n_img)]
    fig.update_layout(
        title=dict(text=title, font=dict(size=14), y=0.98, yanchor="top"), height=height,
        margin=dict(l=10, r=10, t=110, b=70), plot_bgcolor="white",
        sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="M = "), pad=dict(t=10), len=0.9, x=0.05)],
        updatemenus=[dict(type="dropdown", buttons=buttons, direction="down", x=0.0, xanchor="left", y=1.42,
                          yanchor="top", showactive=True, active=0)],
    )
    fig.update_annotations(font_size=11)
    for c in range(1, 4):
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain", row=1, col=c)
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                         scaleanchor=f"x{c if c > 1 else ''}", constrain="domain", row=1, col=c)
    top = float(np.ceil(shares.max() * 10) / 10) if shares.size else 1.0  # fixed across frames
    fig.update_yaxes(range=[0, min(1.0, top)], tickformat=".0%", row=1, col=4)
    fig.update_xaxes(type="category", tickangle=0, row=1, col=4)
    return fig


def confusion_figure(counts: torch.Tensor, class_names: Sequence[str], title: str = "") -> go.Figure:
    """(K, K) counts: rows = top class of the CLEAR map, columns = second-best class by logit."""
    c = _np(counts)
    fig = go.Figure(go.Heatmap(z=c, x=list(class_names), y=list(class_names), colorscale="Blues", zmin=0,
                               text=c, texttemplate="%{text}", colorbar=dict(title="images"),
                               hovertemplate="top class %{y}, second-best %{x}: %{z}<extra></extra>"))
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=420, width=480,
                      xaxis_title="second-best class by logit", yaxis_title="class with the largest CLEAR share",
                      margin=dict(l=60, r=10, t=50, b=50))
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category", autorange="reversed")
    return fig


def stats_markdown(rows: dict[str, list[dict]], caption: str = "") -> Markdown:
    """A table of :func:`helpers.clear.summarize` rows, one block per setting (e.g. single, marginalized)."""
    pct = (lambda v: "–" if v != v else f"{100 * v:.1f}%")
    lines = ([caption, ""] if caption else []) + [
        "| CLEAR maps of | prediction | maps | share: predicted | share: true | share: 2nd-best | top: predicted "
        "| top: true | top: 2nd-best |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for setting, rs in rows.items():
        for r in rs:
            lines.append(f"| {setting} | {r['group']} | {r['n']} | {pct(r['share_pred'])} | {pct(r['share_true'])} | "
                         f"{pct(r['share_second'])} | {pct(r['top_is_pred'])} | {pct(r['top_is_true'])} | "
                         f"{pct(r['top_is_second'])} |")
    return Markdown("\n".join(lines))
