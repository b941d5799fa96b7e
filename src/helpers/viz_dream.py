"""Figures for the ensemble deep-dream chapter (Woerl et al., CVPR 2023; Mordvintsev et al. 2015).

Like :mod:`helpers.viz`, every slider position is precomputed as a plotly frame, so the figures work on the static
site with no kernel. Each frame is one PNG mosaic (rows = dreamers, columns = classes) embedded as a data URI: a
frame of 3 × 10 MNIST-sized images is a few kilobytes, so a slider over 20+ optimisation steps keeps the page small.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from IPython.display import Markdown
from plotly.subplots import make_subplots

from .viz import png_uri

COLOURS = ("rgb(214,39,40)", "rgb(31,119,180)", "rgb(44,160,44)", "rgb(148,103,189)", "rgb(255,127,14)",
           "rgb(140,86,75)")


def mosaic(images: np.ndarray, gap: int = 2, scale: int = 1) -> np.ndarray:
    """(R, B, C, H, W) images in [0, 1] -> one (R·H + gaps, B·W + gaps[, 3]) array with white gaps, upscaled by
    ``scale`` (nearest neighbour, so that browsers never smooth the pixels)."""
    r, b, c, h, w = images.shape
    hs, ws = h * scale, w * scale
    out = np.ones((r * hs + (r - 1) * gap, b * ws + (b - 1) * gap, c), dtype=np.float32)
    for i in range(r):
        for j in range(b):
            tile = images[i, j].transpose(1, 2, 0).repeat(scale, 0).repeat(scale, 1)
            out[i * (hs + gap):i * (hs + gap) + hs, j * (ws + gap):j * (ws + gap) + ws] = tile
    return out[..., 0] if c == 1 else out


def dream_slider_figure(rows: Sequence[torch.Tensor], row_labels: Sequence[str], class_labels: Sequence[str],
                        steps: Sequence[int], title: str = "", scale: int = 1, width_px: int = 540) -> go.Figure:
    """Dreams of several dreamers (rows) for several classes (columns) with a slider over optimisation steps.

    ``rows[r]`` is (S, B, C, H, W) in [0, 1] (the snapshots of one :func:`helpers.dream.dream` run, denormalised),
    the same S = ``len(steps)`` and B = ``len(class_labels)`` for every row. The slider starts at the last step.
    ``scale`` > 1 upscales the PNGs (plotly already draws image pixels sharp, so 1 keeps pages smallest);
    ``width_px`` is the expected width of the plotting area, used to size the figure's height.
    """
    if len(rows) != len(row_labels) or not rows:
        raise ValueError("give one label per row of dreams (and at least one row)")
    arr = np.stack([r.detach().cpu().numpy() for r in rows], axis=1)  # (S, R, B, C, H, W)
    s, n_rows, n_cls, _, h, w = arr.shape
    if s != len(steps) or n_cls != len(class_labels):
        raise ValueError(f"snapshots have {s} steps and {n_cls} classes but {len(steps)} step labels and "
                         f"{len(class_labels)} class labels were given: pass matching lists")
    gap = max(1, round(w * scale / 14))
    frames = [png_uri(mosaic(arr[k], gap=gap, scale=scale)) for k in range(s)]
    height_px, wide_px = n_rows * h * scale + (n_rows - 1) * gap, n_cls * w * scale + (n_cls - 1) * gap
    fig = go.Figure(go.Image(source=frames[-1], x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"))
    fig.frames = [go.Frame(name=str(st), data=[go.Image(source=src)], traces=[0]) for st, src in zip(steps, frames)]
    slider_steps = [dict(method="animate", label=str(st),
                         args=[[str(st)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                               transition=dict(duration=0))]) for st in steps]
    fig.update_xaxes(showgrid=False, zeroline=False, range=[-0.5, wide_px - 0.5], side="top",
                     tickvals=[(j + 0.5) * w * scale + j * gap for j in range(n_cls)], ticktext=list(class_labels))
    fig.update_yaxes(showgrid=False, zeroline=False, range=[height_px - 0.5, -0.5], scaleanchor="x",
                     tickvals=[(i + 0.5) * h * scale + i * gap for i in range(n_rows)], ticktext=list(row_labels))
    fig.update_layout(
        title=dict(text=title, font=dict(size=14), y=0.99, yanchor="top"),
        height=int(width_px * height_px / wide_px + 190), margin=dict(l=130, r=10, t=75, b=55), plot_bgcolor="white",
        sliders=[dict(active=s - 1, steps=slider_steps, currentvalue=dict(prefix="step "), pad=dict(t=10),
                      len=0.9, x=0.05)],
    )
    return fig


def _band(fig: go.Figure, x: Sequence[float], y: np.ndarray, name: str, colour: str, dash: str, col: int,
          legend: bool) -> None:
    """Mean over rows of ``y`` (B, T) as a line with a ± 1 s.d. band, in subplot column ``col``."""
    mean, sd = y.mean(0), y.std(0)
    x = list(x)
    fill = colour.replace("rgb", "rgba").replace(")", ",0.15)")
    fig.add_trace(go.Scatter(x=x + x[::-1], y=list(mean + sd) + list((mean - sd)[::-1]), fill="toself",
                             line=dict(width=0), fillcolor=fill, hoverinfo="skip", showlegend=False,
                             legendgroup=name), row=1, col=col)
    fig.add_trace(go.Scatter(x=x, y=mean, mode="lines", name=name, line=dict(color=colour, dash=dash),
                             legendgroup=name, showlegend=legend), row=1, col=col)


def curves_figure(curves: Mapping[str, tuple[Sequence[int], np.ndarray, np.ndarray]], title: str = "",
                  reference: tuple[float, float] | None = None) -> go.Figure:
    """Target logit (left) and softmax probability (right) against the optimisation step.

    ``curves[name] = (steps, logits (B, T), probs (B, T))``: per series the mean over the B classes with a band of
    ± 1 s.d.; names containing "held-out" are dashed. ``reference = (logit, prob)`` draws the held-out models'
    mean on real test images of the same classes as a grey line.
    """
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=["target-class logit", "target-class softmax probability"])
    for k, (name, (steps, logit, prob)) in enumerate(curves.items()):
        colour, dash = COLOURS[k % len(COLOURS)], "dash" if "held-out" in name else "solid"
        _band(fig, steps, np.asarray(logit), name, colour, dash, 1, True)
        _band(fig, steps, np.asarray(prob), name, colour, dash, 2, False)
    if reference is not None:
        for col, val in ((1, reference[0]), (2, reference[1])):
            fig.add_hline(y=val, line=dict(color="gray", dash="dot", width=1), row=1, col=col)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color="gray", dash="dot"),
                                 name="held-out models on real test digits"), row=1, col=1)
    fig.update_xaxes(title_text="optimisation step")
    fig.update_yaxes(range=[-0.02, 1.02], row=1, col=2)
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=420, margin=dict(l=60, r=10, t=60, b=50),
                      legend=dict(orientation="h", y=-0.2, x=0))
    fig.update_annotations(font_size=12)
    return fig


def per_model_figure(series: Mapping[str, np.ndarray], roles: Mapping[str, Sequence[str]], title: str = "",
                     ylabel: str = "target-class logit of the final dream") -> go.Figure:
    """Per evaluating network (x) the mean over classes of a score of each dream (one series per dreamer).

    ``series[name]`` is (M, B): the score under each of M networks for B classes; ``roles[name][m]`` says what
    network m was for that dreamer ("own", "member", "held-out", "other"), shown as the marker symbol.
    """
    symbols = {"own": "star", "member": "circle", "held-out": "diamond-open", "other": "circle-open"}
    fig = go.Figure()
    for k, (name, s) in enumerate(series.items()):
        s = np.asarray(s)
        mean, sd = s.mean(1), s.std(1)
        fig.add_trace(go.Scatter(
            x=list(range(len(mean))), y=mean, error_y=dict(type="data", array=sd, thickness=1, width=2),
            mode="markers+lines", line=dict(color=COLOURS[k % len(COLOURS)], width=1), name=name,
            marker=dict(symbol=[symbols.get(r, "circle") for r in roles[name]], size=9),
            text=list(roles[name]), hovertemplate="network %{x} (%{text})<br>%{y:.2f}<extra>" + name + "</extra>"))
    used = [r for r in symbols if any(r in rs for rs in roles.values())]
    for r in used:  # legend entries for the marker symbols
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{r} network",
                                 marker=dict(symbol=symbols[r], size=9, color="gray")))
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=380, xaxis_title="evaluating network",
                      yaxis_title=ylabel, margin=dict(l=60, r=10, t=50, b=50),
                      legend=dict(orientation="h", y=-0.25, x=0))
    return fig


def transfer_table(rows: Mapping[str, Mapping[str, float]], caption: str = "") -> Markdown:
    """A Markdown table: one row per (dream, evaluating networks), columns = the numbers in ``rows[name]``."""
    if not rows:
        raise ValueError("no rows: pass {row name: {column: value}}")
    cols = list(next(iter(rows.values())))
    lines = ([caption, ""] if caption else []) + ["| | " + " | ".join(cols) + " |",
                                                   "| --- |" + " ---: |" * len(cols)]
    for name, vals in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(vals[c]) for c in cols) + " |")
    return Markdown("\n".join(lines))


def _fmt(v: float) -> str:
    return f"{v:.3f}" if abs(v) <= 1 else f"{v:.1f}"  # probabilities and correlations: 3 decimals; logits: 1
