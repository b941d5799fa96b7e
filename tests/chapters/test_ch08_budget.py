"""Chapter 8's study in miniature: shapes, nested budgets, the seed mean at M/2 is the estimation half's mean, the
ensemble of a linear-in-the-logit method equals the mean map, and a second call is a map-cache hit."""
from __future__ import annotations

import torch

from helpers.chapters import ch08_budget as ch08
from helpers.zoo.architectures import build_model


def test_study_in_miniature(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path))
    models = []
    for s in range(4):
        torch.manual_seed(s)
        models.append(build_model("lenet", 1, 10, image_size=28).eval())
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([1, 2, 3])
    pairs = [(s, s) for s in range(4)]
    st = ch08.study("tiny", pairs, models, x, y, ["gradient"], 4, 0.2, 0.15, 0)
    assert st.seed_budgets == [1, 2] and st.single_budgets == [1, 2, 4]
    est = st.estimates["gradient"]
    assert est["noisegrad"].shape == (3, 2, 3, 28, 28)
    torch.testing.assert_close(est[ch08.SEED][-1, 0], st.maps["gradient"][:2].mean(0))
    close = st.stats["closeness"]["gradient"]
    assert set(close) == {ch08.SEED, *ch08.SINGLE} and close["fusiongrad"][1].shape == (3, 2, 3)
    assert ch08.ensemble_identity(models[:2], st.maps["gradient"][:2], x, y, "gradient") < 1e-4
    again = ch08.single_maps("tiny", pairs[:2], [None, None], x, y, [1, 2, 4], "gradient", "noisegrad", 0.2, 0.0, 0)
    torch.testing.assert_close(again, est["noisegrad"])  # cache hit: the models are not even needed
    v = ch08.equal_budget_verdicts(st, "gradient", 0.05, 50, 0.9, 0)
    assert v["close_code"] in "+-=?" and "threshold ±0.05" in v["close_verdict"]
