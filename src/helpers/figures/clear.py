"""Plotly figures for CLEAR maps (Kumar et al., CVPRW 2017) that work on the static site.

CLEAR maps are RGB pictures, embedded as small PNGs (``go.Image(source=…)``) so that a slider over M with one
frame per M stays light. Like :mod:`helpers.viz`, every slider position is precomputed.
"""
from __future__ import annotations

from typing import Mapping, Sequence
import numpy as np
import plotly.graph_objects as go
import torch
from IPython.display import Markdown
from plotly.subplots import make_subplots

from ..attribution.clear import PALETTE, palette_rgb
from ..evaluation.clear_stats import ClearStats, Summary, interval_text
from .common import _np, image_trace, map_trace, png_uri
from . import common
from . import maps


def rgb_trace(rgb: np.ndarray | torch.Tensor) -> go.Image:
    """A CLEAR map (H, W, 3) as a pixelated image trace."""
    return go.Image(source=png_uri(rgb), hoverinfo="skip")


def _columns(rgb: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    return [rgb] if isinstance(rgb, np.ndarray) else list(rgb)


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


def examples_figure(images: torch.Tensor, heatmaps: torch.Tensor, clear_rgb: np.ndarray | Sequence[np.ndarray],
                    row_labels: Sequence[str], title: str = "",
                    columns: Sequence[str] = ("input", "binary heatmap (predicted class)", "CLEAR map")) -> go.Figure:
    """Rows of input | one-class heatmap (normalized, [-1, 1]) | CLEAR map(s), as in Fig. 1 of Kumar et al. (2017).

    ``images`` (N, C, H, W) in [0, 1], ``heatmaps`` (N, H, W), ``clear_rgb`` (N, H, W, 3) or a list of such
    columns (e.g. positive and negative focus).
    """
    rgbs = _columns(clear_rgb)
    n, cols = images.shape[0], 2 + len(rgbs)
    if heatmaps.shape[0] != n or any(c.shape[0] != n for c in rgbs) or len(row_labels) != n:
        raise ValueError("images, heatmaps, clear_rgb and row_labels must describe the same N images")
    if len(columns) != cols:
        raise ValueError(f"{cols} columns need {cols} titles, got {len(columns)}")
    fig = make_subplots(rows=n, cols=cols, horizontal_spacing=0.01, vertical_spacing=0.04,
                        row_titles=list(row_labels), column_titles=list(columns))
    for i in range(n):
        fig.add_trace(image_trace(images[i]), row=i + 1, col=1)
        fig.add_trace(map_trace(heatmaps[i], showscale=i == 0), row=i + 1, col=2)
        for c, rgb in enumerate(rgbs):
            fig.add_trace(rgb_trace(rgb[i]), row=i + 1, col=3 + c)
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=150 * n + 80, width=250 * cols + 10,
                      margin=dict(l=10, r=190, t=70, b=10))
    fig.update_annotations(font_size=11)
    common.square_axes(fig, cols * n)
    return fig


def marginal_clear_figure(images: torch.Tensor, single_rgb: np.ndarray | Sequence[np.ndarray],
                          running_rgb: np.ndarray | Sequence[np.ndarray], running_shares: np.ndarray | torch.Tensor,
                          image_labels: Sequence[str], class_names: Sequence[str], palette: Sequence[str] = PALETTE,
                          single_labels: Sequence[str] = ("CLEAR, model 0",),
                          running_labels: Sequence[str] = ("CLEAR, mean over M models",), title: str = "",
                          height: int = 380, m_values: Sequence[int] | None = None) -> go.Figure:
    """Input | CLEAR of one model | CLEAR of the mean over M models | class shares of that mean, with a slider over M
    (``common.slider``) and a menu over images (``common.menu``); frames replace only the mean panels and the bars.

    ``single_rgb`` (N, H, W, 3) and ``running_rgb`` (M, N, H, W, 3), or lists of such panels (e.g. positive and
    negative focus) titled by ``single_labels`` / ``running_labels``; ``running_shares`` (M, N, K). ``m_values``
    (1-based) limits the slider to some values of M.
    """
    singles, runnings = _columns(single_rgb), _columns(running_rgb)
    n_img, n_m = images.shape[0], runnings[0].shape[0]
    shares = _np(running_shares)
    if any(s.shape[0] != n_img for s in singles) or any(r.shape[:2] != (n_m, n_img) for r in runnings) \
            or shares.shape[:2] != (n_m, n_img) or len(image_labels) != n_img:
        raise ValueError("images, single_rgb, running_rgb, running_shares and image_labels must describe the same "
                         "N images (and running_* the same M)")
    if len(single_labels) != len(singles) or len(running_labels) != len(runnings):
        raise ValueError("give one label per single and per running panel")
    ms = list(m_values) if m_values is not None else list(range(1, n_m + 1))
    colours = [f"rgb{tuple(int(round(255 * v)) for v in c)}" for c in palette_rgb(palette, len(class_names))]
    n_pics = 1 + len(singles) + len(runnings)
    cols = n_pics + 1
    fig = make_subplots(rows=1, cols=cols, horizontal_spacing=0.03,
                        column_widths=[0.7 / n_pics] * n_pics + [0.3],
                        subplot_titles=["input", *single_labels, *running_labels, "share of positive focus mass"])

    def bars(m: int, n: int) -> go.Bar:
        return go.Bar(x=list(class_names), y=np.round(shares[m, n], 3), marker_color=colours, showlegend=False,
                      hovertemplate="class %{x}: %{y:.1%}<extra></extra>")

    changing, owner = [], []
    for n in range(n_img):
        traces = [image_trace(images[n]), *(rgb_trace(s[n]) for s in singles),
                  *(rgb_trace(r[0, n]) for r in runnings), bars(0, n)]
        for c, tr in enumerate(traces):
            tr.visible = n == 0
            fig.add_trace(tr, row=1, col=c + 1)
            owner.append(n)
        changing += list(range(len(fig.data) - len(runnings) - 1, len(fig.data)))
    fig.frames = [go.Frame(name=str(m), traces=changing,
                           data=[tr for n in range(n_img) for tr in
                                 (*(go.Image(source=png_uri(r[m - 1, n])) for r in runnings), bars(m - 1, n))])
                  for m in ms]
    top = 1.42
    fig.update_layout(
        title=dict(text=title, font=dict(size=14), y=0.98, yanchor="top"), height=height,
        margin=dict(l=10, r=50, t=110, b=70), plot_bgcolor="white", sliders=[common.slider([str(m) for m in ms], "M = ")],
        updatemenus=[common.menu(list(image_labels), [{"visible": [o == n for o in owner]} for n in range(n_img)],
                              x=0.0, y=top)],
        annotations=list(fig.layout.annotations) + [common.menu_label("◀ choose the image", 0.45, top - 0.08)])
    fig.update_annotations(font_size=11)
    common.square_axes(fig, n_pics)
    ymax = float(np.ceil(shares.max() * 10) / 10) if shares.size else 1.0  # fixed across frames
    fig.update_xaxes(type="category", tickangle=0, showticklabels=True, row=1, col=cols)
    # the share axis is labelled on its right, outside the figure's image panels (on the left its % ticks would
    # be drawn over the last image)
    fig.update_yaxes(range=[0, min(1.0, ymax)], autorange=False, tickformat=".0%", showticklabels=True, showgrid=True,
                     side="right", row=1, col=cols)
    return fig


def confusion_figure(counts: torch.Tensor | Mapping[str, torch.Tensor], class_names: Sequence[str],
                     title: str = "") -> go.Figure:
    """(K, K) counts: rows = top class of the CLEAR map, columns = second-best class by logit. With a mapping
    (e.g. one matrix per start of the back-projection) a menu (``common.menu``) switches between them."""
    named = dict(counts) if isinstance(counts, Mapping) else {"": counts}
    fig = go.Figure()
    for i, (name, c) in enumerate(named.items()):
        c = _np(c)
        fig.add_trace(go.Heatmap(z=c, x=list(class_names), y=list(class_names), colorscale="Blues", zmin=0,
                                 text=c, texttemplate="%{text}", colorbar=dict(title="maps"), visible=i == 0,
                                 name=name, hovertemplate="top class %{y}, second-best %{x}: %{z}<extra></extra>"))
    layout = {}
    if len(named) > 1:
        layout["updatemenus"] = [common.menu(list(named), [{"visible": [j == i for j in range(len(named))]}
                                                        for i in range(len(named))], x=0.0, y=1.16)]
    fig.update_layout(title=dict(text=title, font=dict(size=13), x=0.3 if len(named) > 1 else 0.05), height=440,
                      width=520, xaxis_title="second-best class by logit",
                      yaxis_title="class with the largest CLEAR share", margin=dict(l=60, r=10, t=80, b=50), **layout)
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category", autorange="reversed")
    return fig


def joint_normalize(responses: torch.Tensor, q: float = 0.99) -> torch.Tensor:
    """Divide the K maps of each image (…, K, H, W) together by the ``q``-quantile of their non-zero |values| and
    clip to [-1, 1]: one colour scale per image, so a class whose map is stronger stays brighter (the response
    start's class strength stays visible), and a few extreme pixels no longer leave every map pale (``q=1``: the
    largest |value|)."""
    flat = responses.detach().float().abs().flatten(-3)
    nonzero = torch.where(flat > 0, flat, torch.full_like(flat, float("nan")))
    scale = torch.nan_to_num(torch.nanquantile(nonzero, q, dim=-1), nan=0.0)
    scale = scale.to(responses.dtype).clamp_min(torch.finfo(responses.dtype).tiny)
    return (responses / scale[..., None, None, None]).clamp(-1, 1)


def class_maps_figure(images: torch.Tensor, readings: Mapping[str, torch.Tensor], image_labels: Sequence[str],
                      class_names: Sequence[str], title: str = "", row_height: int = 120) -> go.Figure:
    """The paper's figure of individual response maps: per image, one row per model setting (e.g. model 0 and the
    marginalized maps) with the K class maps side by side, a menu over images and a menu over ``readings`` (e.g.
    the response and the unit start), built with ``maps.grid_figure``.

    ``images`` (N, C, H, W) in [0, 1]; ``readings[name]`` (R, N, K, H, W) raw maps, jointly normalized per row."""
    names = list(readings)
    shapes = {tuple(r.shape) for r in readings.values()}
    if len(shapes) != 1 or next(iter(shapes))[1] != images.shape[0] or len(image_labels) != images.shape[0]:
        raise ValueError("every reading must hold maps (R, N, K, H, W) of the same N images as images and labels")
    rows, n = next(iter(shapes))[0], images.shape[0]
    normed = {k: joint_normalize(v) for k, v in readings.items()}
    singles = [torch.stack([normed[k][:, i] for k in names]).permute(0, 2, 1, 3, 4) for i in range(n)]
    inputs = [images[i:i + 1].expand(rows, *images.shape[1:]) for i in range(n)]
    return maps.grid_figure(inputs, singles, None, image_labels, ["input", *[f"class {c}" for c in class_names]],
                           title=title, row_height=row_height, menu_label_text="image", layer_labels=names,
                           layer_menu_text="start of the back-projection")


def stats_markdown(summaries: Mapping[str, Summary], metrics: Sequence[str], caption: str = "") -> Markdown:
    """A table of :class:`helpers.clear.Summary` intervals, one block of rows per reading (e.g. "unit start") and
    setting (single, marginalized), one column per metric; "–" for an empty group."""
    lines = ([caption, ""] if caption else []) + [
        "| reading | CLEAR maps of | prediction | maps | " + " | ".join(metrics) + " |",
        "| --- | --- | --- | ---: | " + " | ".join("---:" for _ in metrics) + " |"]
    for reading, summary in summaries.items():
        for r in summary.rows():
            lines.append(f"| {reading} | {r['setting']} | {r['group']} | {r['n']} | "
                         + " | ".join(interval_text(r[m]) for m in metrics) + " |")
    return Markdown("\n".join(lines))


def example_labels(true: torch.Tensor, pred: torch.Tensor, class_names: Sequence[str]) -> list[str]:
    """Row titles "✓ true 3, pred 3" / "✗ true 9, pred 4"."""
    return [f"{'✓' if int(p) == int(t) else '✗'} true {class_names[int(t)]}, pred {class_names[int(p)]}"
            for t, p in zip(true, pred)]


def image_labels(idx: torch.Tensor, true: torch.Tensor, pred: torch.Tensor, class_names: Sequence[str],
                 who: str = "model 0") -> list[str]:
    """Menu entries "test image 12: true 9, model 0 says 4"."""
    return [f"test image {int(i)}: true {class_names[int(t)]}, {who} says {class_names[int(p)]}"
            for i, t, p in zip(idx, true, pred)]


def ensemble_markdown(idx: torch.Tensor, stats: ClearStats, class_names: Sequence[str], n_models: int) -> Markdown:
    """One line per shown image: the mean-logit ensemble's prediction and the top class of its CLEAR map, with the
    top class's share (``stats``: :func:`helpers.clear.image_stats` of the marginalized maps, shape (N,))."""
    top_share = stats.shares.amax(-1)
    parts = [f"image {int(i)} (true {class_names[int(t)]}): {class_names[int(p)]}, top CLEAR class "
             + (f"{class_names[int(c)]} ({float(s):.0%})" if int(c) >= 0 else "none (no positive focus)")
             for i, t, p, c, s in zip(idx, stats.true, stats.pred, stats.top, top_share)]
    return Markdown(f"With all {n_models} models, the marginalized ensemble predicts: " + "; ".join(parts) + ".")


def class_list(classes: Sequence[int], class_names: Sequence[str]) -> str:
    """ "4 and 6", "4, 6 and 9"."""
    names = [class_names[c] for c in classes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def confusion_values(confusion: torch.Tensor, class_names: Sequence[str], prefix: str = "",
                     n: int = 2) -> dict[str, int | float | str]:
    """Glue values of a :func:`helpers.clear.dominance_confusion` matrix: the diagonal and the total, the ``n``
    classes most often on top with their share, the least frequent top class and its count."""
    from ..evaluation.clear_stats import frequent_top

    frequent, share, rare = frequent_top(confusion, n)
    return {f"{prefix}conf_diag": int(confusion.diag().sum()), f"{prefix}conf_total": int(confusion.sum()),
            f"{prefix}frequent_names": class_list(frequent, class_names), f"{prefix}frequent_share": share,
            f"{prefix}rare_name": class_names[rare], f"{prefix}rare_count": int(confusion.sum(1)[rare])}
