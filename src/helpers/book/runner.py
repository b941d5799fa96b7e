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

import datetime as _dt
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from .course import TIMINGS
from .deps import PACKAGE_DIR, dependency_digest, helpers_modules
from .params import validate
from .profiles import (BOOK_PROFILE, Chapter, chapter_parameters, constants, find_chapters, inspect_parameters,
                       load_profile, project_root)
from ..figures.common import ENV_BOOK
from ..data import settings
from ..data.files import TMP_PREFIX, atomic_write, give_file_mode, locked, remove_stale_temporaries


PROVENANCE_TAG = "helpers-provenance"


KEY_FORMAT = 2  # bump when what a key covers, or what the runner writes into a page, changes


_ENV_IGNORED = {settings.ENV_DATA}  # where the data lives does not change what a chapter computes


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


def _execute(source: Path, output: Path, params: dict[str, Any], cwd: Path, progress: bool) -> None:
    """Execute ``source`` with papermill into ``output`` (raises on a failing cell)."""
    import papermill

    # request_save_on_cell_execute=False: the page is written at the end (and every 30 s of a long cell), not after
    # every cell: chapters with megabytes of figures spent seconds rewriting themselves
    papermill.execute_notebook(str(source), str(output), parameters=params, kernel_name="python3", cwd=str(cwd),
                               progress_bar=progress, log_output=False, request_save_on_cell_execute=False)


def read_runs(path: Path) -> dict[str, dict[str, str]]:
    """``.runs.json`` as ``{profile: {chapter: key}}`` (entries of the old flat format are dropped)."""
    try:
        runs = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}
    return {k: dict(v) for k, v in runs.items() if isinstance(v, dict)}


def _record_run(path: Path, profile: str, chapter: str, key: str | None) -> None:
    """Set (or with ``key=None`` drop) the chapter's key under ``profile``; the page now belongs to this profile,
    so other profiles' keys for it go. Re-reads the file first, so concurrent runs into one folder keep theirs."""
    with locked(path):
        runs = read_runs(path)
        for prof in runs.values():
            prof.pop(chapter, None)
        if key is not None:
            runs.setdefault(profile, {})[chapter] = key
        runs = {k: v for k, v in runs.items() if v}
        atomic_write(path, (json.dumps(runs, indent=2, sort_keys=True) + "\n").encode())


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
    with locked(path):
        try:
            timings = json.loads(path.read_text()) if path.is_file() else {}
        except ValueError:
            timings = {}
        timings = {k: v for k, v in timings.items() if isinstance(v, dict)}
        timings.setdefault(profile, {})[chapter] = dict(record)
        atomic_write(path, (json.dumps(timings, indent=2, sort_keys=True) + "\n").encode())


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
        fixed = {k: c.default for k, c in constants(chapter.path).items()}  # MIN_MODELS …
        try:
            validate({**params, **fixed}, {k: p.default for k, p in spec.items()},
                     {k for k, p in spec.items() if p.nullable}, root)
        except ValueError as err:
            raise SystemExit(f"[{chapter.id}] {chapter.name} (profile {profile_name!r}): {err}") from None
        plan.append((chapter, params))
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir, (".*.running-*.ipynb", f"{TMP_PREFIX}*"), legacy=(".*.running.ipynb",))
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
        fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{chapter.name}.running-{os.getpid()}-",
                                        suffix=".ipynb")
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
                give_file_mode(tmp)
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
        give_file_mode(tmp)
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
