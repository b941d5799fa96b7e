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
    """A normalized map in [-1, 1] as int8 levels -100…100: 1 byte per pixel in the page instead of 4, and the
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
    """A normalized signed map in [-1, 1] on a fixed diverging scale (red = raises the logit)."""
    ticks = dict(tickvals=[-LEVELS, -LEVELS // 2, 0, LEVELS // 2, LEVELS], ticktext=["−1", "−0.5", "0", "0.5", "1"])
    return go.Heatmap(z=_levels(m), colorscale=DIVERGING, zmin=-LEVELS, zmax=LEVELS, showscale=showscale,
                      colorbar=dict(title="norm.", len=0.8, **ticks),
                      hovertemplate="x=%{x} y=%{y}<br>%{z} % of full scale<extra></extra>")


def slider(names: Sequence[str], prefix: str, active: int = 0, labels: Sequence[str] | None = None) -> dict:
    """A plotly slider whose steps jump to the precomputed frames ``names`` (no kernel needed)."""
    steps = [dict(method="animate", label=str(lab),
                  args=[[str(n)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                       transition=dict(duration=0))])
             for n, lab in zip(names, labels if labels is not None else names)]
    return dict(active=active, steps=steps, currentvalue=dict(prefix=prefix), pad=dict(t=10), len=0.9, x=0.05)


def menu(labels: Sequence[str], styles: Sequence[dict], x: float = 0.0, y: float = 1.1) -> dict:
    """A dropdown whose entry k restyles the traces with ``styles[k]`` (e.g. ``{"visible": [...]}``)."""
    buttons = [dict(method="restyle", label=lab, args=[style]) for lab, style in zip(labels, styles)]
    return dict(type="dropdown", buttons=buttons, direction="down", x=x, xanchor="left", y=y, yanchor="top",
                showactive=True, active=0)


def menu_label(text: str, x: float, y: float) -> dict:
    """The annotation that names a dropdown, placed beside it."""
    return dict(text=text, x=x, xanchor="left", xref="paper", yref="paper", y=y, showarrow=False)


def square_axes(fig: go.Figure, n_axes: int) -> None:
    """Hide ticks and make every pixel square (image grids)."""
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                     constrain="domain")
    for k in range(1, n_axes + 1):
        fig.layout[f"yaxis{'' if k == 1 else k}"].scaleanchor = f"x{'' if k == 1 else k}"


def grid_figure(images: Sequence[torch.Tensor], singles: Sequence[torch.Tensor],
                running: Sequence[torch.Tensor] | None, group_labels: Sequence[str], column_labels: Sequence[str],
                title: str = "", row_height: int = 190, menu_label_text: str = "",
                m_values: Sequence[int] | None = None, layer_labels: Sequence[str] | None = None,
                layer_menu_text: str = "") -> go.Figure:
    """A grid of maps with a dropdown over groups, optionally a second dropdown over layers and a slider over M.

    For each group g (an image, or a method): ``images[g]`` (R, C, H, W) inputs in [0, 1], one per row;
    ``singles[g]`` (S, R, H, W) normalized single-model maps, one column each; ``running[g]`` (M, R, H, W) the
    normalized mean over the first 1…M models (last column, driven by the slider). With ``layer_labels`` (e.g. the
    class whose logit is explained) every map tensor gets a leading layer axis, (L, S, R, H, W) and (L, M, R, H, W),
    and the layer dropdown shows one layer. The three controls never overwrite each other, so every combination
    works on the static site: the group menu sets ``visible``, the layer menu ``opacity`` (and hover), the slider's
    frames only the mean panels' ``z``. ``m_values`` limits the slider to some values of M (1-based).
    """
    n_groups = len(images)
    layered = layer_labels is not None
    n_layers = len(layer_labels) if layered else 1
    if not (len(singles) == n_groups == len(group_labels)) or (running is not None and len(running) != n_groups):
        raise ValueError("images, singles, running and group_labels must describe the same groups")
    lay = (lambda t: t) if layered else (lambda t: t.unsqueeze(0))
    singles = [lay(s) for s in singles]
    running = None if running is None else [lay(r) for r in running]
    n_rows, n_single = images[0].shape[0], singles[0].shape[1]
    for g in range(n_groups):
        if tuple(singles[g].shape[:3]) != (n_layers, n_single, n_rows) or (
                running is not None and (running[g].shape[0], running[g].shape[2]) != (n_layers, n_rows)):
            raise ValueError(f"group {g}: expected {n_layers} layer(s) of {n_single} single maps and {n_rows} rows, "
                             f"got singles {tuple(singles[g].shape)}" + ("" if running is None else
                                                                         f" and running {tuple(running[g].shape)}"))
    cols = 1 + n_single + (running is not None)
    if len(column_labels) != cols:
        raise ValueError(f"need {cols} column labels, got {len(column_labels)}")
    fig = make_subplots(rows=n_rows, cols=cols, horizontal_spacing=0.02, vertical_spacing=0.03,
                        subplot_titles=list(column_labels) + [""] * (cols * (n_rows - 1)))
    mean_idx: list[int] = []
    owner: list[int] = []  # group of each trace
    layer_of: list[int] = []  # layer of each trace (-1: the input image, shown in every layer)
    for g in range(n_groups):
        for r in range(n_rows):
            placed = [(image_trace(images[g][r]), 1, -1)]
            for lyr in range(n_layers):
                for s in range(n_single):
                    placed.append((map_trace(singles[g][lyr, s, r]), 2 + s, lyr))
                if running is not None:
                    placed.append((map_trace(running[g][lyr, 0, r]), cols, lyr))
                    mean_idx.append(len(fig.data) + len(placed) - 1)
            for tr, col, lyr in placed:
                tr.visible = g == 0
                if lyr >= 0:
                    tr.showscale = r == 0 and lyr == 0 and col == cols
                    tr.opacity = 1.0 if lyr == 0 else 0.0
                    if lyr > 0:
                        tr.hoverinfo = "skip"
                fig.add_trace(tr, row=r + 1, col=col)
                owner.append(g)
                layer_of.append(lyr)
    layout: dict = {}
    top = 1 + 110 / (row_height * n_rows)
    if running is not None:
        n_m = running[0].shape[1]
        ms = list(m_values) if m_values is not None else list(range(1, n_m + 1))
        if not ms or ms[0] != 1 or any(not 1 <= m <= n_m for m in ms):
            raise ValueError(f"m_values must start at 1 and stay within 1…{n_m} (the number of running means)")
        fig.frames = [go.Frame(name=str(m), traces=mean_idx,
                               data=[go.Heatmap(z=_levels(running[g][lyr, m - 1, r]))
                                     for g in range(n_groups) for r in range(n_rows) for lyr in range(n_layers)])
                      for m in ms]
        layout["sliders"] = [slider([str(m) for m in ms], "M = ")]
    menus, notes = [], list(fig.layout.annotations)
    if n_groups > 1:
        menus.append(menu(group_labels, [{"visible": [o == g for o in owner]} for g in range(n_groups)], y=top))
        if menu_label_text:
            notes.append(menu_label(f"◀ choose the {menu_label_text}", 0.27, top - 15 / (row_height * n_rows)))
    if layered and n_layers > 1:
        x0 = 0.5 if n_groups > 1 else 0.0
        styles = [{"opacity": [1.0 if lyr in (-1, k) else 0.0 for lyr in layer_of],
                   "hoverinfo": ["skip" if lyr == -1 or lyr != k else "all" for lyr in layer_of]}
                  for k in range(n_layers)]
        menus.append(menu(layer_labels, styles, x=x0, y=top))
        if layer_menu_text:
            notes.append(menu_label(f"◀ {layer_menu_text}", x0 + 0.2, top - 15 / (row_height * n_rows)))
    if menus:
        layout["updatemenus"] = menus
        layout["annotations"] = notes
    fig.update_layout(title=dict(text=title, font=dict(size=14), y=0.99, yanchor="top"),
                      height=row_height * n_rows + 180, margin=dict(l=10, r=10, t=120, b=70), **layout)
    fig.update_annotations(font_size=11)
    square_axes(fig, n_rows * cols)
    return fig


def running_mean_figure(images: torch.Tensor, singles: torch.Tensor, running: torch.Tensor,
                        image_labels: Sequence[str], single_labels: Sequence[str], title: str = "",
                        height: int = 330, layer_labels: Sequence[str] | None = None,
                        m_values: Sequence[int] | None = None) -> go.Figure:
    """Input | single-model maps | mean over M models, with a slider over M and a dropdown over images.

    ``images`` (N, C, H, W) in [0, 1]; ``singles`` (S, N, H, W) and ``running`` (M, N, H, W) normalized maps,
    ``running[k]`` being the mean over the first k+1 models. With ``layer_labels`` (e.g. the explained class) both
    map tensors get a leading layer axis and a second dropdown picks the layer.
    """
    n = images.shape[0]
    ax = 2 if layer_labels is not None else 1
    if singles.shape[ax] != n or running.shape[ax] != n or len(image_labels) != n:
        raise ValueError("images, singles, running and image_labels must describe the same N images")
    pick = (lambda t, i: t[:, :, i:i + 1]) if layer_labels is not None else (lambda t, i: t[:, i:i + 1])
    return grid_figure([images[i:i + 1] for i in range(n)], [pick(singles, i) for i in range(n)],
                       [pick(running, i) for i in range(n)], image_labels,
                       ["input", *single_labels, "mean over M models"], title=title, row_height=height - 180 + 40,
                       menu_label_text="image", m_values=m_values, layer_labels=layer_labels,
                       layer_menu_text="explained class")


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


def m_subset(n_models: int, candidates: Sequence[int] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 50)) -> list[int]:
    """Slider values of M: a few sizes up to the zoo size (always 1 and the whole zoo), to keep pages light."""
    return sorted({m for m in candidates if m < n_models} | {1, n_models})


def class_map_figure(images: torch.Tensor, per_class: torch.Tensor, labels: torch.Tensor,
                     image_labels: Sequence[str], class_names: Sequence[str], single_labels: Sequence[str],
                     title: str = "", m_values: Sequence[int] | None = None) -> go.Figure:
    """Chapter 1's figure: per image, single-model maps and the mean of M models, for the logit of any class.

    ``per_class`` (K, M, N, H, W) raw maps; the class menu offers the image's true class first, then every class.
    Each map is divided by its own 99th percentile of |a| (:func:`helpers.maps.normalize`)."""
    from .maps import normalize
    from .marginal import of_class

    n_single = len(single_labels)
    layers = torch.cat([of_class(per_class, labels).unsqueeze(0), per_class])  # (1 + K, M, N, H, W)
    counts = torch.arange(1, layers.shape[1] + 1, dtype=layers.dtype, device=layers.device).view(1, -1, 1, 1, 1)
    running = layers.cumsum(1) / counts
    return running_mean_figure(images, normalize(layers[:, :n_single], "quantile"), normalize(running, "quantile"),
                               image_labels, single_labels, title=title,
                               layer_labels=["true class", *[f"class {c}" for c in class_names]],
                               m_values=m_values)


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


def rank_labels(n: int) -> list[str]:
    """Menu labels for explained classes ranked per image: the true class, then the classes by mean logit
    ("runner-up", "third", …), as in chapter 2's class menu."""
    words = ["true class", "runner-up", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]
    return [words[k] if k < len(words) else f"rank {k + 1}" for k in range(n)]
