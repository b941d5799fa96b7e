"""Chapter 6's figures: maps under each baseline with a slider (Brunke et al. 2020) and deletion/insertion
curves (Petsiuk et al. 2018) with a menu over methods.
"""
from __future__ import annotations

from typing import Sequence
import torch



def baseline_figure(images: torch.Tensor, baselines: torch.Tensor | None, maps: torch.Tensor,
                    frame_labels: Sequence[str], column_labels: Sequence[str], title: str = "",
                    prefix: str = "baseline: ", row_height: int = 150):
    """Input | baseline | one map per column, one row per image, a slider over frames (baselines, or a
    hyperparameter's values).

    ``images`` (R, C, H, W) and ``baselines`` (F, R, C, H, W; ``None``: no baseline column) in pixel space [0, 1];
    ``maps`` (F, K, R, H, W) normalized to [−1, 1]. Every slider position is a precomputed frame
    (:func:`helpers.viz.slider`)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from . import common

    nf, k, r = maps.shape[:3]
    lead = 1 + (baselines is not None)
    cols = lead + k
    heads = ["input"] + (["baseline"] if baselines is not None else []) + list(column_labels)
    fig = make_subplots(rows=r, cols=cols, horizontal_spacing=0.015, vertical_spacing=0.02,
                        subplot_titles=heads + [""] * (cols * (r - 1)))
    changing = []
    for i in range(r):
        fig.add_trace(common.image_trace(images[i]), row=i + 1, col=1)
        if baselines is not None:
            changing.append(len(fig.data))
            fig.add_trace(common.image_trace(baselines[0, i]), row=i + 1, col=2)
        for j in range(k):
            changing.append(len(fig.data))
            fig.add_trace(common.map_trace(maps[0, j, i], showscale=i == 0 and j == k - 1), row=i + 1, col=lead + 1 + j)
    frames = []
    for f in range(nf):
        data = []
        for i in range(r):
            if baselines is not None:
                data.append(common.image_trace(baselines[f, i]))
            data += [go.Heatmap(z=common._levels(maps[f, j, i])) for j in range(k)]
        frames.append(go.Frame(name=str(frame_labels[f]), traces=changing, data=data))
    fig.frames = frames
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=row_height * r + 170,
                      margin=dict(l=10, r=10, t=70, b=70),
                      sliders=[common.slider([str(b) for b in frame_labels], prefix)])
    fig.update_annotations(font_size=11)
    common.square_axes(fig, r * cols)
    return fig


def curves_figure(frac: Sequence[float], curves_by_method: dict[str, dict[str, Sequence[float]]], ylabel: str,
                  title: str = ""):
    """Mean deletion/insertion curves, one line per baseline, a menu over methods (:func:`helpers.viz.menu`)."""
    import plotly.graph_objects as go

    from . import common

    fig = go.Figure()
    owner = []
    for mi, (method, series) in enumerate(curves_by_method.items()):
        for name, ys in series.items():
            fig.add_trace(go.Scatter(x=[float(f) for f in frac], y=[round(float(v), 4) for v in ys],
                                     mode="lines", name=name, visible=mi == 0))
            owner.append(mi)
    methods = list(curves_by_method)
    fig.update_layout(title=title, xaxis_title="fraction of pixels perturbed", yaxis_title=ylabel, height=440,
                      margin=dict(l=60, r=10, t=90, b=50),
                      updatemenus=[common.menu(methods, [{"visible": [o == k for o in owner]}
                                                      for k in range(len(methods))], x=0.0, y=1.22)],
                      annotations=[common.menu_label("◀ choose the method", 0.25, 1.19)])
    return fig


def display_maps(maps: torch.Tensor, centre: bool | Sequence[bool] = False) -> torch.Tensor:
    """Each map divided by its 99th percentile of |a| and clipped to [−1, 1] (as in the other chapters).

    ``centre`` (one bool, or one per entry of axis 1) first subtracts each map's spatial mean: RISE's saliency is an
    expected score and positive everywhere, so its pattern is only visible relative to its mean."""
    from ..attribution.maps import normalize

    c = torch.as_tensor(centre, dtype=torch.bool)
    if c.any():
        mask = c.view(1, -1, *([1] * (maps.ndim - 2))) if c.ndim else c
        maps = torch.where(mask.to(maps.device), maps - maps.mean((-2, -1), keepdim=True), maps)
    return normalize(maps, "quantile")
