"""The live CLEAR panel builds and its callback redraws (no kernel needed: the handler is called directly)."""
from __future__ import annotations

import copy

import pytest
import torch

from helpers.attribution import clear
from helpers.figures.live import ALL, ClearExplorer

from ..attribution.test_clear import H, W, Stripes


def _models() -> list[torch.nn.Module]:
    models = [Stripes().eval(), copy.deepcopy(Stripes().eval())]
    with torch.no_grad():
        models[1].fc1.weight.mul_(2)
    return models


def test_panel_builds_and_updates():
    x = torch.rand(3, 1, H, W) + 0.5
    panel = ClearExplorer(_models(), x, torch.tensor([0, 1, 2]), [str(k) for k in range(10)])
    first = panel.picture.value
    assert first[:4] == b"\x89PNG" and "mean of models 0–0" in panel.info.value
    panel.n_models.value = 2  # observe → update
    assert "mean of models 0–1" in panel.info.value and "(response start)" in panel.info.value
    panel.cls.value = 3
    panel.update()
    assert panel.picture.value != first
    panel.single.value, panel.model.value, panel.image.value = True, 1, 2
    panel.update(None)
    assert "model 1 (" in panel.info.value and "true <b>2</b>" in panel.info.value
    assert set(panel._cache) == {0, 2}
    assert panel.cls.value != ALL


def test_panel_numbers_follow_the_chosen_focus():
    x = torch.rand(2, 1, H, W) + 0.5
    panel = ClearExplorer(_models(), x, torch.tensor([0, 1]), [str(k) for k in range(10)], start="unit")
    assert "positive focus shares" in panel.info.value
    panel.sign.value = "negative"
    assert "negative focus shares" in panel.info.value
    unit, z = panel.responses(0)
    assert unit.shape == (2, 10, H, W) and z.shape == (2, 10)
    torch.testing.assert_close(unit, clear.per_model_responses(panel.models, x[:1], start="unit")[:, 0])


def test_panel_rejects_bad_input():
    with pytest.raises(ValueError, match="one label per image"):
        ClearExplorer([Stripes().eval()], torch.rand(3, 1, H, W), torch.tensor([0]), ["a"] * 10)
    with pytest.raises(ValueError, match="unknown start"):
        ClearExplorer([Stripes().eval()], torch.rand(1, 1, H, W), torch.tensor([0]), ["a"] * 10, start="one")
