from helpers.figures import calibration as cal_figures


def _records():
    out = []
    for ch, design, m, n in (("01", "agreement between models, per method and class", 24, 30), ("06", "seed yardstick", 6, 30)):
        for interval, used, cover in (("bootstrap", ch == "01", 0.88), ("jackknife-t", ch == "06", 0.95)):
            out.append({"chapter": ch, "design": design, "M": m, "N": n, "interval": interval, "used": used,
                        "coverage": cover, "coverage_se": 0.02})
    return out


def test_one_marker_per_design_and_interval_filled_where_the_chapter_uses_it():
    fig = cal_figures.coverage_figure(_records(), 0.85)
    markers = [t for t in fig.data if t.mode == "markers"]
    assert sorted(t.name for t in markers) == ["bootstrap", "jackknife-t"]
    assert sum(len(t.x) for t in markers) == 4
    boot = next(t for t in markers if t.name == "bootstrap")
    assert list(boot.marker.color)[0] != "white" and list(boot.marker.color)[1] == "white"
    ticks = list(fig.layout.yaxis.ticktext)
    assert len(ticks) == 2 and all("24 × 30" in ticks[0] or "6 × 30" in ticks[1] for _ in ticks)
    assert max(len(line) for t in ticks for line in t.split("<br>")) <= 36  # long names wrap: a narrow margin
    assert [t.x[0] for t in fig.data if t.mode == "lines"] == [0.9, 0.85]
