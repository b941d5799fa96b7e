"""Plotly figures that work on the static site: every slider position is precomputed as a frame.

The browser switches frames with no Python kernel, so sliders work in the built book, on Colab and in JupyterLab.
Display goes through :func:`show`: in the book build it writes HTML that relies on the plotly.js the book ships once
(``_vendor/plotly.min.js``); on Colab and in Jupyter it uses plotly's own renderer.
"""
from __future__ import annotations

import base64
import io
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


def _levels(m: torch.Tensor | np.ndarray) -> np.ndarray:
    """A normalised map in [-1, 1] as int8 levels -100…100: 1 byte per pixel in the page instead of 4, and the
    1 % steps are invisible on a diverging colour scale."""
    return np.round(np.clip(_np(m).astype(np.float32), -1, 1) * LEVELS).astype(np.int8)


LEVELS = 100


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
    ticks = dict(tickvals=[-LEVELS, -LEVELS // 2, 0, LEVELS // 2, LEVELS], ticktext=["−1", "−0.5", "0", "0.5", "1"])
    return go.Heatmap(z=_levels(m), colorscale=DIVERGING, zmin=-LEVELS, zmax=LEVELS, showscale=showscale,
                      colorbar=dict(title="norm.", len=0.8, **ticks) if showscale else None,
                      hovertemplate="x=%{x} y=%{y}<br>%{z} % of full scale<extra></extra>")


def grid_figure(images: Sequence[torch.Tensor], singles: Sequence[torch.Tensor],
                running: Sequence[torch.Tensor] | None, group_labels: Sequence[str], column_labels: Sequence[str],
                title: str = "", row_height: int = 190, menu_label: str = "",
                m_values: Sequence[int] | None = None) -> go.Figure:
    """A grid of maps with a dropdown over groups and, optionally, a slider over M.

    For each group g (an image, or a method): ``images[g]`` (R, C, H, W) inputs in [0, 1], one per row;
    ``singles[g]`` (S, R, H, W) normalised single-model maps, one column each; ``running[g]`` (M, R, H, W) the
    normalised mean over the first 1…M models (last column, driven by the slider). The slider's frames replace only
    the mean panels of every group; the dropdown toggles which group's traces are visible, so the two controls do
    not overwrite each other (static-site safe: every frame is precomputed). ``m_values`` limits the slider to some
    values of M (1-based) to keep pages small; by default every M is a frame.
    """
    n_groups = len(images)
    if not (len(singles) == n_groups == len(group_labels)) or (running is not None and len(running) != n_groups):
        raise ValueError("images, singles, running and group_labels must describe the same groups")
    n_rows, n_single = images[0].shape[0], singles[0].shape[0]
    for g in range(n_groups):
        if singles[g].shape[:2] != (n_single, n_rows) or (running is not None and running[g].shape[1] != n_rows):
            raise ValueError(f"group {g}: expected {n_single} single maps and {n_rows} rows, got singles "
                             f"{tuple(singles[g].shape)}" + ("" if running is None else
                                                             f" and running {tuple(running[g].shape)}"))
    cols = 1 + n_single + (running is not None)
    if len(column_labels) != cols:
        raise ValueError(f"need {cols} column labels, got {len(column_labels)}")
    fig = make_subplots(rows=n_rows, cols=cols, horizontal_spacing=0.02, vertical_spacing=0.03,
                        subplot_titles=list(column_labels) + [""] * (cols * (n_rows - 1)))
    mean_idx: list[int] = []
    owner: list[int] = []
    for g in range(n_groups):
        for r in range(n_rows):
            traces = [image_trace(images[g][r])] + [map_trace(singles[g][s, r]) for s in range(n_single)]
            if running is not None:
                traces.append(map_trace(running[g][0, r], showscale=(r == 0)))
            else:
                traces[-1].showscale = r == 0
            for c, tr in enumerate(traces):
                tr.visible = g == 0
                fig.add_trace(tr, row=r + 1, col=c + 1)
                owner.append(g)
            if running is not None:
                mean_idx.append(len(fig.data) - 1)
    layout: dict = {}
    if running is not None:
        n_m = running[0].shape[0]
        ms = list(m_values) if m_values is not None else list(range(1, n_m + 1))
        if not ms or ms[0] != 1 or any(not 1 <= m <= n_m for m in ms):
            raise ValueError(f"m_values must start at 1 and stay within 1…{n_m} (the number of running means)")
        fig.frames = [go.Frame(name=str(m), traces=mean_idx,
                               data=[go.Heatmap(z=_levels(running[g][m - 1, r]))
                                     for g in range(n_groups) for r in range(n_rows)]) for m in ms]
        steps = [dict(method="animate", label=str(m),
                      args=[[str(m)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                           transition=dict(duration=0))]) for m in ms]
        layout["sliders"] = [dict(active=0, steps=steps, currentvalue=dict(prefix="M = "), pad=dict(t=10), len=0.9,
                                  x=0.05)]
    if n_groups > 1:
        buttons = [dict(method="restyle", label=group_labels[g], args=[{"visible": [o == g for o in owner]}])
                   for g in range(n_groups)]
        layout["updatemenus"] = [dict(type="dropdown", buttons=buttons, direction="down", x=0.0, xanchor="left",
                                      y=1 + 110 / (row_height * n_rows), yanchor="top", showactive=True, active=0)]
        if menu_label:
            layout["annotations"] = [*fig.layout.annotations, dict(
                text=f"◀ choose the {menu_label}", x=0.22, xanchor="left", xref="paper", yref="paper",
                showarrow=False,
                y=1 + 95 / (row_height * n_rows))]
    fig.update_layout(title=dict(text=title, font=dict(size=14), y=0.99, yanchor="top"),
                      height=row_height * n_rows + 180, margin=dict(l=10, r=10, t=120, b=70), **layout)
    fig.update_annotations(font_size=11)
    fig.update_xaxes(showticklabels=False, constrain="domain")
    fig.update_yaxes(showticklabels=False, autorange="reversed", constrain="domain")
    for k in range(1, n_rows * cols + 1):
        fig.layout[f"yaxis{'' if k == 1 else k}"].scaleanchor = f"x{'' if k == 1 else k}"
    return fig


def running_mean_figure(images: torch.Tensor, singles: torch.Tensor, running: torch.Tensor,
                        image_labels: Sequence[str], single_labels: Sequence[str],
                        title: str = "", height: int = 330) -> go.Figure:
    """Input | single-model maps | mean over M models, with a slider over M and a dropdown over images.

    ``images`` (N, C, H, W) in [0, 1]; ``singles`` (S, N, H, W) and ``running`` (M, N, H, W) normalised maps,
    ``running[k]`` being the mean over the first k+1 models.
    """
    n = images.shape[0]
    if singles.shape[1] != n or running.shape[1] != n or len(image_labels) != n:
        raise ValueError("images, singles, running and image_labels must describe the same N images")
    return grid_figure([images[i:i + 1] for i in range(n)], [singles[:, i:i + 1] for i in range(n)],
                       [running[:, i:i + 1] for i in range(n)], image_labels,
                       ["input", *single_labels, "mean over M models"], title=title, row_height=height - 180 + 40)


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


def grouped_bar_figure(categories: Sequence[str], values: dict[str, Sequence[float]], ylabel: str,
                       title: str = "") -> go.Figure:
    """Bars per category (x), one colour per series (e.g. SNR per class, one series per method)."""
    fig = go.Figure([go.Bar(x=list(categories), y=list(v), name=k) for k, v in values.items()])
    fig.update_layout(barmode="group", title=title, yaxis_title=ylabel, height=400,
                      margin=dict(l=60, r=10, t=50, b=50))
    return fig


def lines_figure(x: Sequence[float], series: dict[str, Sequence[float]], xlabel: str, ylabel: str,
                 title: str = "", reference: tuple[Sequence[float], str] | None = None,
                 log_y: bool = False) -> go.Figure:
    """One line per series against ``x``, optionally a dashed reference curve."""
    fig = go.Figure([go.Scatter(x=list(x), y=list(v), mode="lines+markers", name=k) for k, v in series.items()])
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


def png_bytes(rgb: np.ndarray | torch.Tensor, scale: int = 1) -> bytes:
    """(H, W, 3) floats in [0, 1] (or (H, W) grey) -> PNG bytes, enlarged ``scale`` times without smoothing."""
    from PIL import Image

    a = np.clip(np.asarray(_np(rgb), dtype=np.float32), 0, 1)
    img = Image.fromarray((a * 255).round().astype(np.uint8))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def png_uri(rgb: np.ndarray | torch.Tensor) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgb)).decode()
