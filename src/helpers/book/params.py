"""Checks of a chapter's parameters before a kernel starts: types, ranges, names of datasets, methods and
architectures, each refused with a one-line error that names the fix.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

from .profiles import project_root


_AT_LEAST = {"n_arch_models": (2, "an SNR needs at least two models per architecture"),
             "n_classes_shown": (2, "the chapter compares the true class with the runner-up")}


_AT_MOST_ZOO = {"n_single": "<=", "n_ensemble": "<", "n_sanity_models": "<="}  # compared with n_models


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
    _check_names(p, ("arch",), ("architectures",), "helpers.zoo.architectures", "MODELS", "architecture")
    _check_names(p, ("class_method",), ("methods", "class_methods"), "helpers.attribution", "METHODS",
                 "attribution method")
    if "device" in p:
        from .chapter import check_device

        check_device(p["device"])
    if "classes" in p and p["classes"] is not None and (
            not isinstance(p["classes"], list) or not all(_whole(c) and c >= 0 for c in p["classes"])):
        raise ValueError(f"classes={p['classes']!r}: use None (every class) or a list of class indices, "
                         f"e.g. [0, 3, 8]")


def _check_dataset(name: Any, root: Path | None) -> None:
    from ..data.datasets import DATASETS

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
