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



ENV_BOOK = "HELPERS_BOOK_BUILD"


DIVERGING = "RdBu_r"


COLUMN_PX = 784  # the book's text column (sphinx-book-theme at a 1400 px wide window)
MENU_ENTRY_PX = 36  # height of one entry of an open dropdown list (33 px and a gap)
MENU_HEADER_PX = 38


def _text_px(text: str, size: float = 12) -> float:
    """A generous estimate of the width of a one-line plotly text (no layout engine in Python)."""
    lines = str(text).replace("<br>", "\n").split("\n")
    return max(len(line) for line in lines) * 0.62 * size if lines else 0.0


def _wrap(text: str) -> str:
    """``text`` over two lines, broken at the space nearest its middle (unchanged without a space)."""
    if "<br>" in text or " " not in text:
        return text
    mid = len(text) / 2
    cut = min((i for i, c in enumerate(text) if c == " "), key=lambda i: abs(i - mid))
    return text[:cut] + "<br>" + text[cut + 1:]


def fit_layout(fig: go.Figure, column: int = COLUMN_PX) -> go.Figure:
    """Lay ``fig`` out for the book's column, whatever its builder chose (issue 25), in place:

    - no wider than the column (the plot area scaled, the margins kept);
    - a menu with a single entry is dropped (with the label that names it);
    - the title at the top of the figure, every menu below it in the top margin (the margin grows when needed);
    - the label that names a dropdown ("◀ …") right of the dropdown's estimated width;
    - an open dropdown list fits in the figure (the bottom margin grows when needed);
    - titles of neighbouring panels that would collide are broken over two lines."""
    lay = fig.layout
    w = lay.width or column
    h = lay.height or 450
    m = lay.margin
    t, b = (m.t if m.t is not None else 100), (m.b if m.b is not None else 80)
    left, right = (m.l if m.l is not None else 80), (m.r if m.r is not None else 80)
    if w > column:  # scale the plot area, keep the margins
        ratio = (column - left - right) / max(w - left - right, 1)
        h = t + b + (h - t - b) * ratio
        w = column
    menus = [mn for mn in (lay.updatemenus or ())]
    notes = list(lay.annotations or ())
    labels = [a for a in notes if str(a.text or "").startswith("◀")]
    kept = []
    for mn in menus:
        x0 = mn.x if mn.x is not None else 0.0
        near = sorted((a for a in labels if a in notes and a.y is not None and mn.y is not None
                       and abs(a.y - mn.y) < 0.12 and (a.x or 0.0) >= x0), key=lambda a: (a.x or 0.0) - x0)
        if len(mn.buttons or ()) < 2:
            for a in near[:1]:
                notes.remove(a)
            continue
        kept.append(mn)
    title = lay.title.text or ""
    title_px = 4.0
    if title:
        size = (lay.title.font.size if lay.title.font and lay.title.font.size else 17)
        title_px = 10 + (title.count("<br>") + 1) * size * 1.3
        fig.update_layout(title=dict(y=1, yref="container", yanchor="top", pad=dict(t=8)))
    plot_h = h - t - b
    plot_w = w - left - right
    # menus of the top margin in one row below the title, each named by its label on its right
    row = sorted((mn for mn in kept if (mn.y if mn.y is not None else 1.0) > 1), key=lambda mn: mn.x or 0)
    if row:
        menu_top = title_px + 4
        menu_bottom = menu_top + MENU_HEADER_PX
        panel_tops = []
        for a in notes:
            if a in labels or a.yref != "paper" or a.y is None:
                continue
            size = a.font.size if a.font and a.font.size else 12
            n_lines = str(a.text or "").count("<br>") + 1 + (_text_px(a.text or "", size) > plot_w / 3)
            panel_tops.append(t + (1 - a.y) * plot_h - n_lines * size * 1.35 - 2)
        low = min([x for x in panel_tops if x < menu_bottom + 6], default=None)
        if low is not None:
            t, h = t + (menu_bottom + 6 - low), h + (menu_bottom + 6 - low)
        elif t < menu_bottom + 6:
            t, h = menu_bottom + 6, h + (menu_bottom + 6 - t)
        y_menu = 1 + (t - menu_top) / plot_h
        y_label = 1 + (t - menu_top - MENU_HEADER_PX / 2) / plot_h
        cursor = 0.0
        starts = [mn.x if mn.x is not None else 0.0 for mn in row] + [float("inf")]
        top_labels = [a for a in labels if a.y is not None and a.y > 0.9]
        for k, mn in enumerate(row):
            width_px = max(_text_px(bt.label or "", 12) for bt in mn.buttons) + 45
            x0 = max(mn.x if mn.x is not None else 0.0, cursor) if mn.xanchor != "right" else mn.x
            mine = [a for a in top_labels if starts[k] <= (a.x or 0.0) < starts[k + 1]]
            mn.update(x=x0, y=y_menu, yanchor="top", xanchor=mn.xanchor if mn.xanchor == "right" else "left")
            cursor = x0 + (width_px + 12) / plot_w
            for a in mine[:1]:
                a.update(x=cursor, xanchor="left", xref="paper", y=y_label, yref="paper", yanchor="middle")
                cursor += (_text_px(a.text or "", a.font.size if a.font and a.font.size else 12) + 24) / plot_w
        tops = [menu_top] * len(row)
    else:
        tops = []
    labels = [a for a in notes if str(a.text or "").startswith("◀")]
    # room for the longest open dropdown list
    need = max([top + MENU_HEADER_PX + len(mn.buttons) * MENU_ENTRY_PX + 6
                for mn, top in zip(row, tops) if (mn.type or "dropdown") == "dropdown"
                and (mn.direction or "down") == "down"], default=0)
    if need > h:
        b, h = b + (need - h), need
    # neighbouring panel titles (annotations on one row) that would collide
    rows: dict[float, list] = {}
    for a in notes:
        if a.xref == "paper" and a.yref == "paper" and a.x is not None and a.y is not None and a not in labels:
            rows.setdefault(round(a.y, 3), []).append(a)
    for row in rows.values():
        row.sort(key=lambda a: a.x)
        for i, a in enumerate(row):
            gaps = [abs(a.x - o.x) * plot_w for o in (row[i - 1:i] + row[i + 1:i + 2])]
            size = a.font.size if a.font and a.font.size else 12
            if gaps and _text_px(a.text or "", size) > min(gaps) - 6:
                a.text = _wrap(str(a.text))
    fig.layout.updatemenus = kept
    fig.layout.annotations = notes
    fig.update_layout(width=w, height=round(h), margin=dict(t=round(t), b=round(b)))
    return fig


def show(fig: go.Figure) -> None:
    """Display ``fig`` so that it survives papermill and jupyter-book v1 offline (see toolchain notes), laid out
    for the book's column (:func:`fit_layout`)."""
    from IPython.display import HTML, display

    fit_layout(fig)
    if os.environ.get(ENV_BOOK) == "1":
        # responsive: laid out for the column at a 1400 px window, then as wide as the column the reader's window
        # gives (a narrower window shrinks the plot area, the margins and heights stay)
        fig.update_layout(width=None, autosize=True)
        display(HTML(fig.to_html(full_html=False, include_plotlyjs=False, auto_play=False, default_width="100%",
                                 config={"typesetMath": False, "responsive": True})))
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


def rank_labels(n: int) -> list[str]:
    """Menu labels for explained classes ranked per image: the true class, then the classes by mean logit
    ("runner-up", "third", …), as in chapter 2's class menu."""
    words = ["true class", "runner-up", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]
    return [words[k] if k < len(words) else f"rank {k + 1}" for k in range(n)]


# Paul Tol's colour-blind-safe qualitative schemes (SRON/EPS/TN/09-002): "muted", then "bright" without its grey
_TOL = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499",
        "#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377")


def line_colours(n: int) -> list[str]:
    """``n`` distinct colours for the lines of one figure (plotly's default cycle repeats after 10): Tol's
    colour-blind-safe schemes, then evenly spaced hues."""
    import colorsys

    if n <= len(_TOL):
        return list(_TOL[:n])
    extra = [colorsys.hsv_to_rgb(k / (n - len(_TOL)), 0.8, 0.75) for k in range(n - len(_TOL))]
    return list(_TOL) + [f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}" for r, g, b in extra]
