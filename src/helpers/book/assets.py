"""A Sphinx extension of the book (``sphinx.extra_extensions`` in ``book/_config.yml``): each page loads the
scripts it uses, once.

- Each script is loaded once: sphinx-thebe adds its inline configuration (``const THEBE_JS_URL = …``) both to the
  app and to the already initialised builder, so every page declared the constant twice and logged
  "Identifier 'THEBE_JS_URL' has already been declared".
- plotly.js (4.8 MB) only on pages with a plotly figure; require.js and the ipywidgets HTML manager only on pages
  with a widget.
"""
from __future__ import annotations

from typing import Any

PLOTLY = ("plotly.min.js",)
WIDGETS = ("require.js", "widgets/assets-path.js", "widgets/embed-amd.js")


def page_scripts(scripts: list[Any], body: str) -> list[Any]:
    """``scripts`` (Sphinx's ``_JavaScript`` entries, or plain names) without duplicates and without the plotly /
    widget scripts that ``body`` (the page's HTML) does not use."""
    uses_plotly = "plotly-graph-div" in body
    # myst-nb passes a page's widget state as a script of type application/vnd.jupyter.widget-state+json
    uses_widgets = "application/vnd.jupyter.widget" in body or any(
        "jupyter.widget" in str((getattr(js, "attributes", {}) or {}).get("type", "")) for js in scripts)
    seen, kept = set(), []
    for js in scripts:
        name = str(getattr(js, "filename", js) or "")
        attrs = getattr(js, "attributes", {}) or {}
        key = (name, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        if not uses_plotly and name.endswith(PLOTLY):
            continue
        if not uses_widgets and name.endswith(WIDGETS):
            continue
        kept.append(js)
    return kept


def _page_context(app, pagename, templatename, context, doctree) -> None:  # noqa: ANN001 - Sphinx's signature
    if "script_files" in context:
        context["script_files"] = page_scripts(list(context["script_files"]), context.get("body", "") or "")


def setup(app) -> dict:  # noqa: ANN001
    app.connect("html-page-context", _page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
