"""What a built book was built from: a digest of its inputs, kept beside the HTML, so that an unchanged rebuild
(``make book`` again, every page reused by the runner) skips ``jupyter-book build`` and the page check.

The digest covers every file of the book folder that the build reads (the executed pages, the Markdown pages,
``_config.yml``, the bibliography, the vendored JavaScript, the generated course fragment and the TOC), the
versions of jupyter-book and Sphinx, the code of the build itself, and the build's options. ``_build`` (the output)
and ``_runs`` (other profiles' runs, not part of the book) are left out. Any change to any of them rebuilds
everything (``jupyter-book build --all``), as before: the stamp only saves a build whose result is known.
"""
from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from ..data.files import atomic_write

STAMP = ".helpers-build.json"  # in <book>/_build/html: {"key": ...}


CHECKS = ".helpers-pagecheck.json"  # in <book>/_build/html: {"key": ..., "found": {page: [defect, ...]}}


_SKIPPED = {"_build", "_runs"}


_CODE = ("build.py", "stamp.py", "course.py", "assets.py")  # this package's modules that shape the HTML


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def inputs_digest(book_dir: Path, options: Mapping[str, Any] | None = None) -> str:
    """sha256 of what ``jupyter-book build`` of ``book_dir`` reads (see the module's docstring)."""
    book_dir = Path(book_dir)
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _CODE:
        path = here / name
        h.update(b"code " + name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b""))
    versions = {d: _version(d) for d in ("jupyter-book", "sphinx", "myst-nb", "sphinx-book-theme")}
    h.update(json.dumps({"versions": versions, "options": dict(options or {})}, sort_keys=True).encode())
    for path in sorted(book_dir.rglob("*")):
        rel = path.relative_to(book_dir)
        if rel.parts[0] in _SKIPPED or not path.is_file() or path.name.endswith(".lock"):
            continue
        h.update(b"file " + rel.as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def html_dir(book_dir: Path) -> Path:
    return Path(book_dir) / "_build" / "html"


def is_current(book_dir: Path, key: str) -> bool:
    """Whether ``_build/html`` holds a complete build of inputs with digest ``key``."""
    out = html_dir(book_dir)
    return (out / "index.html").is_file() and _read(out / STAMP).get("key") == key


def write(book_dir: Path, key: str) -> None:
    """Record that ``_build/html`` was built from inputs with digest ``key`` (after a successful build only)."""
    atomic_write(html_dir(book_dir) / STAMP, json.dumps({"key": key}).encode())


def clear(book_dir: Path) -> None:
    """Forget what ``_build/html`` was built from (before a build overwrites it)."""
    (html_dir(book_dir) / STAMP).unlink(missing_ok=True)


def check_key(book_dir: Path, checker: Path) -> str | None:
    """The key of a page check of the current build: the build's key and the checker's code (``None`` when the
    build has no stamp)."""
    built = _read(html_dir(book_dir) / STAMP).get("key")
    if not built:
        return None
    return hashlib.sha256(built.encode() + b"\0" + Path(checker).read_bytes()).hexdigest()


def cached_check(book_dir: Path, key: str | None) -> dict[str, list[str]] | None:
    """The defects found by the last page check of this very build and checker, or ``None``."""
    if key is None:
        return None
    data = _read(html_dir(book_dir) / CHECKS)
    found = data.get("found")
    return {str(k): list(v) for k, v in found.items()} if data.get("key") == key and isinstance(found, dict) else None


def keep_check(book_dir: Path, key: str | None, found: Mapping[str, list[str]]) -> None:
    """Keep what the page check found for :func:`cached_check`."""
    if key is not None:
        atomic_write(html_dir(book_dir) / CHECKS, json.dumps({"key": key, "found": dict(found)}).encode())
