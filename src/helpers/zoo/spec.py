"""What defines a model: the training :class:`Recipe` and the :class:`ZooSpec` (architecture, dataset, recipe,
seeds). A zoo's cache key hashes the spec without its seed list, so zoos of more seeds reuse the models of fewer.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..data import settings


FORMAT_VERSION = 1


# fields added to Recipe after zoos were cached, with the value that keeps them out of the cache key
LATER_FIELDS: dict[str, Any] = {"weight_decay": 0.0, "amp": False, "label_smoothing": 0.0}


# the speed-run recipe's defaults for schedule="onecycle" (Page 2018; Jordan 2024): label smoothing, weight decay and
# bfloat16 on CUDA; an explicit value in the Recipe wins
ONECYCLE_DEFAULTS: dict[str, Any] = {"weight_decay": 5e-4, "amp": True, "label_smoothing": 0.2}


ONECYCLE_WARMUP = 0.25  # fraction of the steps spent raising the learning rate (then linear decay)


# control zoos (Adebayo et al. 2018): "untrained" keeps every model at its initial weights (its init seed, no
# training); "random-labels" trains with the same recipe on the training split's labels permuted with ``label_seed``
CONTROLS = ("untrained", "random-labels")


@dataclass(frozen=True)
class Recipe:
    """How every model of a zoo is trained. All fields are part of the cache key."""

    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"  # "adam" or "sgd" (momentum 0.9, nesterov)
    weight_decay: float | None = None  # None: ONECYCLE_DEFAULTS for "onecycle", else 0
    schedule: str = "none"  # "none", "cosine" (per step, to zero) or "onecycle" (the GPU speed-run recipe)
    augment: str = "none"  # "none" or "crop-flip" (pad 4, random 32×32 crop, horizontal flip)
    n_train: int | None = None  # seeded class-balanced subset of the training split
    amp: bool | None = None  # on CUDA: bfloat16 autocast and channels-last memory (about 3× faster); ignored on a CPU
    label_smoothing: float | None = None  # of the cross-entropy targets (Szegedy et al. 2016)
    min_accuracy: float | None = None  # health floor of the test accuracy (None: chance + 0.1); not in the cache key

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}: use 'adam' or 'sgd'")
        if self.schedule not in ("none", "cosine", "onecycle"):
            raise ValueError(f"unknown schedule {self.schedule!r}: use 'none', 'cosine' or 'onecycle'")
        # fields left at None take the schedule's defaults: the one-cycle schedule comes with the rest of the
        # speed-run recipe (profiles can only name the schedule); every other schedule keeps the old defaults
        defaults = ONECYCLE_DEFAULTS if self.schedule == "onecycle" else LATER_FIELDS
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing={self.label_smoothing!r}: use a number in [0, 1), e.g. 0.2")
        if self.augment not in ("none", "crop-flip"):
            raise ValueError(f"unknown augment {self.augment!r}: use 'none' or 'crop-flip'")
        _whole(self.epochs, "epochs", "e.g. epochs=5")
        _whole(self.batch_size, "batch_size", "e.g. batch_size=64")
        if self.n_train is not None:
            _whole(self.n_train, "n_train", "or None for the whole training split")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) \
                or self.lr <= 0:
            raise ValueError(f"lr={self.lr!r} cannot train: use a learning rate > 0, e.g. lr=0.001")
        if self.min_accuracy is not None and not 0 <= self.min_accuracy < 1:
            raise ValueError(f"min_accuracy={self.min_accuracy!r}: use a number in [0, 1) or None")


@dataclass(frozen=True)
class ZooSpec:
    """A zoo: ``n_models`` models of one architecture on one dataset, model i trained with
    ``init_seeds[i]`` and ``data_seeds[i]`` (both default to ``0 … n_models-1``).

    ``control`` (:data:`CONTROLS`): a control zoo of the same spec, cached under its own key: ``"untrained"``
    (the weights at initialization, nothing trained) or ``"random-labels"`` (trained on the training labels
    permuted with ``label_seed``). ``None``, a trained zoo, leaves the cache key as it was before controls existed."""

    arch: str
    dataset: str
    recipe: Recipe = field(default_factory=Recipe)
    n_models: int = 16
    init_seeds: tuple[int, ...] | None = None
    data_seeds: tuple[int, ...] | None = None
    arch_kwargs: tuple[tuple[str, Any], ...] = ()
    control: str | None = None
    label_seed: int = 0

    def __post_init__(self) -> None:
        _whole(self.n_models, "n_models", "a zoo needs at least one model")
        if self.control is not None and self.control not in CONTROLS:
            raise ValueError(f"unknown control {self.control!r}: use None (trained), 'untrained' or 'random-labels'")
        if isinstance(self.label_seed, bool) or not isinstance(self.label_seed, int) or self.label_seed < 0:
            raise ValueError(f"label_seed={self.label_seed!r}: use a whole number ≥ 0")
        if isinstance(self.recipe, dict):
            object.__setattr__(self, "recipe", Recipe(**self.recipe))
        if isinstance(self.arch_kwargs, dict):
            object.__setattr__(self, "arch_kwargs", tuple(sorted(self.arch_kwargs.items())))
        for name in ("init_seeds", "data_seeds"):
            seeds = getattr(self, name)
            seeds = tuple(range(self.n_models)) if seeds is None else tuple(int(s) for s in seeds)
            if len(seeds) != self.n_models:
                raise ValueError(f"{name} has {len(seeds)} entries but n_models={self.n_models}: "
                                 f"give one seed per model")
            object.__setattr__(self, name, seeds)
        if len(set(self.seed_pairs)) != self.n_models:
            raise ValueError("two models share the same (init seed, data seed) pair: make the pairs unique")

    @property
    def seed_pairs(self) -> list[tuple[int, int]]:
        return list(zip(self.init_seeds, self.data_seeds))  # type: ignore[arg-type]

    def identity(self) -> dict[str, Any]:
        """What defines the models apart from their seeds (hashed into :attr:`key`)."""
        recipe = asdict(self.recipe)
        del recipe["min_accuracy"]  # a health check, not part of how the weights are made
        for name in ("amp", "label_smoothing"):
            if recipe[name] == LATER_FIELDS[name]:
                del recipe[name]  # fields added later stay out of the key at their default: old caches stay valid
        out = {"format": FORMAT_VERSION, "arch": self.arch, "arch_kwargs": dict(self.arch_kwargs),
               "dataset": self.dataset, "recipe": recipe}
        if self.control is not None:  # trained zoos (None) keep the keys they had before controls existed
            out["control"] = self.control
            if self.control == "random-labels":
                out["label_seed"] = self.label_seed
        return out

    @property
    def key(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def directory(self) -> Path:
        return settings.cache_root() / "zoo" / self.key

    def subset(self, n: int) -> "ZooSpec":
        """The first ``n`` models of this zoo."""
        return ZooSpec(self.arch, self.dataset, self.recipe, n, self.init_seeds[:n], self.data_seeds[:n],
                       self.arch_kwargs, self.control, self.label_seed)

    def as_control(self, control: str | None, n_models: int | None = None, label_seed: int = 0) -> "ZooSpec":
        """The control zoo of this spec (the first ``n_models`` seed pairs, default all): same architecture,
        dataset, recipe and init seeds; ``control=None`` gives the trained zoo back."""
        base = self.subset(self.n_models if n_models is None else min(int(n_models), self.n_models))
        return ZooSpec(base.arch, base.dataset, base.recipe, base.n_models, base.init_seeds, base.data_seeds,
                       base.arch_kwargs, control, label_seed)


def _whole(value: object, name: str, hint: str) -> None:
    """Refuse a setting that cannot train (0 epochs, an empty zoo …) with one line that names the fix."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} cannot train: use a whole number ≥ 1 ({hint})")


def model_name(init_seed: int, data_seed: int) -> str:
    return f"i{init_seed}_d{data_seed}"


def seed_lists(n_models: int, vary: str = "both", offset: int = 0) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Seeds for a zoo in which ``vary`` ("both", "init" or "data") differs between models; the other is fixed."""
    changing = tuple(range(offset, offset + n_models))
    fixed = (offset,) * n_models
    if vary == "both":
        return changing, changing
    if vary == "init":
        return changing, fixed
    if vary == "data":
        return fixed, changing
    raise ValueError(f"unknown vary={vary!r}: use 'both', 'init' or 'data'")
