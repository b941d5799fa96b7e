"""Checks on a chapter's prose: no hand-typed results, and every glued value it cites exists.

The book's rule (see :mod:`helpers.report`): a result in the Markdown of a chapter is never typed, it is glued from
the run. :func:`typed_results` finds what breaks the rule — decimals, percentages, ratios ("3.4×") and powers of ten ("3·10⁻⁴") outside math,
code, glue roles, links and quotations — and :func:`glue_keys` lists the keys a text cites, to compare with
:func:`glued_keys` of the executed notebook.
"""
from __future__ import annotations

import json
import re
from pathlib import Path



_STRIP = [
    re.compile(r"```.*?```", re.S),  # fenced code and directives
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"(?<!\\)\$[^$\n]+?(?<!\\)\$"),  # inline math
    re.compile(r"\{[\w:-]+\}`[^`]*`"),  # roles: {glue:text}`key:.2f`, {cite}`...`
    re.compile(r"`[^`\n]*`"),  # inline code
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"<[^>]+>"),  # HTML tags
    re.compile(r"arXiv:\s?\S+|doi:\s?\S+|https?://\S+", re.I),  # identifiers in references
    re.compile(r"“[^”]*”|\"[^\"\n]*\""),  # quotations from the papers
]


_RESULT = re.compile(r"(?<![\w.])[−-]?\d+(?:[.,]\d+)?\s?(?:%|×(?!\s?\d)|·\s?10[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)"
                     r"|(?<![\w.§])[−-]?\d+\.\d+(?![\w.]*\d)")


_GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`")


_GLUE_DIRECTIVE = re.compile(r"^```\{glue(?::\w+)?\}\s+(\S+)", re.M)


def strip_allowed(markdown: str) -> str:
    """The Markdown without math, code, roles, links, HTML tags, reference identifiers and quotations."""
    for pattern in _STRIP:
        markdown = pattern.sub(" ", markdown)
    return markdown


def typed_results(markdown: str) -> list[str]:
    """Hand-typed result numbers in ``markdown``: decimals, percentages and ratios outside the allowed places."""
    return [m.group(0).strip() for m in _RESULT.finditer(strip_allowed(markdown))]


def broken_roles(markdown: str) -> list[str]:
    """Roles written inside an inline code span (```{glue:text}`k``` renders as code, not as the value)."""
    return re.findall(r"``?\{glue[^`]*`[^`]*``", markdown)


def glue_keys(markdown: str) -> set[str]:
    """Keys cited by ``{glue:text}`key:fmt``` roles and ``{glue:figure} key`` directives."""
    keys = {m.group(1).split(":", 1)[0].strip() for m in _GLUE_ROLE.finditer(markdown)}
    return keys | {m.group(1).strip() for m in _GLUE_DIRECTIVE.finditer(markdown)}


def markdown_cells(nb_path: str | Path) -> list[str]:
    nb = json.loads(Path(nb_path).read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def glued_keys(nb_path: str | Path) -> set[str]:
    """Keys glued by the outputs of an executed notebook (myst-nb's ``scrapbook`` metadata)."""
    nb = json.loads(Path(nb_path).read_text())
    return {o["metadata"]["scrapbook"]["name"] for c in nb["cells"] if c["cell_type"] == "code"
            for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})}


def code_cell_lengths(nb_path: str | Path) -> list[int]:
    """Number of non-blank lines of every code cell (the book keeps cells ≤ 15 lines: logic lives in helpers)."""
    nb = json.loads(Path(nb_path).read_text())
    return [sum(1 for line in "".join(c["source"]).splitlines() if line.strip())
            for c in nb["cells"] if c["cell_type"] == "code"]
