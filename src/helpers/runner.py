"""Execute chapter notebooks with papermill, with parameters from a profile, never losing a good page.

A profile is ``profiles/<name>.yaml``::

    description: one line
    env: {HELPERS_ALLOW_DOWNLOAD: "0"}        # environment for the kernels
    parameters: {dataset: mnist-5k, ...}      # for every chapter (only keys a chapter declares are passed)
    chapters: {"01": {n_images: 6}}           # per-chapter overrides

**Where executed chapters go.** ``book/notebooks/`` holds the pages of the book; only the book's profile writes there:
``default`` (:data:`BOOK_PROFILE`), or any profile run with ``--book`` (``make book PROFILE=x`` and ``make chapters``
pass it, so ``make book PROFILE=smoke`` builds the smoke book). Every other profile goes to ``book/_runs/<profile>/``
(not part of the book), unless ``--out`` names a folder; a ``smoke`` or ``colab`` run therefore never replaces the
default book. ``python -m helpers build`` builds whatever ``book/notebooks/`` holds and names its profiles.

**Nothing is replaced by a failure.** Parameters are checked before any kernel starts (:func:`validate`: one-line
errors that name the fix). A chapter executes into a hidden temporary file beside its page; only a successful run
replaces the page (atomically). A failed run leaves the previous page byte-identical, keeps the failed notebook as
``<out>/<name>.failed.ipynb`` (not part of the book), says where it is and exits non-zero.

**Provenance.** Every executed page says which profile and commit built it: a Markdown cell under the title
(tagged ``helpers-provenance``) and ``metadata.helpers`` of the notebook (profile, commit, date, parameters, key).

**A chapter is re-executed only when something it uses changed**: its cells, its parameters, the kernel's
environment (the profile's ``env`` and ``HELPERS_*`` variables), the modules of the ``helpers`` package it imports
(followed transitively through the package's own imports: an edit to a module it never imports does not rerun it)
and data files its code names by a string (e.g. ``docs/results/*.json``). Keys are kept per profile in
``<out>/.runs.json`` (``{profile: {chapter: key}}``) and in the page's metadata; a page is reused only when both match.

**Timings.** The wall time of every successful execution goes to ``<out>/timings.json`` (``{profile: {chapter:
{seconds, date, commit, device}}}``), from which :mod:`helpers.course` builds the course page's compute table.
"""
from __future__ import annotations

import ast
import datetime as _dt
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping, Sequence

import yaml

from . import settings
from .course import TIMINGS  # {profile: {chapter: {seconds, date, commit, device}}} beside the pages
from .viz import ENV_BOOK

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE = "helpers"
BOOK_PROFILE = "default"  # the profile whose pages `python -m helpers run` writes into book/notebooks
PROVENANCE_TAG = "helpers-provenance"
KEY_FORMAT = 2  # bump when what a key covers, or what the runner writes into a page, changes
DATA_FOLDERS = (".", "docs/results")  # where a file named by a string in a chapter's code is looked up
_ENV_IGNORED = {settings.ENV_DATA}  # where the data lives does not change what a chapter computes


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


def inspect_parameters(nb_path: Path) -> dict[str, Param]:
    """The notebook's ``parameters`` cell, read by papermill; defaults parsed as Python literals where they are."""
    import papermill

    out = {}
    for name, info in papermill.inspect_notebook(str(nb_path)).items():
        try:
            default = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            default = info["default"]  # an expression: kept as its source text
        out[name] = Param(default, info.get("help") or "")
    return out


def declared_parameters(nb_path: Path) -> dict[str, Any]:
    """Names and default values of the notebook's ``parameters`` cell."""
    return {k: p.default for k, p in inspect_parameters(nb_path).items()}


def chapter_parameters(profile: dict[str, Any], chapter: Chapter, overrides: dict[str, Any],
                       profile_name: str) -> dict[str, Any]:
    declared = declared_parameters(chapter.path)
    merged = {**profile["parameters"], **profile["chapters"].get(chapter.id, {}), **overrides,
              "profile": profile_name}
    return {k: v for k, v in merged.items() if k in declared}


# ----------------------------------------------------------------------------------------------- validation

_AT_LEAST = {"n_arch_models": (2, "an SNR needs at least two models per architecture"),
             "n_classes_shown": (2, "the chapter compares the true class with the runner-up")}
_AT_MOST_ZOO = {"n_single": "<=", "n_ensemble": "<"}  # compared with n_models
_UNIT_INTERVAL = ("level", "confident")


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(params: Mapping[str, Any], defaults: Mapping[str, Any] | None = None,
             nullable: Collection[str] = (), root: Path | None = None) -> None:
    """Refuse bad chapter parameters before a kernel starts: raise ``ValueError`` with a one-line message that
    names the fix. ``params`` are the values the chapter will see (its defaults overridden by the profile);
    ``defaults`` (the parameters cell's values) and ``nullable`` say which ``n_*`` sizes may be ``None``.

    Checks only what the chapter declares: the zoo (:func:`helpers.chapter.check_parameters` and the recipe's own
    checks), every ``n_*`` a whole number ≥ 1, the sizes tied to the zoo (``n_single`` ≤ ``n_models``,
    ``n_ensemble`` < ``n_models``, ``n_single_dreams`` ≤ ``n_ensemble``, ``n_arch_models`` ≥ 2), known dataset
    (:data:`helpers.data.DATASETS` or ``folder:<path>``), architectures (:data:`helpers.models.MODELS`) and
    attribution methods (:data:`helpers.attribution.METHODS`), and levels in (0, 1)."""
    p = {**(defaults or {}), **params}
    may_be_none = set(nullable) | {k for k, v in (defaults or {}).items() if v is None}
    for name in ("epochs", "batch_size"):
        if name in p and (not _whole(p[name]) or p[name] < 1):
            raise ValueError(f"{name}={p[name]!r}: use a whole number ≥ 1")
    for name, v in p.items():
        if name.startswith("n_") and not (v is None and name in may_be_none) and (not _whole(v) or v < 1):
            raise ValueError(f"{name}={v!r}: use a whole number ≥ 1{' (or None)' * (name in may_be_none)}")
    if {"dataset", "arch", "n_models", "epochs", "batch_size", "lr", "optimizer", "schedule", "augment",
            "n_train"} <= set(p):
        from .chapter import check_parameters, recipe_of

        check_parameters(p)
        recipe_of(p)  # the recipe refuses an unknown optimizer, schedule or augmentation
    for name, (low, why) in _AT_LEAST.items():
        if name in p and _whole(p[name]) and p[name] < low:
            raise ValueError(f"{name}={p[name]}: use {name} ≥ {low} ({why})")
    n_models = p.get("n_models")
    for name, op in _AT_MOST_ZOO.items():
        fits = _whole(p.get(name)) and _whole(n_models) and (p[name] <= n_models if op == "<=" else p[name] < n_models)
        if name in p and p[name] is not None and _whole(n_models) and not fits:
            bound = "≤" if op == "<=" else "<"
            hint = " (at least one network is held out)" if op == "<" else ""
            raise ValueError(f"{name}={p[name]} but n_models={n_models}: use {name} {bound} n_models{hint}, "
                             f"or raise n_models")
    dreams, ensemble = p.get("n_single_dreams"), p.get("n_ensemble")
    if _whole(dreams) and _whole(ensemble) and dreams > ensemble:
        raise ValueError(f"n_single_dreams={p['n_single_dreams']} but n_ensemble={p['n_ensemble']}: single "
                         f"dreamers are members of the ensemble, use n_single_dreams ≤ n_ensemble")
    for name in _UNIT_INTERVAL:
        if name in p and not (isinstance(p[name], (int, float)) and not isinstance(p[name], bool)
                              and 0 < p[name] < 1):
            raise ValueError(f"{name}={p[name]!r}: use a number between 0 and 1, e.g. 0.9")
    if "dataset" in p:
        _check_dataset(p["dataset"], root)
    _check_names(p, ("arch",), ("architectures",), "helpers.models", "MODELS", "architecture")
    _check_names(p, ("class_method",), ("methods", "class_methods"), "helpers.attribution", "METHODS",
                 "attribution method")
    if "device" in p and p["device"] is not None:
        import torch

        try:
            torch.device(p["device"])
        except (RuntimeError, TypeError):
            raise ValueError(f"device={p['device']!r}: use cpu, cuda, cuda:N or mps, or None (automatic)") from None
    if "classes" in p and p["classes"] is not None and (
            not isinstance(p["classes"], list) or not all(_whole(c) and c >= 0 for c in p["classes"])):
        raise ValueError(f"classes={p['classes']!r}: use None (every class) or a list of class indices, "
                         f"e.g. [0, 3, 8]")


def _check_dataset(name: Any, root: Path | None) -> None:
    from .data import DATASETS

    if isinstance(name, str) and name.startswith("folder:"):
        folder = Path(name.split(":", 1)[1]).expanduser()
        if not folder.is_absolute():
            folder = (root or project_root()) / folder
        if not folder.is_dir():
            raise ValueError(f"dataset={name!r}: no folder {folder}; give an ImageFolder path as folder:<path>")
        return
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"dataset={name!r} is unknown: choose one of {', '.join(DATASETS)}, or folder:<path>")


def _check_names(p: Mapping[str, Any], singles: Sequence[str], lists: Sequence[str], module: str, registry: str,
                 what: str) -> None:
    import importlib

    known = getattr(importlib.import_module(module), registry)
    for name in singles:
        if name in p and (not isinstance(p[name], str) or p[name] not in known):
            raise ValueError(f"{name}={p[name]!r} is not a known {what}: choose one of {', '.join(known)}")
    for name in lists:
        if name not in p or p[name] is None:
            continue
        if not isinstance(p[name], (list, tuple)) or not p[name]:
            raise ValueError(f"{name}={p[name]!r}: give a non-empty list of {what}s, e.g. [{next(iter(known))!r}]"
                             f" (or None where the chapter allows it)")
        bad = [v for v in p[name] if not isinstance(v, str) or v not in known]
        if bad:
            raise ValueError(f"{name} has unknown {what}(s) {', '.join(map(repr, bad))}: choose from "
                             f"{', '.join(known)}")


# ------------------------------------------------------------------------------------------- dependencies

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
    :data:`DATA_FOLDERS` (e.g. ``report.recorded_gpu_run("h100_….json")`` reads ``docs/results/h100_….json``)."""
    nb = json.loads(Path(nb_path).read_text())
    found = set()
    for source in _code_cells(nb):
        tree = _parse_cell(source)
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"\w[\w./-]{0,200}\.\w{1,8}", node.value) and ".." not in node.value:
                for folder in DATA_FOLDERS:
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


def chapter_key(chapter: Chapter, params: dict[str, Any], env: dict[str, str], helpers: str) -> str:
    """sha256 of what the executed chapter depends on; ``helpers`` is its :func:`dependency_digest`."""
    nb = json.loads(chapter.path.read_text())
    cells = [(c["cell_type"], "".join(c["source"]), c.get("metadata", {}).get("tags", [])) for c in nb["cells"]]
    blob = json.dumps({"cells": cells, "params": params, "env": env, "helpers": helpers, "format": KEY_FORMAT},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def kernel_env(profile_env: Mapping[str, Any]) -> dict[str, str]:
    """The ``HELPERS_*`` environment the kernel sees (the shell's, overridden by the profile's), less the data
    folder: part of a chapter's key."""
    env = {k: v for k, v in os.environ.items() if k.startswith("HELPERS_") and k not in _ENV_IGNORED | {ENV_BOOK}}
    env.update({str(k): str(v) for k, v in profile_env.items()})
    return dict(sorted(env.items()))


# ------------------------------------------------------------------------------------------- output, provenance

def output_dir(profile_name: str, root: Path, out: Path | None = None, book: bool = False) -> Path:
    """Where a profile's executed chapters go: ``out`` if given; ``book/notebooks`` for the book's profile
    (:data:`BOOK_PROFILE`, or any profile with ``book=True``); else ``book/_runs/<profile>``."""
    if out is not None:
        return Path(out)
    if book or profile_name == BOOK_PROFILE:
        return root / "book" / "notebooks"
    return root / "book" / "_runs" / profile_name


def git_commit(root: Path, paths: Sequence[Path] = ()) -> tuple[str, bool]:
    """Short hash of ``HEAD`` of the checkout at ``root`` and whether any of ``paths`` differ from it
    (``("unknown", False)`` outside git)."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=20)
        if head.returncode != 0:
            return "unknown", False
        dirty = False
        if paths:
            st = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", *map(str, paths)],
                                capture_output=True, text=True, timeout=20)
            dirty = bool(st.stdout.strip())
        return head.stdout.strip(), dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def provenance_text(info: Mapping[str, Any]) -> str:
    commit = f"`{info['commit']}`" + (" with uncommitted changes" if info.get("dirty") else "")
    return (f"*Executed with the profile `{info['profile']}` at commit {commit} on {info['date']} "
            f"(`python -m helpers run --profile {info['profile']}`).*")


def add_provenance(nb_path: Path, info: Mapping[str, Any]) -> None:
    """Write ``info`` (profile, commit, …) into the executed notebook: ``metadata.helpers`` and a Markdown cell
    under the title (after the first cell when it is a Markdown heading) that the built page shows."""
    nb = json.loads(nb_path.read_text())
    nb["cells"] = [c for c in nb["cells"] if PROVENANCE_TAG not in c.get("metadata", {}).get("tags", [])]
    cell = {"cell_type": "markdown", "metadata": {"tags": [PROVENANCE_TAG]}, "source": provenance_text(info)}
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) >= (4, 5):  # cell ids exist from nbformat 4.5 on
        cell = {"id": PROVENANCE_TAG, **cell}
    first = nb["cells"][0] if nb["cells"] else None
    at = 1 if first and first["cell_type"] == "markdown" and "".join(first["source"]).lstrip().startswith("#") else 0
    nb["cells"].insert(at, cell)
    nb.setdefault("metadata", {})["helpers"] = dict(info)
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def page_info(nb_path: Path) -> dict[str, Any]:
    """``metadata.helpers`` of an executed page (empty when it has none)."""
    try:
        return json.loads(nb_path.read_text()).get("metadata", {}).get("helpers", {}) or {}
    except (OSError, ValueError):
        return {}


# ------------------------------------------------------------------------------------------------- running

def _execute(source: Path, output: Path, params: dict[str, Any], cwd: Path, progress: bool) -> None:
    """Execute ``source`` with papermill into ``output`` (raises on a failing cell)."""
    import papermill

    papermill.execute_notebook(str(source), str(output), parameters=params, kernel_name="python3", cwd=str(cwd),
                               progress_bar=progress, log_output=False)


def read_runs(path: Path) -> dict[str, dict[str, str]]:
    """``.runs.json`` as ``{profile: {chapter: key}}`` (entries of the old flat format are dropped)."""
    try:
        runs = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}
    return {k: dict(v) for k, v in runs.items() if isinstance(v, dict)}


def _readable(path: Path) -> None:
    """Give a file made by ``mkstemp`` (mode 0600) the permissions of an ordinary new file (0666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _record_run(path: Path, profile: str, chapter: str, key: str | None) -> None:
    """Set (or with ``key=None`` drop) the chapter's key under ``profile``; the page now belongs to this profile,
    so other profiles' keys for it go. Re-reads the file first, so concurrent runs into one folder keep theirs."""
    runs = read_runs(path)
    for prof in runs.values():
        prof.pop(chapter, None)
    if key is not None:
        runs.setdefault(profile, {})[chapter] = key
    runs = {k: v for k, v in runs.items() if v}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".runs.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(runs, indent=2, sort_keys=True) + "\n")
    _readable(Path(tmp))
    os.replace(tmp, path)


def device_label(device: Any, env: Mapping[str, str]) -> str:
    """Where a chapter ran, in words ("CPU (2 cores)", "GPU (NVIDIA H100 …)"): its ``device`` parameter, else the
    kernel's ``HELPERS_DEVICE``, else CUDA when available (as :func:`helpers.settings.default_device` decides)."""
    import torch

    name = str(device or env.get(settings.ENV_DEVICE) or ("cuda" if torch.cuda.is_available() else "cpu"))
    if name.startswith("cuda") and torch.cuda.is_available():
        return f"GPU ({torch.cuda.get_device_name(torch.device(name))})"
    return f"CPU ({os.cpu_count()} cores)" if name == "cpu" else name


def record_timing(path: Path, profile: str, chapter: str, record: Mapping[str, Any]) -> None:
    """Keep the wall time of a chapter's last successful execution under ``profile`` in ``path``
    (:data:`TIMINGS`); the course page (:mod:`helpers.course`) reads it. Re-reads the file first, like
    :func:`_record_run`."""
    try:
        timings = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        timings = {}
    timings = {k: v for k, v in timings.items() if isinstance(v, dict)}
    timings.setdefault(profile, {})[chapter] = dict(record)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".timings.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    _readable(Path(tmp))
    os.replace(tmp, path)


def run_chapters(profile_name: str, chapters: Sequence[str] | None = None, overrides: dict[str, Any] | None = None,
                 out_dir: Path | None = None, root: Path | None = None, force: bool = False,
                 progress: bool = True, book: bool = False) -> list[tuple[str, str]]:
    """Execute the chosen chapters into :func:`output_dir`; return ``[(chapter id, "ran" | "cached")]``.

    Raises SystemExit (non-zero exit) on bad parameters, before any kernel starts, and on a failed chapter, whose
    previous page stays as it was."""
    root = Path(root or project_root())
    out_dir = output_dir(profile_name, root, out_dir, book)
    profile = load_profile(profile_name, root / "profiles")
    all_chapters = find_chapters(root / "notebooks")
    wanted = list(chapters) if chapters else [c.id for c in all_chapters]
    unknown = sorted(set(wanted) - {c.id for c in all_chapters})
    if unknown:
        raise SystemExit(f"unknown chapter(s) {', '.join(unknown)}: choose from "
                         f"{', '.join(c.id for c in all_chapters)}")
    selected = [c for c in all_chapters if c.id in wanted]
    overrides = overrides or {}
    specs = {c.id: inspect_parameters(c.path) for c in selected}
    used = set().union(*specs.values()) if specs else set()
    stray = sorted(set(overrides) - used)
    if stray:
        raise SystemExit(f"parameter(s) {', '.join(stray)} are declared by none of the chapters "
                         f"{', '.join(c.id for c in selected)}: check the name (declared: {', '.join(sorted(used))})")
    plan = []
    for chapter in selected:
        spec = specs[chapter.id]
        params = chapter_parameters(profile, chapter, overrides, profile_name)
        try:
            validate(params, {k: p.default for k, p in spec.items()}, {k for k, p in spec.items() if p.nullable},
                     root)
        except ValueError as err:
            raise SystemExit(f"[{chapter.id}] {chapter.name} (profile {profile_name!r}): {err}") from None
        plan.append((chapter, params))
    out_dir.mkdir(parents=True, exist_ok=True)
    env = kernel_env(profile["env"])
    runs_path = out_dir / ".runs.json"
    results = []
    for chapter, params in plan:
        deps = helpers_modules(chapter.path, PACKAGE_DIR)
        key = chapter_key(chapter, params, env, dependency_digest(chapter.path, PACKAGE_DIR, root))
        target = out_dir / chapter.path.name
        if (not force and read_runs(runs_path).get(profile_name, {}).get(chapter.name) == key and target.is_file()
                and page_info(target).get("key") == key):
            print(f"[{chapter.id}] {chapter.name}: unchanged, using {target}", flush=True)
            results.append((chapter.id, "cached"))
            continue
        print(f"[{chapter.id}] {chapter.name}: executing with profile {profile_name!r} {params}", flush=True)
        t0 = time.perf_counter()
        fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{chapter.name}.", suffix=".running.ipynb")
        os.close(fd)
        tmp = Path(tmp_name)
        failed = out_dir / f"{chapter.name}.failed.ipynb"
        old_env = {k: os.environ.get(k) for k in [*env, ENV_BOOK]}
        os.environ.update(env)
        os.environ[ENV_BOOK] = "1"
        try:
            _execute(chapter.path, tmp, params, root, progress)
        except BaseException as err:
            kept = tmp.is_file() and tmp.stat().st_size > 0
            if kept:
                _readable(tmp)
                os.replace(tmp, failed)
            else:
                tmp.unlink(missing_ok=True)
            if not isinstance(err, Exception):
                raise
            where = f"the failed notebook is {failed}" if kept else "no notebook was written"
            previous = f"{target} is unchanged" if target.is_file() else f"no previous page at {target}"
            what = (f"failed in cell {err.exec_count}: {err.ename}: {err.evalue}" if hasattr(err, "ename")
                    else f"failed: {type(err).__name__}: {err}")
            one_line = re.sub(r"\s*\n\s*", " ", f"[{chapter.id}] {chapter.name} {what}; {where}; {previous}")
            raise SystemExit(one_line) from None
        finally:
            for k, v in old_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        commit, dirty = git_commit(root, [chapter.path, root / "profiles" / f"{profile_name}.yaml", *deps])
        add_provenance(tmp, {"profile": profile_name, "commit": commit, "dirty": dirty,
                             "date": _dt.date.today().isoformat(), "parameters": params, "key": key})
        _readable(tmp)
        os.replace(tmp, target)
        failed.unlink(missing_ok=True)
        _record_run(runs_path, profile_name, chapter.name, key)
        seconds = time.perf_counter() - t0
        record_timing(out_dir / TIMINGS, profile_name, chapter.name,
                      {"seconds": round(seconds, 1), "date": _dt.date.today().isoformat(), "commit": commit,
                       "device": device_label(params.get("device"), env)})
        print(f"[{chapter.id}] done in {seconds:.0f} s -> {target}", flush=True)
        results.append((chapter.id, "ran"))
    return results
