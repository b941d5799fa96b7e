from helpers.chapters import coverage


def test_a_small_design_is_not_calibrated_and_a_large_one_is(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path))
    small = coverage.design_calibration("small", "pairwise", 3, 3, n_sim=100)
    large = coverage.design_calibration("large", "mean", 12, 30, n_sim=100)
    assert small["cal_verdict"].startswith("not calibrated")
    assert large["cal_verdict"].startswith("calibrated")
    assert float(large["cal_coverage"].split(" ± ")[0]) >= 0.85 > float(small["cal_coverage"].split(" ± ")[0])


def test_too_few_models_or_simulations_are_not_judged(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path))
    assert coverage.design_calibration("one", "mean", 1, 30)["cal_verdict"].startswith("not judged")
    few = coverage.design_calibration("few", "mean", 6, 30, n_sim=coverage.MIN_CAL_SIMS - 1)
    assert few["cal_verdict"].startswith("not judged") and few["cal_sims"] == coverage.MIN_CAL_SIMS - 1
