"""Saliency maps and the seed: the helpers behind the book's chapters.

The package follows the data through the book, one subpackage per stage; a stage imports only the stages before it
(``tests/test_architecture.py`` checks this, and that no modules import each other in a circle)::

    data ─► zoo ─► attribution ─► evaluation ─► figures ─► book ─► chapters
    datasets  specs,    registry,     intervals,     sliders,     kit, glue,   one module of
    settings  training, methods,      agreement,     menus,       runner,      tables and
              cache     marginal,     SNR, metrics,  figure       build, CLI   sentences per
                        CLEAR, dream  sanity         families                  chapter

The names below are the public API for notebooks and users, e.g.
``from helpers import ZooSpec, Recipe, ensure_zoo, load_dataset, attribute, Marginalized, METHODS``.
Importing the package registers every attribution method (:mod:`helpers.attribution` imports its plug-ins).
"""
from __future__ import annotations

STAGES: tuple[str, ...] = ("data", "zoo", "attribution", "evaluation", "figures", "book", "chapters")

from .attribution import CORE_METHODS, METHODS, Marginalized, MarginalMaps, attribute, get_method  # noqa: E402
from .data import Dataset, examples_per_class, load_dataset  # noqa: E402
from .zoo import LoadedZoo, Recipe, ZooSpec, ensure_zoo, load_zoo, seed_lists, train_zoo  # noqa: E402

__all__ = ["STAGES", "CORE_METHODS", "METHODS", "Marginalized", "MarginalMaps", "attribute", "get_method", "Dataset",
           "examples_per_class", "load_dataset", "LoadedZoo", "Recipe", "ZooSpec", "ensure_zoo", "load_zoo",
           "seed_lists", "train_zoo"]
