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

from .common import png_uri
from . import common


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

    ``rows[r]`` is (S, B, C, H, W) in [0, 1] (the snapshots of one :func:`helpers.dream.dream` run, denormalized),
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
    names = [str(st) for st in steps]
    fig = go.Figure(go.Image(source=frames[-1], x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"))
    fig.frames = [go.Frame(name=n, data=[go.Image(source=src)], traces=[0]) for n, src in zip(names, frames)]
    common.square_axes(fig, 1)  # square pixels, y downwards; the tick labels name the classes and the dreamers
    fig.update_xaxes(showticklabels=True, side="top", ticks="",
                     tickvals=[(j + 0.5) * w * scale + j * gap for j in range(n_cls)], ticktext=list(class_labels))
    fig.update_yaxes(showticklabels=True, ticks="",
                     tickvals=[(i + 0.5) * h * scale + i * gap for i in range(n_rows)], ticktext=list(row_labels))
    fig.update_layout(
        title=dict(text=title, font=dict(size=14), y=0.99, yanchor="top"),
        height=int(width_px * height_px / wide_px + 190), margin=dict(l=130, r=10, t=75, b=55), plot_bgcolor="white",
        sliders=[common.slider(names, "step ", active=s - 1)],
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
                                 name="held-out networks on real test images"), row=1, col=1)
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


def zoo_scores_figure(single: torch.Tensor | np.ndarray, ensemble: torch.Tensor | np.ndarray, n_ensemble: int,
                      dreamer: int = 0, title: str = "") -> go.Figure:
    """:func:`per_model_figure` of two final dreams, (M, B) target logits each under every network of the zoo:
    network ``dreamer``'s own dream (its own network starred) and the ensemble's of networks 0 … n_ensemble − 1
    (members filled, held-out networks open diamonds)."""
    m = np.asarray(single).shape[0]
    if np.asarray(ensemble).shape[0] != m or not 1 <= n_ensemble < m:
        raise ValueError(f"both dreams need scores under the same networks, and 1 ≤ n_ensemble < {m}")
    roles = {f"network {dreamer}'s dream": ["own" if k == dreamer else "other" for k in range(m)],
             f"ensemble dream ({n_ensemble})": ["member"] * n_ensemble + ["held-out"] * (m - n_ensemble)}
    series = dict(zip(roles, (np.asarray(single), np.asarray(ensemble))))
    return per_model_figure(series, roles, title=title)


TRANSFER_COLUMNS = {"logit": "target logit", "prob": "softmax prob.", "margin": "margin",
                    "min_margin": "min. margin", "top1": "top-1 = target"}


def _span(first: int, last: int) -> str:
    return f"network {first}" if first == last else f"networks {first}–{last}"


def transfer_labels(n_models: int, n_ensemble: int, n_real: int, dreamer: int = 0) -> dict[str, str]:
    """Row names of :func:`helpers.dream.transfer_rows` for the table (which networks score which dream)."""
    last = n_models - 1
    held = [k for k in range(n_ensemble, n_models) if k != dreamer]
    held_s = _span(held[0], held[-1]) if held == list(range(held[0], held[-1] + 1)) else (
        "networks " + ", ".join(map(str, held)))
    return {"single_own": f"network {dreamer}'s dream, network {dreamer} (own)",
            "single_others": f"network {dreamer}'s dream, the {n_models - 1} other networks (all but {dreamer})",
            "single_held": f"network {dreamer}'s dream, held-out {held_s}",
            "ens_members": f"ensemble dream, members ({_span(0, n_ensemble - 1)})",
            "ens_held": f"ensemble dream, held-out {_span(n_ensemble, last)}",
            "real_held": f"real test images ({n_real}), held-out {_span(n_ensemble, last)}"}


def transfer_table(rows: Mapping[str, Mapping[str, float]], caption: str = "",
                   row_labels: Mapping[str, str] | None = None,
                   col_labels: Mapping[str, str] | None = None) -> Markdown:
    """A Markdown table: one row per (dream, evaluating networks), columns = the numbers in ``rows[name]``.

    ``row_labels`` / ``col_labels`` rename rows and columns for display (e.g. :func:`transfer_labels` and
    :data:`TRANSFER_COLUMNS`); names without a label are shown as they are."""
    if not rows:
        raise ValueError("no rows: pass {row name: {column: value}}")
    rl, cl = row_labels or {}, col_labels or {}
    cols = list(next(iter(rows.values())))
    lines = ([caption, ""] if caption else []) + ["| | " + " | ".join(cl.get(c, c) for c in cols) + " |",
                                                   "| --- |" + " ---: |" * len(cols)]
    for name, vals in rows.items():
        lines.append(f"| {rl.get(name, name)} | " + " | ".join(_fmt(vals[c]) for c in cols) + " |")
    return Markdown("\n".join(lines))


def similarity_table(sim: Mapping[str, torch.Tensor], n_ensemble: int, caption: str = "") -> Markdown:
    """:func:`helpers.dream.dream_similarity` as a table: mean, s.d., min and max over classes of each correlation."""
    h = n_ensemble // 2
    labels = {"single": "network 0 vs network 1 (each alone)",
              "half": f"{_span(0, h - 1)} vs {_span(h, 2 * h - 1)} (two ensembles of {h})",
              "single_vs_ensemble": f"network 0 vs the ensemble of {n_ensemble}",
              "proto_single": "network 0's dream vs the class's mean test image",
              "proto_ensemble": "ensemble's dream vs the class's mean test image"}
    rows = {}
    for k, v in sim.items():
        v = torch.as_tensor(v, dtype=torch.float64)
        rows[labels.get(k, k)] = {"mean": v.mean().item(), "s.d.": v.std(unbiased=False).item(),
                                 "min": v.min().item(), "max": v.max().item()}
    return transfer_table(rows, caption=caption)


def _fmt(v: float) -> str:
    return f"{v:.3f}" if abs(v) <= 1 else f"{v:.1f}"  # probabilities and correlations: 3 decimals; logits: 1
