"""End to end: chapter 1 through papermill with the smoke profile, the book build, and the page in Chromium."""
from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from helpers import book, runner

from .conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("book")
    mp = pytest.MonkeyPatch()
    mp.setenv("HELPERS_DATA", str(tmp / "data"))
    book_dir = tmp / "book"
    book_dir.mkdir()
    for name in ("_config.yml", "intro.md", "course.md"):
        shutil.copy2(ROOT / "book" / name, book_dir / name)
    try:
        first = runner.run_chapters("smoke", None, out_dir=book_dir / "notebooks", progress=False)
        second = runner.run_chapters("smoke", ["01"], out_dir=book_dir / "notebooks", progress=False)
        index = book.build(book_dir, ROOT / "build" / "npm")
    finally:
        mp.undo()
    yield {"dir": book_dir, "index": index, "runs": (first, second)}


def test_runner_executes_then_caches(built_book):
    first, second = built_book["runs"]
    chapters = [c.id for c in runner.find_chapters(ROOT / "notebooks")]
    assert first == [(c, "ran") for c in chapters] and second == [("01", "cached")]
    built = sorted(p.name for p in (built_book["dir"] / "_build" / "html" / "notebooks").glob("*.html"))
    assert built == sorted(c.path.stem + ".html" for c in runner.find_chapters(ROOT / "notebooks"))
    nb = json.loads((built_book["dir"] / "notebooks" / "01_logit_gradients.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "n_models = 3" in "".join(injected[0]["source"])
    for path in (built_book["dir"] / "notebooks").glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {errors[:1]}"


def test_every_glue_key_the_prose_cites_was_glued_under_smoke(built_book):
    """The prose of every chapter cites only values that the run produced (under the smallest profile too)."""
    from helpers import prose

    for chapter in runner.find_chapters(ROOT / "notebooks"):
        cited = set().union(set(), *map(prose.glue_keys, prose.markdown_cells(chapter.path)))
        glued = prose.glued_keys(built_book["dir"] / "notebooks" / chapter.path.name)
        assert cited <= glued, f"{chapter.name}: cited but never glued: {sorted(cited - glued)}"
    page = (built_book["dir"] / "_build" / "html" / "notebooks" / "01_logit_gradients.html").read_text()
    assert "{glue:text}" not in page and "zoo_mean" not in page


def test_page_is_self_contained(built_book):
    html_dir = built_book["dir"] / "_build" / "html"
    page = (html_dir / "notebooks" / "01_logit_gradients.html").read_text()
    assert page.count('class="plotly-graph-div"') == 2
    for other in (html_dir / "notebooks").glob("*.html"):
        text = other.read_text()
        assert 'class="plotly-graph-div"' in text, f"{other.name} shows no figure"
        assert "Traceback (most recent call last)" not in text, f"{other.name} shows an error"
    scripts = re.findall(r'<script[^>]*\ssrc="([^"]+)"', page)
    remote = [s for s in scripts if s.startswith(("http:", "https:", "//"))]
    assert scripts and not remote, f"scripts loaded from the internet: {remote}"
    assert '_static/plotly.min.js' in page and (html_dir / "_static" / "plotly.min.js").stat().st_size > 3e6
    assert '_static/mathjax/tex-chtml.js' in page and (html_dir / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert ("colab.research.google.com/github/saliency-book/saliency-book/blob/main/notebooks/"
            "01_logit_gradients.ipynb") in page
    assert "Woerl" in page
    toc = (built_book["dir"] / "_toc.yml").read_text()
    assert "notebooks/01_logit_gradients" in toc


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs it with apt-get")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return path


@pytest.mark.browser
def test_slider_changes_the_plotted_maps_offline(built_book, tmp_path):
    from playwright.sync_api import sync_playwright

    page_path = built_book["dir"] / "_build" / "html" / "notebooks" / "01_logit_gradients.html"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        failed_local: list[str] = []
        page.on("requestfailed", lambda r: failed_local.append(r.url) if r.url.startswith("file:") else None)
        page.route("http*://**", lambda route: route.abort())  # no internet: every remote request fails
        page.goto(page_path.resolve().as_uri())
        page.wait_for_function("() => window.Plotly && "
                               "document.querySelectorAll('.plotly-graph-div .main-svg').length >= 2", timeout=30000)
        figure = page.locator(".plotly-graph-div").first
        mean_trace = "(() => { const g = document.querySelector('.plotly-graph-div'); " \
                     "const k = g._transitionData._frames[0].traces[0]; return JSON.stringify(g._fullData[k].z); })()"
        state = "(() => { const g = document.querySelector('.plotly-graph-div'); " \
                "return [g.layout.sliders[0].active, g.layout.sliders[0].steps.length]; })()"
        before, (active, n_steps) = page.evaluate(mean_trace), page.evaluate(state)
        assert active == 0 and n_steps == 3
        shot_before = figure.screenshot()
        rail = page.locator(".plotly-graph-div .slider-rail-touch-rect").first
        box = rail.bounding_box()
        page.mouse.click(box["x"] + 0.99 * box["width"], box["y"] + box["height"] / 2)
        page.wait_for_function("() => document.querySelector('.plotly-graph-div').layout.sliders[0].active === 2")
        page.wait_for_timeout(300)
        after = page.evaluate(mean_trace)
        shot_after = figure.screenshot()
        (tmp_path / "after.png").write_bytes(shot_after)
        browser.close()
    assert before != after, "moving the slider did not change the mean map's data"
    assert shot_before != shot_after, "moving the slider did not change the picture"
    assert not failed_local, f"files of the book failed to load: {failed_local}"


@pytest.mark.browser
def test_chapter6_baseline_slider_changes_the_maps_offline(built_book):
    """Chapter 6's first figure: moving the baseline slider to its last step changes the maps (no kernel, no net)."""
    from playwright.sync_api import sync_playwright

    page_path = built_book["dir"] / "_build" / "html" / "notebooks" / "06_perturbation_baselines.html"
    fig = "document.querySelectorAll('.plotly-graph-div')[0]"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu",
                                                                      "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("http*://**", lambda route: route.abort())
        page.goto(page_path.resolve().as_uri())
        page.wait_for_function(f"() => window.Plotly && {fig} && {fig}.querySelector('.main-svg')", timeout=30000)
        maps = f"(() => {{ const g = {fig}; const k = g._transitionData._frames[0].traces[0]; " \
               f"return JSON.stringify(g._fullData[k].z); }})()"
        before = page.evaluate(maps)
        n_steps = page.evaluate(f"{fig}.layout.sliders[0].steps.length")
        rail = page.locator(".plotly-graph-div .slider-rail-touch-rect").first
        rail.scroll_into_view_if_needed()
        box = rail.bounding_box()
        page.mouse.click(box["x"] + 0.99 * box["width"], box["y"] + box["height"] / 2)
        page.wait_for_function(f"() => {fig}.layout.sliders[0].active === {n_steps - 1}")
        page.wait_for_timeout(300)
        after = page.evaluate(maps)
        browser.close()
    assert n_steps >= 2 and before != after, "the baseline slider did not change the maps"
