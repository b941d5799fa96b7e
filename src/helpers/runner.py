"""Execute chapter notebooks with papermill, with parameters from a profile, skipping unchanged chapters.

A profile is ``profiles/<name>.yaml``::

    description: one line
    env: {HELPERS_ALLOW_DOWNLOAD: "0"}        # environment for the kernels
    parameters: {dataset: mnist-5k, ...}      # for every chapter (only keys a chapter declares are passed)
    chapters: {"01": {n_images: 6}}           # per-chapter overrides

A chapter is re-executed only when its key changes: sha256 of the notebook's cells, the parameters, the profile's
environment and every ``.py`` file of the ``helpers`` package. Keys are kept in ``<out>/.runs.json``.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from . import settings
from .viz import ENV_BOOK

PACKAGE_DIR = Path(__file__).resolve().parent


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


def declared_parameters(nb_path: Path) -> dict[str, Any]:
    """Names and default values of the notebook's ``parameters`` cell."""
    import papermill

    return {k: v["default"] for k, v in papermill.inspect_notebook(str(nb_path)).items()}


def chapter_parameters(profile: dict[str, Any], chapter: Chapter, overrides: dict[str, Any],
                       profile_name: str) -> dict[str, Any]:
    declared = declared_parameters(chapter.path)
    merged = {**profile["parameters"], **profile["chapters"].get(chapter.id, {}), **overrides,
              "profile": profile_name}
    return {k: v for k, v in merged.items() if k in declared}


def helpers_digest() -> str:
    h = hashlib.sha256()
    for p in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(p.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def chapter_key(chapter: Chapter, params: dict[str, Any], env: dict[str, str], helpers: str) -> str:
    nb = json.loads(chapter.path.read_text())
    cells = [(c["cell_type"], "".join(c["source"]), c.get("metadata", {}).get("tags", [])) for c in nb["cells"]]
    blob = json.dumps({"cells": cells, "params": params, "env": env, "helpers": helpers}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def run_chapters(profile_name: str, chapters: Sequence[str] | None = None, overrides: dict[str, Any] | None = None,
                 out_dir: Path | None = None, root: Path | None = None, force: bool = False,
                 progress: bool = True) -> list[tuple[str, str]]:
    """Execute the chosen chapters; return ``[(chapter id, "ran" | "cached")]``. Raises SystemExit on failure."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    root = root or project_root()
    out_dir = out_dir or root / "book" / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    profile = load_profile(profile_name, root / "profiles")
    all_chapters = find_chapters(root / "notebooks")
    wanted = list(chapters) if chapters else [c.id for c in all_chapters]
    unknown = sorted(set(wanted) - {c.id for c in all_chapters})
    if unknown:
        raise SystemExit(f"unknown chapter(s) {', '.join(unknown)}: choose from "
                         f"{', '.join(c.id for c in all_chapters)}")
    selected = [c for c in all_chapters if c.id in wanted]
    overrides = overrides or {}
    used = set()
    for c in selected:
        used |= set(declared_parameters(c.path))
    stray = sorted(set(overrides) - used)
    if stray:
        raise SystemExit(f"parameter(s) {', '.join(stray)} are declared by none of the chapters "
                         f"{', '.join(c.id for c in selected)}: check the name (declared: {', '.join(sorted(used))})")
    env = {str(k): str(v) for k, v in profile["env"].items()}
    runs_path = out_dir / ".runs.json"
    runs = json.loads(runs_path.read_text()) if runs_path.is_file() else {}
    helpers = helpers_digest()
    results = []
    for chapter in selected:
        params = chapter_parameters(profile, chapter, overrides, profile_name)
        key = chapter_key(chapter, params, env, helpers)
        target = out_dir / chapter.path.name
        if not force and runs.get(chapter.name) == key and target.is_file():
            print(f"[{chapter.id}] {chapter.name}: unchanged, using {target}", flush=True)
            results.append((chapter.id, "cached"))
            continue
        print(f"[{chapter.id}] {chapter.name}: executing with profile {profile_name!r} {params}", flush=True)
        t0 = time.perf_counter()
        old_env = {k: os.environ.get(k) for k in [*env, ENV_BOOK]}
        os.environ.update(env)
        os.environ[ENV_BOOK] = "1"
        try:
            papermill.execute_notebook(str(chapter.path), str(target), parameters=params, kernel_name="python3",
                                       cwd=str(root), progress_bar=progress, log_output=False)
        except PapermillExecutionError as err:
            runs.pop(chapter.name, None)
            _save_runs(runs_path, runs)
            raise SystemExit(f"[{chapter.id}] {chapter.name} failed in cell {err.exec_count}: {err.ename}: "
                             f"{err.evalue}\n  the partly executed notebook is {target}") from None
        finally:
            for k, v in old_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        runs[chapter.name] = key
        _save_runs(runs_path, runs)
        print(f"[{chapter.id}] done in {time.perf_counter() - t0:.0f} s -> {target}", flush=True)
        results.append((chapter.id, "ran"))
    return results


def _save_runs(path: Path, runs: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(runs, indent=2, sort_keys=True))
    os.replace(tmp, path)


