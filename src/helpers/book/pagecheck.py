"""What a reader sees at a glance, checked in a real browser: every chapter page of a built book is loaded offline
in headless Chromium (one browser for all pages) and its rendered layout is measured.

A page is reported for: console errors; a figure wider than its text column; a display equation wider than its
box; a paragraph that is a raw Markdown table; literal backticks in prose; a plotly title (or subplot title)
overlapped by a menu, a legend or another title; an open dropdown list cut by its figure; a qualitative colour that
two lines of one figure share; a stray text output (anything that is not a figure, a table or prose); a cited key
missing from the bibliography.

Used by the browser tests on the smoke book and, as a warning, by ``python -m helpers build --check``
(``make book``).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

# Measured in the page, after plotly and MathJax have drawn. Returns a list of defects (strings).
CHECK_JS = r"""
async () => {
  const out = [];
  const short = (s, n = 60) => { s = (s || '').replace(/<[^>]+>/g, '').replace(/\s+/g, ' ').trim();
                                 return s.length > n ? s.slice(0, n - 1) + '…' : s; };
  const rect = el => el.getBoundingClientRect();
  const overlap = (a, b, tol = 1) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > tol &&
                                     Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > tol;
  const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const st = getComputedStyle(article);
  const column = article.clientWidth - parseFloat(st.paddingLeft || 0) - parseFloat(st.paddingRight || 0);

  // figures
  const figs = [...document.querySelectorAll('.plotly-graph-div')];
  for (const [i, g] of figs.entries()) {
    const t = g.layout && g.layout.title ? (typeof g.layout.title === 'string' ? g.layout.title : g.layout.title.text)
                                         : '';
    const name = `figure ${i + 1}` + (t ? ` "${short(t, 50)}"` : '');
    const svg = g.querySelector('.main-svg');
    const w = svg ? rect(svg).width : rect(g).width;
    if (w > column + 1) out.push(`${name} is ${Math.round(w)} px wide in a ${Math.round(column)} px column`);
    const titles = [...g.querySelectorAll('.gtitle')].filter(e => (e.textContent || '').trim());
    // one box per menu (the container's box spans all menus, and the gaps between them)
    const menus = [...g.querySelectorAll('.updatemenu-header-group, .updatemenu-button')].filter(e => rect(e).width > 0);
    const legends = [...g.querySelectorAll('.legend')].filter(e => rect(e).width > 0);
    const notes = [...g.querySelectorAll('.annotation')].filter(e => (e.textContent || '').trim() && rect(e).width > 0);
    for (const ti of titles) {
      for (const m of menus) if (overlap(rect(ti), rect(m))) out.push(`${name}: its title is overlapped by a menu`);
      for (const l of legends) if (overlap(rect(ti), rect(l))) out.push(`${name}: its title is overlapped by a legend`);
      for (const a of notes) if (overlap(rect(ti), rect(a)))
        out.push(`${name}: its title is overlapped by "${short(a.textContent, 40)}"`);
    }
    for (let a = 0; a < notes.length; a++) {
      for (const m of menus) if (overlap(rect(notes[a]), rect(m)))
        out.push(`${name}: "${short(notes[a].textContent, 40)}" is overlapped by a menu`);
      for (let b = a + 1; b < notes.length; b++) if (overlap(rect(notes[a]), rect(notes[b]), 2))
        out.push(`${name}: "${short(notes[a].textContent, 30)}" and "${short(notes[b].textContent, 30)}" collide`);
    }
    // menus with one entry, dropdown lists cut by the figure
    for (const [k, m] of ((g.layout && g.layout.updatemenus) || []).entries()) {
      if ((m.buttons || []).length < 2) out.push(`${name}: menu ${k + 1} has ${(m.buttons || []).length} entry`);
    }
    const headers = [...g.querySelectorAll('.updatemenu-header')];
    for (const h of headers) {
      h.dispatchEvent(new MouseEvent('click', {bubbles: true}));
      await new Promise(r => setTimeout(r, 30));
      const list = g.querySelector('.updatemenu-dropdown-button-group');
      const buttons = list ? [...list.querySelectorAll('.updatemenu-dropdown-button, .updatemenu-button')] : [];
      if (buttons.length && svg) {
        const box = rect(svg), last = rect(buttons[buttons.length - 1]);
        if (last.bottom > box.bottom + 1 || last.right > box.right + 1 || rect(buttons[0]).top < box.top - 1)
          out.push(`${name}: an open dropdown list (${buttons.length} entries) is cut by the figure`);
      }
      h.dispatchEvent(new MouseEvent('click', {bubbles: true}));
      await new Promise(r => setTimeout(r, 30));
    }
    // a qualitative colour shared by two lines that show together
    const byColour = new Map();
    for (const d of (g._fullData || [])) {
      if (d.visible !== true || !/scatter/.test(d.type || '') || !/lines/.test(d.mode || '')) continue;
      if (!d.line || !(d.line.width > 0) || !d.name) continue;
      const c = String(d.line.color || '').replace(/\s/g, '').toLowerCase();
      const m = c.match(/^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/) || c.match(/^rgba?\((\d+),(\d+),(\d+)/);
      if (!m) continue;
      const rgb = (m[0].startsWith('#') ? m.slice(1, 4).map(x => parseInt(x, 16)) : m.slice(1, 4).map(Number));
      if (Math.max(...rgb) - Math.min(...rgb) < 16) continue;  // greys and black: references, not categories
      const key = rgb.join(',');
      const who = d.legendgroup || d.name;
      if (!byColour.has(key)) byColour.set(key, new Set());
      byColour.get(key).add(who);
    }
    for (const [c, who] of byColour) if (who.size > 1)
      out.push(`${name}: lines ${[...who].map(w => '"' + short(w, 25) + '"').join(', ')} share the colour rgb(${c})`);
  }

  // display equations
  for (const [i, c] of [...document.querySelectorAll('mjx-container[display="true"]')].entries()) {
    const math = c.querySelector('mjx-math');
    const box = c.parentElement && c.parentElement.classList.contains('math') ? c.parentElement : c;
    const wm = math ? rect(math).width : c.scrollWidth;
    const wb = Math.min(rect(box).width, column);
    if (wm > wb + 1) out.push(`display equation ${i + 1} is ${Math.round(wm)} px wide in a ${Math.round(wb)} px box`);
  }

  // prose: raw Markdown tables, literal backticks, unrendered roles
  for (const p of article.querySelectorAll('p')) {
    const s = (p.textContent || '').trim();
    if (s.startsWith('|') && s.includes(' | ')) out.push(`a raw Markdown table: "${short(s)}"`);
  }
  const skip = 'pre, code, script, style, .highlight, mjx-container, .cell_input, textarea, .MathJax';
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const s = n.nodeValue || '';
    if (!s.includes('`') && !s.includes('{cite') && !s.includes('{glue')) continue;
    if (n.parentElement && n.parentElement.closest(skip)) continue;
    out.push((s.includes('`') ? 'literal backticks' : 'an unrendered role') + ` in prose: "${short(s)}"`);
  }

  // stray outputs: plain text, streams, errors
  for (const o of article.querySelectorAll('.cell_output .output.text_plain, .cell_output .output.stream, ' +
                                           '.cell_output .output.stderr, .cell_output .output.traceback')) {
    if ((o.textContent || '').trim()) out.push(`a stray text output: "${short(o.textContent)}"`);
  }
  return out;
}
"""

READY_JS = """() => {
  const figs = document.querySelectorAll('.plotly-graph-div');
  const drawn = [...figs].every(g => g.querySelector('.main-svg'));
  const mj = [...document.querySelectorAll('div.math')].every(m => m.querySelector('mjx-container'));
  return (!figs.length || window.Plotly) && drawn && mj;
}"""

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


def chromium_path() -> str | None:
    """Chromium (Debian's) or Chrome (a CI runner's) on ``PATH``."""
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    return next(filter(None, map(shutil.which, names)), None)


def chapter_pages(html_dir: Path) -> list[Path]:
    """The chapter pages of a built book (``notebooks/NN_*.html``)."""
    return sorted((Path(html_dir) / "notebooks").glob("[0-9][0-9]_*.html"))


def unknown_citations(page: Path, bib: Path) -> list[str]:
    """Keys that the page's source (``_sources/…ipynb`` or ``.md``) cites and the bibliography lacks."""
    from . import cite

    html_dir = next((p for p in page.parents if (p / "_sources").is_dir()), page.parent)
    rel = page.relative_to(html_dir).with_suffix("")
    sources = [s for s in (html_dir / "_sources" / rel.parent).glob(rel.name + ".*")]
    if not sources or not bib.is_file():
        return []
    src = sources[0]
    text = cite.notebook_markdown(src) if src.name.endswith(".ipynb") else src.read_text(encoding="utf-8")
    if src.name.endswith(".ipynb"):  # glued Markdown (e.g. the references list) cites too
        import json

        cells = json.loads(src.read_text(encoding="utf-8")).get("cells", [])
        text += "\n".join("".join(o.get("data", {}).get("text/markdown", "")) for c in cells
                          for o in c.get("outputs", []))
    return [f"cites {k!r}, which the bibliography lacks" for k in cite.unknown_keys(text, cite.bib_keys(bib))]


def check_pages(pages: list[Path], bib: Path | None = None, chromium: str | None = None,
                screenshots: Path | None = None, width: int = 1400) -> dict[str, list[str]]:
    """``{page name: [defect, …]}`` for every page (one Chromium for all, offline: remote requests are aborted).
    With ``screenshots``, a full-page PNG of each page is written there (``<page stem>.png``)."""
    from playwright.sync_api import sync_playwright

    chromium = chromium or chromium_path()
    if chromium is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    found: dict[str, list[str]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": 1000})
        page.route("http*://**", lambda route: route.abort())
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        for path in pages:
            errors.clear()
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            try:
                page.wait_for_function(READY_JS, timeout=30000)
            except Exception:  # noqa: BLE001 - reported as a defect of the page
                errors.append("the page's figures or equations were not drawn within 30 s")
            page.wait_for_timeout(200)
            defects = [f"console error: {e[:200]}" for e in errors]
            defects += page.evaluate(CHECK_JS)
            if bib is not None:
                defects += unknown_citations(Path(path), bib)
            found[Path(path).name] = list(dict.fromkeys(defects))
            if screenshots is not None:
                screenshots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshots / f"{Path(path).stem}.png"), full_page=True)
        browser.close()
    return found


def check_book(book_dir: Path, chromium: str | None = None) -> dict[str, list[str]]:
    """:func:`check_pages` on every chapter page of the book built in ``book_dir``."""
    html_dir = Path(book_dir) / "_build" / "html"
    return check_pages(chapter_pages(html_dir), Path(book_dir) / "references.bib", chromium)


def report(found: dict[str, list[str]]) -> str:
    """The defects as lines, one a defect, under the page's name; empty when there are none."""
    return "\n".join(f"{name}: {d}" for name, defects in found.items() for d in defects)


def warn(book_dir: Path) -> int:
    """Check the built book and print what was found to stderr, as warnings (never raises: a missing Chromium or
    playwright is a warning too); returns the number of defects. A build that was checked before (the same stamp,
    :mod:`helpers.book.stamp`, and this checker) is not checked again: its findings are printed again."""
    import sys

    from . import stamp

    key = stamp.check_key(book_dir, Path(__file__))
    found = stamp.cached_check(book_dir, key)  # this build was checked already (an unchanged rebuild)
    if found is None:
        try:
            found = check_book(book_dir)
        except Exception as err:  # noqa: BLE001 - the check never fails the build
            print(f"warning: the page check did not run: {err}", file=sys.stderr)
            return 0
        stamp.keep_check(book_dir, key, found)
    text = report(found)
    n = sum(map(len, found.values()))
    for line in text.splitlines():
        print(f"warning: page check: {line}", file=sys.stderr)
    print(f"page check: {n} defect(s) on {len(found)} chapter page(s)", file=sys.stderr if n else sys.stdout)
    return n


ENV = "HELPERS_PAGE_CHECK"  # set to 1 to run the page check after every ``python -m helpers build``


def wanted(flag: bool) -> bool:
    return flag or os.environ.get(ENV, "") not in ("", "0")


def contact_sheet(images: list[Path], out: Path, thumb_width: int = 200, max_height: int = 3000) -> Path:
    """All ``images`` side by side (each scaled to ``thumb_width``, cut at ``max_height``), named below, in one
    PNG at ``out``."""
    from PIL import Image, ImageDraw

    thumbs = []
    for path in images:
        im = Image.open(path).convert("RGB")
        im = im.resize((thumb_width, max(1, round(im.height * thumb_width / im.width))), Image.LANCZOS)
        thumbs.append((Path(path).stem, im.crop((0, 0, thumb_width, min(im.height, max_height)))))
    gap, label = 12, 22
    height = max(im.height for _, im in thumbs) + label + 2 * gap
    sheet = Image.new("RGB", (len(thumbs) * (thumb_width + gap) + gap, height), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (name, im) in enumerate(thumbs):
        x = gap + k * (thumb_width + gap)
        draw.text((x, gap // 2), name[:36], fill="black")
        sheet.paste(im, (x, gap + label))
        draw.rectangle((x - 1, gap + label - 1, x + im.width, gap + label + im.height), outline="#999999")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(256, method=Image.Quantize.FASTOCTREE).save(out, optimize=True)
    return out


def screenshots(book_dir: Path, out_dir: Path, width: int = 480) -> dict[str, list[str]]:
    """A full-page screenshot of every chapter page of the book built in ``book_dir`` (scaled to ``width`` px, 256
    colours, to keep the repository small: ``out_dir/<page>.png``) and ``out_dir/contact_sheet.png`` of them all; returns the page check's findings."""
    import tempfile

    from PIL import Image

    html_dir = Path(book_dir) / "_build" / "html"
    with tempfile.TemporaryDirectory() as tmp:
        found = check_pages(chapter_pages(html_dir), Path(book_dir) / "references.bib", screenshots=Path(tmp))
        out_dir.mkdir(parents=True, exist_ok=True)
        shots = []
        for png in sorted(Path(tmp).glob("*.png")):
            im = Image.open(png).convert("RGB")
            im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
            im.quantize(256, method=Image.Quantize.FASTOCTREE).save(out_dir / png.name, optimize=True)
            shots.append(out_dir / png.name)
    contact_sheet(shots, out_dir / "contact_sheet.png")
    return found


if __name__ == "__main__":  # python -m helpers.book.pagecheck BOOK_DIR [SCREENSHOT_DIR]
    import sys

    book = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("book")
    if len(sys.argv) > 2:
        print(report(screenshots(book, Path(sys.argv[2]))) or "page check: nothing found")
    else:
        sys.exit(1 if warn(book) else 0)
