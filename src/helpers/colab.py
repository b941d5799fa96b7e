"""Colab launch links and install cells, generated from one setting: the repository in ``book/_config.yml``.

``repository.url`` and ``repository.branch`` of the book's config are the only place where the project's address is
written. Every chapter's badge line (first Markdown cell) and install cell (first code cell) are derived from it by
:func:`sync` (``python -m helpers sync``); the tests check that they agree. The badge is an SVG served with the book
(``notebooks/_static/colab-badge.svg``, copied beside the executed chapters), so the offline book shows no broken
image.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

BADGE = "_static/colab-badge.svg"
_BADGE_LINE = re.compile(r"^\[!\[Open in Colab\]\([^)]*\)\]\([^)]*\)$", re.M)
INSTALL_MARK = 'if "google.colab" in sys.modules:'


def repository(config: Path) -> tuple[str, str]:
    """("owner/name", branch) from ``repository.url`` and ``repository.branch`` of a jupyter-book config."""
    repo = (yaml.safe_load(config.read_text()) or {}).get("repository", {})
    url = str(repo.get("url", "")).rstrip("/")
    m = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", url)
    if m is None:
        raise ValueError(f"repository.url {url!r} in {config}: set it to https://github.com/<owner>/<name>")
    return m.group(1), str(repo.get("branch", "main"))


def launch_url(repo: str, branch: str, notebook: str) -> str:
    """The Colab address that opens the clean chapter source ``notebooks/<notebook>``."""
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{notebook}"


def badge_line(repo: str, branch: str, notebook: str) -> str:
    return f"[![Open in Colab]({BADGE})]({launch_url(repo, branch, notebook)})"


def install_cell(repo: str) -> str:
    """The first code cell of every chapter: installs this package on Colab only, lower bounds only."""
    return ("# On Colab only: install this book's helpers (lower bounds only, so Colab keeps its own torch).\n"
            "import sys\n\n"
            f"{INSTALL_MARK}\n"
            f'    %pip install -q "saliency-book-helpers @ git+https://github.com/{repo}"')


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + [parts[-1]]


def sync(notebook: Path, repo: str, branch: str, write: bool = True) -> bool:
    """Make the badge line and install cell of ``notebook`` match the setting; return whether it changed."""
    nb = json.loads(notebook.read_text())
    md = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    text = "".join(md["source"])
    line = badge_line(repo, branch, notebook.name)
    new_md = _BADGE_LINE.sub(line, text, count=1) if _BADGE_LINE.search(text) else text.replace("\n", f"\n\n{line}\n", 1)
    new_code = install_cell(repo)
    changed = new_md != text or "".join(code["source"]) != new_code
    if changed and write:
        md["source"], code["source"] = _lines(new_md), _lines(new_code)
        notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return changed


def badge_svg() -> str:
    """A small "Open in Colab" badge drawn here (no image from the internet)."""
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" aria-label="Open in Colab">'
            '<rect width="117" height="20" rx="3" fill="#555"/><rect x="37" width="80" height="20" rx="3" '
            'fill="#f9ab00"/><rect x="37" width="4" height="20" fill="#f9ab00"/>'
            '<circle cx="13" cy="10" r="5" fill="none" stroke="#f9ab00" stroke-width="2.5"/>'
            '<circle cx="24" cy="10" r="5" fill="none" stroke="#e8710a" stroke-width="2.5"/>'
            '<text x="77" y="14" fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" '
            'text-anchor="middle">Open in Colab</text></svg>\n')
