"""The page "How far to trust the verdicts": the designs follow the chapters and the profile, each carries the
chapter's interval, a bad design fails the page with one line that names it and its fix, and the book's designs
pass."""
from __future__ import annotations

import re

import pytest

from helpers.book import profiles, trust
from helpers.evaluation import calibration as cal

from ..conftest import ROOT

PAGE = "09_how_far_to_trust"


def test_size_expressions():
    p = {"n_images": 30, "n_per_class": 2, "n_models": 9, "n_train": None}
    assert [trust.size(e, p) for e in ("n_images", "n_per_class*10", "n_models/2", "n_train", "absent")] == \
        [30, 20, 4, None, None]
    with pytest.raises(ValueError, match="optionally \\*k or /k"):
        trust.size("n_images + 1", p)


def test_every_design_names_parameters_its_chapter_declares_and_a_known_interval():
    chapters = {c.id: c for c in profiles.find_chapters(ROOT / "notebooks")}
    for e in trust.DESIGNS:
        declared = profiles.declared_parameters(chapters[e.chapter].path)
        for expr in (e.models, e.images):
            name = re.match(r"\w+", expr).group(0)
            assert name.isdigit() or name in declared, f"{e.chapter} {e.what}: {expr} is not declared"
        assert e.interval in cal.INTERVALS and e.statistic in cal.STATISTICS


def test_designs_follow_the_profile_and_carry_the_chapters_interval():
    got = {d.name: d for d in trust.designs("default")}
    d1 = got["01 agreement between models"]
    entry = next(e for e in trust.DESIGNS if e.chapter == "01")
    params = {**profiles.declared_parameters(ROOT / "notebooks" / "01_logit_gradients.ipynb"),
              **profiles.load_profile("default", ROOT / "profiles")["parameters"],
              **profiles.load_profile("default", ROOT / "profiles")["chapters"].get("01", {})}
    assert (d1.statistic, d1.n_models, d1.n_images, d1.interval) == (
        "pairwise", params["n_models"], params["n_images"], entry.interval)
    assert got["08 closeness to the held-out mean (replicates × images)"].n_models == params["n_models"] // 2
    smoke = {d.name: (d.n_models, d.n_images) for d in trust.designs("smoke")}
    assert smoke["01 agreement between models"] == (3, 4)  # smoke's n_images
    assert trust.size("10", {}) == 10 and trust.size("n_per_class*10", {"n_per_class": 3}) == 30
    changed = [trust.Entry("01", "x", "pairwise", "n_models", "n_images", "jackknife-t")]
    assert [d.interval for d in trust.designs("default", entries=changed)] == ["jackknife-t"]


def test_a_deliberately_small_design_fails_the_check_with_its_fix():
    tiny = cal.Design("tiny", "pairwise", 3, 3, n_boot=100)
    rows = [trust.Row(cal.simulate(tiny, 200), cal.simulate(trust.with_interval(tiny, "jackknife-t"), 200))]
    assert not rows[0].own.ok()
    with pytest.raises(ValueError) as err:
        trust.check_rows(rows)
    line = str(err.value)
    assert "\n" not in line and line.startswith("designs that fail calibration: tiny (M=3, N=3): coverage 0.")
    assert line.endswith("use more images or models") or "use the jackknife-t interval" in line
    two = cal.Design("two models", "pairwise", 2, 30, n_boot=100)
    row, = trust.report("default", 100, extra=[two], entries=[])
    assert row.alt is None and not row.own.ok() and row.fix() == "use more images or models"
    s = trust.summary([row])
    assert (s["n_designs"], s["n_pass"], s["all_pass_word"]) == (1, 0, "1 design(s) the book uses fail")


def test_the_table_lists_both_intervals_the_chapters_first():
    d = cal.Design("07 scores", "mean", 6, 8)
    rows = [trust.Row(cal.simulate(d, 50), cal.simulate(trust.with_interval(d, "jackknife-t"), 50))]
    table = trust.table_rows(rows)
    assert [r["interval"] for r in table] == ["bootstrap (the chapter's)", "jackknife-t"]
    assert re.fullmatch(r"0\.\d\d ± 0\.\d\d", table[0]["coverage"]) and table[0]["M"] == "6"
    assert trust.table(rows).count("\n") == 3


@pytest.mark.slow
def test_the_books_designs_pass():
    """The acceptance test of the book's designs (chapter 9 runs the same check and fails the build otherwise)."""
    trust.check_rows(trust.report("default"))


@pytest.mark.slow
def test_the_page_fails_on_bad_designs_and_keeps_the_good_page(tmp_path, data_root):
    """The smoke profile's own designs (3 models × 2 images) and a tiny extra design fail the page: the runner
    stops with one line naming them and their fix, and the previous page stays byte-identical."""
    from helpers.book import runner

    out = tmp_path / "out"
    out.mkdir()
    page = out / f"{PAGE}.ipynb"
    page.write_text("{}")
    with pytest.raises(SystemExit) as err:
        runner.run_chapters("smoke", ["09"], {"designs_profile": "smoke", "n_sim": 50,
                                              "extra_designs": [["tiny", "pairwise", 3, 3, "bootstrap"]]},
                            out_dir=out, progress=False)
    line = str(err.value)
    assert re.search(r"^\[09\] 09_how_far_to_trust failed in cell \d+: ValueError: designs that fail calibration: "
                     r"0\d [^;]* \(M=[23], N=\d+\): coverage 0\.\d\d .*; tiny \(M=3, N=3\): coverage 0\.\d\d .*"
                     r"; the failed notebook is .*is unchanged$", line), line
    assert "\n" not in line and page.read_text() == "{}"


def test_the_page_reruns_when_a_profile_or_a_chapter_changes(tmp_path):
    """The page reads the other chapters' designs from the profiles and the chapters' parameters cells: the
    runner's key covers them (the files its "profiles/*.yaml" and "notebooks/0*.ipynb" name)."""
    from helpers.book import deps

    named = deps.named_files(ROOT / "notebooks" / f"{PAGE}.ipynb", ROOT)
    assert ROOT / "profiles" / "default.yaml" in named and ROOT / "notebooks" / "01_logit_gradients.ipynb" in named
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "a.yaml").write_text("x")
    page = tmp_path / "p.ipynb"
    page.write_text('{"cells": [{"cell_type": "code", "source": "S = [\\"profiles/*.yaml\\"]"}]}')
    before = deps.dependency_digest(page, root=tmp_path)
    (tmp_path / "profiles" / "a.yaml").write_text("y")
    assert deps.dependency_digest(page, root=tmp_path) != before
