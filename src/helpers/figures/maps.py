"""Map figures with precomputed sliders and menus: single-model vs marginalized maps over M (Woerl et al., CVPR
2023), the running mean, and every class's map.
"""
from __future__ import annotations

from typing import Sequence
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .common import _levels, image_trace, map_trace, menu, menu_label, slider, square_axes


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


def class_map_figure(images: torch.Tensor, per_class: torch.Tensor, labels: torch.Tensor,
                     image_labels: Sequence[str], class_names: Sequence[str], single_labels: Sequence[str],
                     title: str = "", m_values: Sequence[int] | None = None) -> go.Figure:
    """Chapter 1's figure: per image, single-model maps and the mean of M models, for the logit of any class.

    ``per_class`` (K, M, N, H, W) raw maps; the class menu offers the image's true class first, then every class.
    Each map is divided by its own 99th percentile of |a| (:func:`helpers.maps.normalize`)."""
    from ..attribution.maps import normalize
    from ..attribution.marginal import of_class

    n_single = len(single_labels)
    layers = torch.cat([of_class(per_class, labels).unsqueeze(0), per_class])  # (1 + K, M, N, H, W)
    counts = torch.arange(1, layers.shape[1] + 1, dtype=layers.dtype, device=layers.device).view(1, -1, 1, 1, 1)
    running = layers.cumsum(1) / counts
    return running_mean_figure(images, normalize(layers[:, :n_single], "quantile"), normalize(running, "quantile"),
                               image_labels, single_labels, title=title,
                               layer_labels=["true class", *[f"class {c}" for c in class_names]],
                               m_values=m_values)
