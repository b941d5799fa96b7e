"""Chapter 8's figures: the measure menu shows one panel at a time, the gallery has one frame per budget."""
from __future__ import annotations

import torch

from helpers.evaluation.intervals import Interval
from helpers.figures import budget as figs


def test_quality_figure_menu_and_log_axis():
    iv = [Interval(0.5, 0.4, 0.6, 0.9), Interval(0.7, 0.6, 0.8, 0.9)]
    panels = {"a": {"e1": ([1, 2], iv), "e2": ([1, 4], iv)}, "b": {"e1": ([1, 2], iv)}}
    fig = figs.quality_figure(panels, "passes")
    assert len(fig.data) == 6 and fig.layout.xaxis.type == "log"
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.args[0]["visible"] for b in buttons] == [[True] * 4 + [False] * 2, [False] * 4 + [True] * 2]
    assert [t.visible for t in fig.data] == [True] * 4 + [False] * 2


def test_gallery_frames_per_budget():
    maps = {"a": torch.rand(3, 2, 5, 5), "b": torch.rand(3, 2, 5, 5)}
    fig = figs.gallery_figure(torch.rand(2, 1, 5, 5), maps, [1, 2, 4])
    assert [f.name for f in fig.frames] == ["1", "2", "4"]
    assert len(fig.frames[0].data) == 4 and len(fig.frames[0].traces) == 4
    assert len(fig.layout.sliders[0].steps) == 3
