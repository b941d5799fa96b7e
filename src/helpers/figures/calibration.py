"""The calibration figure of the page "How far to trust the verdicts": the coverage of every design's 90 %
intervals under each interval procedure, with its Monte Carlo error, against the nominal level and the bar a
design must clear (:mod:`helpers.evaluation.calibration`)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from .common import line_colours


def _wrap(text: str, width: int = 34) -> str:
    """``text`` broken over lines of about ``width`` characters (``<br>``), so that long design names keep the
    figure's left margin narrow."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "<br>".join([*lines, line])


def coverage_figure(records: Sequence[dict[str, Any]], min_coverage: float, level: float = 0.9,
                    title: str = "Coverage of the intervals, per design") -> go.Figure:
    """One marker per design and interval (``records`` of :func:`helpers.book.trust.records`: chapter, design,
    interval, used, coverage, coverage_se), ±2 Monte Carlo standard errors, filled where the chapter uses that
    interval; a dashed line at the nominal ``level``, a solid one at the bar ``min_coverage``, both in the legend."""
    label = lambda r: f"{r['chapter']} {_wrap(r['design'])}<br>(M × N = {r['M']} × {r['N']})"  # noqa: E731
    labels = list(dict.fromkeys(label(r) for r in records))
    intervals = sorted({r["interval"] for r in records})  # the same colour for an interval on every page
    colours = dict(zip(intervals, ("#4477AA", "#EE6677", *line_colours(len(intervals)))))
    low = min([0.4] + [r["coverage"] - 2 * r["coverage_se"] - 0.05 for r in records])
    fig = go.Figure()
    for k, interval in enumerate(intervals):
        rows = [r for r in records if r["interval"] == interval]
        y = [labels.index(label(r)) + (k - 0.5) * 0.25 for r in rows]
        fig.add_trace(go.Scatter(
            x=[r["coverage"] for r in rows], y=y, mode="markers", name=interval,
            error_x={"type": "data", "array": [2 * r["coverage_se"] for r in rows], "color": colours[interval]},
            marker={"color": [colours[interval] if r["used"] else "white" for r in rows], "size": 10,
                        "symbol": "circle", "line": {"color": colours[interval], "width": 2}},
            hovertemplate="%{text}<extra></extra>",
            text=[f"{r['chapter']} {r['design']}: {r['interval']}, coverage {r['coverage']:.2f} ± "
                  f"{r['coverage_se']:.2f}" + (" (the chapter's interval)" if r["used"] else "") for r in rows]))
    span = [-0.5, len(labels) - 0.5]
    for x, name, line in ((level, f"nominal level {level:.0%}", {"dash": "dash", "color": "#777777", "width": 1}),
                          (min_coverage, f"the bar {min_coverage}", {"color": "#222222", "width": 1.5})):
        fig.add_trace(go.Scatter(x=[x, x], y=span, mode="lines", name=name, line=line, hoverinfo="skip"))
    fig.update_layout(
        title={"text": title}, height=230 + (18 * max(t.count("<br>") + 1 for t in labels) + 8) * len(labels), margin={"l": 250, "r": 20, "t": 60, "b": 170},
        xaxis={"title": f"coverage of the {level:.0%} intervals", "range": [low, 1.0]},
        yaxis={"tickmode": "array", "tickvals": list(range(len(labels))), "ticktext": labels, "autorange": "reversed"},
        legend={"orientation": "h", "x": 0.0, "y": -0.12, "xanchor": "left", "yanchor": "top",
                "title": {"text": "filled: the chapter's interval, open: the other; bars: ±2 Monte Carlo s.e.<br>"}})
    return fig
