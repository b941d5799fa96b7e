"""Plotly figures that work on the static site: every slider position is precomputed as a frame.

The browser switches frames with no Python kernel, so sliders work in the built book, on Colab and in JupyterLab.
Display goes through :func:`show`: in the book build it writes HTML that relies on the plotly.js the book ships once
(``_vendor/plotly.min.js``); on Colab and in Jupyter it uses plotly's own renderer.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

ENV_BOOK = "HELPERS_BOOK_BUILD"
DIVERGING = "RdBu_r"


def show(fig: go.Figure) -> None:
    """Display ``fig`` so that it survives papermill and jupyter-book v1 offline (see toolchain notes)."""
    from IPython.display import HTML, display

    if os.environ.get(ENV_BOOK) == "1":
        display(HTML(fig.to_html(full_html=False, include_plotlyjs=False, auto_play=False,
                                     config={"typesetMath": False})))
    elif "google.colab" in sys.modules:
        fig.show(renderer="colab")
    else:
        fig.show()


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _round(a: np.ndarray) -> np.ndarray:
    return np.round(a.astype(np.float32), 3)  # 3 decimals are invisible on screen and keep pages small


def image_trace(img: torch.Tensor | np.ndarray) -> go.BaseTraceType:
    """An input image: (1, H, W) or (H, W) grey in [0, 1] as a heatmap, (3, H, W) RGB as an image trace."""
    a = _np(img)
    if a.ndim == 3 and a.shape[0] == 3:
        return go.Image(z=(a.transpose(1, 2, 0) * 255).round().astype(np.uint8), hoverinfo="skip")
    a = a.reshape(a.shape[-2:])
    return go.Heatmap(z=_round(a), colorscale="gray", zmin=0, zmax=1, showscale=False, hoverinfo="skip")


def map_trace(m: torch.Tensor | np.ndarray, showscale: bool = False) -> go.Heatmap:
    """A normalised signed map in [-1, 1] on a fixed diverging scale (red = raises the logit)."""
    return go.Heatmap(z=_round(_np(m)), colorscale=DIVERGING, zmin=-1, zmax=1, showscale=showscale,
                      colorbar=dict(title="norm.", len=0.8) if showscale else None,
                      hovertemplate="x=%{x} y=%{y}<br>%{z:.2f}<extra></extra>")


def running_mean_figure(images: torch.Tensor, singles: torch.Tensor, running: torch.Tensor,
                        image_labels: Sequence[str], single_labels: Sequence[str],
                        title: str = "", height: int = 330) -> go.Figure:
    """Input | single-model maps | mean over M models, with a slider over M and a dropdown over images.

    ``images`` (N, C, H, W) in [0, 1]; ``singles`` (S, N, H, W) and ``running`` (M, N, H, W) normalised maps,
    ``running[k]`` being the mean over the first k+1 models. The slider's frames replace only the mean panels;
    the dropdown toggles which image's traces are visible, so the two controls do not overwrite each other.
    """
    n_img, n_single, n_m = images.shape[0], singles.shape[0], running.shape[0]
    if singles.shape[1] != n_img or running.shape[1] != n_img or len(image_labels) != n_img:
        raise ValueError("images, singles, running and image_labels must describe the same N images")
    cols = n_single + 2
    fig = make_subplots(rows=1, cols=cols, horizontal_spacing=0.02,
                        subplot_titles=["input", *single_labels, "mean over M models"])
    mean_idx = []
    for n in range(n_img):
        traces = [image_trace(images[n])] + [map_trace(singles[s, n]) for s in range(n_single)]
        traces.append(map_trace(running[0, n], showscale=True))
        for c, tr in enumerate(traces):
            tr.visible = n == 0
            fig.add_trace(tr, row=1, col=c + 1)
        mean_idx.append(len(fig.data) - 1)
    per_image = cols
    fig.frames = [go.Frame(name=str(m + 1), traces=mean_idx,
                           data=[go.Heatmap(z=_round(_np(running[m, n]))) for n in range(n_img)])
                  for m in range(n_m)]
    steps = [dict(method="animate", label=str(m + 1),
                  args=[[str(m + 1)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                           transition=dict(duration=0))]) for m in range(n_m)]
    buttons = [dict(method="restyle", label=image_labels[n],
                    args=[{"visible": [k // per_image == n for k in range(len(fig.data))]}]) for n in range(n_img)]
    fig.update_layout(
        title=dict(text=title, font=dict(size=14), y=0.98, yanchor="top"), height=height,
        margin=dict(l=10, r=10, t=110, b=70),
        sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="M = "), pad=dict(t=10), len=0.9, x=0.05)],
        updatemenus=[dict(type="dropdown", buttons=buttons, direction="down", x=0.0, xanchor="left", y=1.42,
                          yanchor="top", showactive=True, active=0)],
    )
    fig.update_annotations(font_size=11)
    fig.update_xaxes(showticklabels=False, constrain="domain")
    fig.update_yaxes(showticklabels=False, autorange="reversed", scaleanchor="x", constrain="domain")
    for c in range(2, cols + 1):
        fig.update_yaxes(scaleanchor=f"x{c}", row=1, col=c)
    return fig


def band_figure(x: Sequence[float], curves: np.ndarray, name: str, xlabel: str, ylabel: str,
                title: str = "", reference: tuple[np.ndarray, str] | None = None) -> go.Figure:
    """Mean ± one standard deviation of ``curves`` (K, len(x)) against ``x``, optionally with a reference line."""
    mean, sd = curves.mean(0), curves.std(0)
    x = list(x)
    fig = go.Figure([
        go.Scatter(x=x + x[::-1], y=list(mean + sd) + list((mean - sd)[::-1]), fill="toself", line=dict(width=0),
                   fillcolor="rgba(31,119,180,0.2)", hoverinfo="skip", name="± 1 s.d. over images"),
        go.Scatter(x=x, y=mean, mode="lines+markers", name=name, line=dict(color="rgb(31,119,180)")),
    ])
    if reference is not None:
        fig.add_trace(go.Scatter(x=x, y=reference[0], mode="lines", name=reference[1],
                                 line=dict(dash="dash", color="gray")))
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, height=380,
                      margin=dict(l=60, r=10, t=50, b=50), legend=dict(x=0.55, y=0.1))
    return fig
