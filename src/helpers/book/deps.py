"""What a chapter depends on: the ``helpers`` modules its code cells import (followed through the package's own
imports with ``ast``) and the data files it names, hashed into the runner's cache key.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .profiles import project_root


PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/helpers


PACKAGE = "helpers"


DATA_FOLDERS = (".", "docs/results")  # where a file named by a string in a chapter's code is looked up


def _code_cells(nb: Mapping[str, Any]) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _parse_cell(source: str) -> ast.Module | None:
    """Python of a notebook cell, with IPython magics and shell escapes (``%pip``, ``!ls``) read as ``pass``."""
    lines = [re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _module_file(package_dir: Path, parts: Sequence[str]) -> Path | None:
    """The file of module ``helpers.<parts>`` (``parts == []``: the package's ``__init__.py``)."""
    base = package_dir.joinpath(*parts)
    for path in (base / "__init__.py", base.with_suffix(".py") if parts else None):
        if path is not None and path.is_file():
            return path
    return None


def _with_parents(package_dir: Path, parts: Sequence[str]) -> set[Path]:
    """The module's file and the ``__init__.py`` of every package above it (Python runs them all on import)."""
    files = {_module_file(package_dir, parts[:k]) for k in range(len(parts) + 1)}
    return {f for f in files if f is not None}


def _imports(tree: ast.AST, package_dir: Path, here: Sequence[str] | None) -> set[Path]:
    """Files of the ``helpers`` package that ``tree`` imports (absolute ``helpers…`` imports anywhere in the code;
    relative imports resolved against the package ``here``, ``None`` for a notebook)."""
    found: set[Path] = set()

    def add(parts: Sequence[str], names: Iterable[str] = ()) -> None:
        found.update(_with_parents(package_dir, parts))
        for name in names:  # `from helpers import chapter`: chapter is a module
            if name != "*" and _module_file(package_dir, [*parts, name]) is not None:
                found.update(_with_parents(package_dir, [*parts, name]))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                head, *rest = alias.name.split(".")
                if head == PACKAGE:
                    add(rest)
        elif isinstance(node, ast.ImportFrom):
            mod = (node.module or "").split(".") if node.module else []
            if node.level == 0:
                if mod and mod[0] == PACKAGE:
                    add(mod[1:], (a.name for a in node.names))
            elif here is not None:
                base = list(here)[:len(here) - (node.level - 1)]
                add([*base, *mod], (a.name for a in node.names))
    return found


def helpers_modules(nb_path: Path, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The ``helpers`` files a notebook uses: what its code cells import, followed through the package's own
    imports (with ``ast``; imports inside functions count). A cell that does not parse counts as using them all."""
    nb = json.loads(Path(nb_path).read_text())
    todo: set[Path] = set()
    for source in _code_cells(nb):
        tree = _parse_cell(source)
        if tree is None:
            return sorted(package_dir.rglob("*.py"))
        todo |= _imports(tree, package_dir, None)
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        seen.add(path)
        here = path.relative_to(package_dir).parts[:-1]  # the package the module sits in
        try:
            tree = ast.parse(path.read_text())
        except SyntaxError:
            return sorted(package_dir.rglob("*.py"))
        todo |= _imports(tree, package_dir, here) - seen
    return sorted(seen)


def named_files(nb_path: Path, root: Path) -> list[Path]:
    """Files that the notebook's code names by a string literal and that exist under ``root`` or one of
    :data:`DATA_FOLDERS` (e.g. ``report.recorded_gpu_run("h100_….json")`` reads ``docs/results/h100_….json``), or
    that a string with ``*`` matches (chapter 9 names ``"profiles/*.yaml"``: it reads the other chapters' designs)."""
    nb = json.loads(Path(nb_path).read_text())
    found = set()
    for source in _code_cells(nb):
        tree = _parse_cell(source)
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"\w[\w./*-]{0,200}\.\w{1,8}", node.value) and ".." not in node.value:
                for folder in DATA_FOLDERS:
                    if "*" in node.value:  # a pattern, e.g. "profiles/*.yaml": every file it matches
                        found |= {p.resolve() for p in (root / folder).glob(node.value) if p.is_file()}
                        continue
                    path = root / folder / node.value
                    if path.is_file():
                        found.add(path.resolve())
    return sorted(found)


def dependency_digest(nb_path: Path, package_dir: Path = PACKAGE_DIR, root: Path | None = None) -> str:
    """sha256 of the helpers modules the notebook uses (:func:`helpers_modules`) and the data files it names."""
    h = hashlib.sha256()
    for path in helpers_modules(nb_path, package_dir):
        h.update(b"module " + path.relative_to(package_dir).as_posix().encode() + b"\0" + path.read_bytes())
    for path in named_files(nb_path, root or project_root()):
        h.update(b"file " + path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def helpers_digest() -> str:
    """sha256 of every ``.py`` file of the package (what a chapter that imports everything depends on)."""
    h = hashlib.sha256()
    for p in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(p.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()
