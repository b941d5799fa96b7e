"""Colab: launch links and install cells generated from one setting, and the ``colab`` profile as a GPU default.

**One setting.** The launch links and install cells come from the repository in ``book/_config.yml``.

``repository.url`` and ``repository.branch`` of the book's config are the only place where the project's address is
written. Every chapter's badge line (first Markdown cell) and install cell (first code cell) are derived from it by
:func:`sync` (``python -m helpers sync``); the tests check that they agree. The badge is an SVG served with the book
(``notebooks/_static/colab-badge.svg``, copied beside the executed chapters), so the offline book shows no broken
image.

**The colab profile by default.** A chapter opened on Colab with a GPU runtime, its parameters cell left at
``profile = "manual"``, takes the parameters of ``profiles/colab.yaml`` (the zoo, the chapter's own overrides and the
profile's environment) when ``chapter.setup(globals())`` runs: :func:`apply_profile` writes them into the chapter's
globals, so every later cell sees them, and says so. Set ``profile`` to anything else (``"cell"``) to keep the
cell's values. The package carries the profile in ``colab_profile.json`` (Colab installs the package, not the
repository), with every chapter's parameter names, by which :func:`identify_chapter` tells the chapters apart;
``python -m helpers sync`` regenerates it (:func:`write_profile_data`), and a test checks it. Elsewhere (no
``google.colab`` module, or no CUDA) nothing changes.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Collection, Mapping, MutableMapping
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


SOLUTION_TAG = "hide-input"  # the exercises' reference solutions (hidden in the book by myst-nb)


FORM_TITLE = "# @title "  # Colab shows a code cell with this first line and ``cellView: form`` as a folded form


def fold_solutions(nb: dict[str, Any]) -> bool:
    """Fold every reference solution on Colab, in place: Colab opens the sources themselves (:func:`launch_url`),
    where a ``hide-input`` tag means nothing, so each solution cell gets ``metadata.cellView = "form"`` and a first
    line ``# @title Solution …`` (its own "# Solution k: …" comment turned into the form's title): Colab then shows
    only the title until the reader opens it, as the book hides the code. Returns whether anything changed."""
    changed = False
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or SOLUTION_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        text = "".join(cell["source"])
        first, _, rest = text.partition("\n")
        if not first.startswith(FORM_TITLE):
            title = first.lstrip("# ").strip() if first.lstrip().startswith("# Solution") else "Solution"
            text = f"{FORM_TITLE}{title}\n" + (rest if first.lstrip().startswith("# Solution") else text)
        if text != "".join(cell["source"]) or cell["metadata"].get("cellView") != "form":
            cell["source"], cell["metadata"]["cellView"] = _lines(text), "form"
            changed = True
    return changed


def sync(notebook: Path, repo: str, branch: str, write: bool = True, fold: bool = True) -> bool:
    """Make the badge line and install cell of ``notebook`` match the setting, and (``fold``) fold its solutions
    for Colab (:func:`fold_solutions`); return whether it changed."""
    nb = json.loads(notebook.read_text())
    folded = fold and fold_solutions(nb)
    md = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    text = "".join(md["source"])
    line = badge_line(repo, branch, notebook.name)
    new_md = _BADGE_LINE.sub(line, text, count=1) if _BADGE_LINE.search(text) else text.replace("\n", f"\n\n{line}\n", 1)
    new_code = install_cell(repo)
    changed = new_md != text or "".join(code["source"]) != new_code or folded
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


PROFILE = "colab"


PROFILE_DATA = "colab_profile.json"  # beside this module, shipped in the wheel


MANUAL = "manual"  # the parameters cell's own value of ``profile``: nobody chose a profile


def profile_data(profile_yaml: Path, notebooks: Path) -> dict[str, Any]:
    """What the package ships for :func:`apply_profile`: the profile's ``parameters``, ``chapters`` and ``env``,
    every chapter's parameter names (``signatures``, from its ``parameters`` cell), and the book's designs that
    chapter 9 checks (``designs``, :func:`helpers.book.trust.designs`: on Colab there are no profiles to read)."""
    from .profiles import declared_parameters, find_chapters, load_profile

    from dataclasses import asdict

    from .profiles import BOOK_PROFILE
    from .trust import designs

    prof = load_profile(profile_yaml.stem, profile_yaml.parent)
    return {"profile": profile_yaml.stem, "parameters": prof["parameters"] or {},
            "chapters": {str(k): v for k, v in (prof["chapters"] or {}).items()},
            "env": {str(k): str(v) for k, v in (prof["env"] or {}).items()},
            "signatures": {c.id: sorted(declared_parameters(c.path)) for c in find_chapters(notebooks)},
            "designs": {BOOK_PROFILE: [asdict(d) for d in designs(BOOK_PROFILE, notebooks.parent)]}}


def write_profile_data(root: Path, write: bool = True) -> bool:
    """Regenerate ``src/helpers/book/colab_profile.json`` from ``profiles/colab.yaml`` and the chapters; return whether
    it changed."""
    text = json.dumps(profile_data(root / "profiles" / f"{PROFILE}.yaml", root / "notebooks"), indent=1,
                      sort_keys=True) + "\n"
    path = Path(__file__).with_name(PROFILE_DATA)
    changed = not path.is_file() or path.read_text() != text
    if changed and write:
        path.write_text(text)
    return changed


def load_profile_data() -> dict[str, Any]:
    """The packaged profile (see :func:`profile_data`)."""
    from importlib.resources import files

    return json.loads(files(__package__).joinpath(PROFILE_DATA).read_text())


def on_colab_gpu() -> bool:
    """Whether this kernel runs on Google Colab with a CUDA GPU."""
    if "google.colab" not in sys.modules:
        return False
    import torch

    return torch.cuda.is_available()


def identify_chapter(names: Collection[str], signatures: Mapping[str, Collection[str]]) -> str | None:
    """The chapter whose parameter names are all among ``names`` (a chapter's globals), the most specific one when
    several are; ``None`` when none is."""
    names = set(names)
    fits = [(len(sig), cid) for cid, sig in signatures.items() if set(sig) <= names]
    return max(fits)[1] if fits else None


def overrides(params: Mapping[str, Any], data: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(chapter, values): the profile's values, with the chapter's own overrides, for the names that ``params``
    (the chapter's globals) defines."""
    chapter = identify_chapter(params, data["signatures"])
    merged = {**data["parameters"], **(data["chapters"].get(chapter, {}) if chapter else {})}
    return chapter, {k: v for k, v in merged.items() if k in params}


def apply_profile(params: MutableMapping[str, Any] | Mapping[str, Any], on_gpu: bool | None = None) -> dict[str, Any]:
    """On Colab with a GPU, give a chapter whose ``profile`` is still ``"manual"`` the colab profile's parameters:
    write them into ``params`` (the chapter's ``globals()``), set ``profile = "colab"`` and the profile's environment
    (where unset), and print what changed. Returns the changed values; a no-op (``{}``) anywhere else."""
    if params.get("profile", MANUAL) != MANUAL or not isinstance(params, MutableMapping):
        return {}
    if not (on_colab_gpu() if on_gpu is None else on_gpu):
        return {}
    data = load_profile_data()
    chapter, values = overrides(params, data)
    changed = {k: v for k, v in values.items() if params.get(k) != v}
    params.update(values)
    params["profile"] = data["profile"]
    for key, value in data["env"].items():
        os.environ.setdefault(key, value)
    listed = ", ".join(f"{k}={v!r}" for k, v in changed.items()) or "no value differs"
    print(f"Colab with a GPU: chapter {chapter or '?'} takes the {data['profile']!r} profile's parameters "
          f"({listed}). To keep the parameters cell's values, set profile = \"cell\" there and rerun.")
    return changed
