"""Chapters and profiles: the chapter notebooks, their ``parameters`` cell (read with ``ast``), the profiles in
``profiles/*.yaml`` and ``-p key=value`` overrides, merged into one chapter's parameters.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
import yaml

from ..data import settings


BOOK_PROFILE = "default"  # the profile whose pages `python -m helpers run` writes into book/notebooks


def project_root() -> Path:
    root = settings.repo_root()
    return root if root is not None else Path.cwd()


@dataclass(frozen=True)
class Chapter:
    id: str  # "01"
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem


def find_chapters(notebooks: Path) -> list[Chapter]:
    return [Chapter(p.name[:2], p) for p in sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))]


def load_profile(name: str, profiles: Path) -> dict[str, Any]:
    path = profiles / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in profiles.glob("*.yaml")))
        raise SystemExit(f"unknown profile {name!r}: choose one of {known} (files in {profiles})")
    prof = yaml.safe_load(path.read_text()) or {}
    prof.setdefault("parameters", {})
    prof.setdefault("chapters", {})
    prof.setdefault("env", {})
    return prof


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["n_models=4", "arch=lenet"]`` -> values parsed as YAML (numbers, lists, null …)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"bad -p {item!r}: write -p key=value")
        key, value = item.split("=", 1)
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key.strip()] = parsed
    return out


@dataclass(frozen=True)
class Param:
    """A parameter of a chapter's ``parameters`` cell: its default value and its comment."""

    default: Any
    help: str = ""

    @property
    def nullable(self) -> bool:
        """Whether ``None`` is a valid value: the default is ``None`` or the comment offers ``None``."""
        return self.default is None or re.search(r"\bNone\b", self.help) is not None


CONSTANT = re.compile(r"[A-Z][A-Z0-9_]*")  # upper-case names of the parameters cell: the chapter's constants


def _parameters_cell(nb_path: Path) -> dict[str, Param]:
    import papermill

    out = {}
    for name, info in papermill.inspect_notebook(str(nb_path)).items():
        try:
            default = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            default = info["default"]  # an expression: kept as its source text
        out[name] = Param(default, info.get("help") or "")
    return out


def inspect_parameters(nb_path: Path) -> dict[str, Param]:
    """The notebook's ``parameters`` cell, read by papermill; defaults parsed as Python literals where they are.
    Upper-case names (``MIN_MODELS = 2``) are the chapter's constants, not parameters: see :func:`constants`."""
    return {k: v for k, v in _parameters_cell(nb_path).items() if not CONSTANT.fullmatch(k)}


def constants(nb_path: Path) -> dict[str, Param]:
    """The chapter's constants, declared in its parameters cell next to the parameters they bound, e.g.
    ``MIN_MODELS = 3  # leave-one-out means need two other models`` (read by the runner and the chapter kit)."""
    return {k: v for k, v in _parameters_cell(nb_path).items() if CONSTANT.fullmatch(k)}


def declared_parameters(nb_path: Path) -> dict[str, Any]:
    """Names and default values of the notebook's ``parameters`` cell."""
    return {k: p.default for k, p in inspect_parameters(nb_path).items()}


def chapter_parameters(profile: dict[str, Any], chapter: Chapter, overrides: dict[str, Any],
                       profile_name: str) -> dict[str, Any]:
    declared = declared_parameters(chapter.path)
    merged = {**profile["parameters"], **profile["chapters"].get(chapter.id, {}), **overrides,
              "profile": profile_name}
    return {k: v for k, v in merged.items() if k in declared}
