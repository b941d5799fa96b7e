"""The chapter kit: one set-up shared by every chapter (parameters in; dataset, zoo spec, trained zoo, device out).

A chapter's ``parameters`` cell defines the zoo by name (``dataset``, ``arch``, ``n_models``, the recipe fields,
``vary``, ``seed_offset``, ``device``); ``setup(globals())`` reads exactly those names, checks them before any work
(one-line errors that name the fix) and trains what the cache lacks. Every model is defined by (architecture,
dataset, recipe, init seed, data-order seed), as in Woerl, Disselhoff & Wand (CVPR 2023)'s zoos of seeded networks.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence
import torch
from IPython.display import Markdown
from torch import nn

from ..data.datasets import Dataset, load_dataset
from ..zoo.spec import Recipe, ZooSpec, seed_lists
from ..zoo.store import LoadedZoo, ensure_zoo, ensure_zoos
from ..attribution import mapcache
from . import colab
from . import report
from ..data import settings


RECIPE_PARAMS = ("epochs", "batch_size", "lr", "optimizer", "schedule", "augment", "n_train")


ZOO_PARAMS = ("dataset", "arch", "n_models", *RECIPE_PARAMS, "vary", "seed_offset", "device", "profile")


_DEFAULTS: dict[str, Any] = {"vary": "both", "seed_offset": 0, "device": None, "profile": "manual"}


@dataclass(frozen=True)
class Kit:
    """What a chapter works with: the dataset, the zoo's spec and trained models, and where they run."""

    profile: str
    ds: Dataset
    spec: ZooSpec
    zoo: LoadedZoo
    device: torch.device
    vary: str = "both"
    seed_offset: int = 0

    @property
    def models(self) -> list[nn.Module]:
        return self.zoo.models

    @property
    def n_models(self) -> int:
        return self.spec.n_models

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.zoo.records(self.spec)

    def model_label(self, k: int) -> str:
        """"model k (seed i/d)", models numbered from 0 everywhere in the book."""
        return f"model {k} (seed {self.spec.init_seeds[k]}/{self.spec.data_seeds[k]})"

    def summary(self) -> Markdown:
        """The zoo's accuracy table (one row per model)."""
        return report.zoo_summary(self.spec, self.records, profile=self.profile, device=self.device)

    def sibling(self, arch: str | None = None, n_models: int | None = None, vary: str | None = None,
                progress: bool = True) -> "Kit":
        """Another zoo with the same dataset and recipe (for architecture or seed ablations), trained if missing."""
        v = self.vary if vary is None else vary
        spec = sibling_spec(self.spec, self.seed_offset, arch, n_models, v)
        return replace(self, spec=spec, zoo=ensure_zoo(spec, device=self.device, progress=progress), vary=v)

    def siblings(self, variants: Sequence[Mapping[str, Any]], progress: bool = True) -> list["Kit"]:
        """:meth:`sibling` for several zoos (each variant: the keyword arguments ``arch``, ``n_models``, ``vary``),
        the missing models of all of them trained side by side (:func:`helpers.zoo.store.train_zoos`: on two cores,
        two zoos of 10 LeNets take the time of one); the kits in the order of ``variants``."""
        unknown = sorted(set().union(*map(set, variants)) - {"arch", "n_models", "vary"}) if variants else []
        if unknown:
            raise ValueError(f"unknown sibling argument(s) {', '.join(unknown)}: use arch, n_models or vary")
        varies = [self.vary if v.get("vary") is None else v["vary"] for v in variants]
        specs = [sibling_spec(self.spec, self.seed_offset, v.get("arch"), v.get("n_models"), vary)
                 for v, vary in zip(variants, varies)]
        zoos = ensure_zoos(specs, device=self.device, progress=progress)
        return [replace(self, spec=s, zoo=z, vary=vary) for s, z, vary in zip(specs, zoos, varies)]

    def control(self, kind: str, n_models: int | None = None, label_seed: int = 0, epochs: int | None = None,
                progress: bool = True) -> "Kit":
        """The control zoo of this kit's zoo (:func:`control_spec`): ``"untrained"`` (its models at their initial
        weights, nothing trained) or ``"random-labels"`` (trained on permuted labels), cached like any zoo."""
        spec = control_spec(self.spec, kind, n_models, label_seed, epochs)
        return replace(self, spec=spec, zoo=ensure_zoo(spec, device=self.device, progress=progress))

    def maps(self, methods: Sequence[str], inputs: torch.Tensor, target: torch.Tensor,
             method_kwargs: dict[str, dict] | None = None, progress: bool = False) -> dict[str, torch.Tensor]:
        """Per-model maps (M, N, H, W) of every method for this zoo, through the shared map cache
        (:mod:`helpers.mapcache`): computed once, reused by every chapter and rerun that asks for the same maps."""
        return mapcache.method_maps(self.spec.key, self.spec.seed_pairs, self.models, methods, inputs, target,
                                    method_kwargs, progress)

    def shares_models_with(self, other: "Kit") -> bool:
        """Whether ``other``'s models are the first models of this zoo (so its maps can be reused)."""
        return (other.spec.identity() == self.spec.identity() and other.n_models <= self.n_models
                and other.spec.seed_pairs == self.spec.seed_pairs[:other.n_models])


def check_parameters(params: Mapping[str, Any]) -> None:
    """Refuse bad zoo parameters before any work, with a one-line error that names the fix."""
    missing = [k for k in ("dataset", "arch", "n_models", *RECIPE_PARAMS) if k not in params]
    if missing:
        raise ValueError(f"the parameters cell lacks {', '.join(missing)}: define them (see chapter 1's cell)")
    n = params["n_models"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n_models={n!r}: use a whole number of models ≥ 1")
    least = params.get("MIN_MODELS", 1)
    if n < least:
        raise ValueError(f"n_models={n} but this chapter needs n_models ≥ {least}: raise n_models")
    offset = params.get("seed_offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValueError(f"seed_offset={offset!r}: use a whole number ≥ 0 (the first seed of the zoo)")
    check_device(params.get("device"))
    if not isinstance(params["epochs"], int) or params["epochs"] < 1:
        raise ValueError(f"epochs={params['epochs']!r}: use a whole number ≥ 1")
    if params.get("vary", "both") not in ("both", "init", "data"):
        raise ValueError(f"vary={params['vary']!r}: use 'both', 'init' or 'data'")


def check_device(device: Any) -> None:
    """Refuse a device this machine does not have (``device=cuda`` without a GPU) before any work."""
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r}: use cpu, cuda, cuda:N or mps, or None (automatic)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but this machine has no CUDA GPU: use device=None (automatic) or cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r} but this machine has {torch.cuda.device_count()} GPU(s): use "
                         f"cuda:0 … cuda:{torch.cuda.device_count() - 1}")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device={device!r} but this machine has no Apple GPU: use device=None (automatic) or cpu")


def recipe_of(params: Mapping[str, Any]) -> Recipe:
    return Recipe(**{k: params[k] for k in RECIPE_PARAMS})


def zoo_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The zoo's names of a chapter's parameters, with the kit's defaults, checked."""
    p = {**_DEFAULTS, **{k: params[k] for k in ZOO_PARAMS if k in params}}
    check_parameters(p)
    return p


def zoo_spec(params: Mapping[str, Any]) -> ZooSpec:
    """The spec of a chapter's zoo from its parameters (what :func:`setup` trains and ``zoo train`` plans)."""
    p = zoo_params(params)
    init_seeds, data_seeds = seed_lists(p["n_models"], p["vary"], p["seed_offset"])
    return ZooSpec(p["arch"], p["dataset"], recipe_of(p), p["n_models"], init_seeds, data_seeds)


def sibling_spec(spec: ZooSpec, seed_offset: int = 0, arch: str | None = None, n_models: int | None = None,
                 vary: str = "both") -> ZooSpec:
    """Another zoo with the same dataset and recipe (what :meth:`Kit.sibling` trains)."""
    n = spec.n_models if n_models is None else int(n_models)
    init_seeds, data_seeds = seed_lists(n, vary, seed_offset)
    return replace(spec, arch=arch or spec.arch, n_models=n, init_seeds=init_seeds, data_seeds=data_seeds)


def control_spec(spec: ZooSpec, kind: str, n_models: int | None = None, label_seed: int = 0,
                 epochs: int | None = None) -> ZooSpec:
    """The control zoo of ``spec`` (what :meth:`Kit.control` loads and ``zoo train`` plans): its first ``n_models``
    seed pairs (default all), the same recipe, ``epochs`` replaced where given (a random-label zoo may need more
    epochs than a smoke recipe's one to fit its labels)."""
    out = spec.as_control(kind, n_models, label_seed)
    return out if epochs is None else replace(out, recipe=replace(out.recipe, epochs=int(epochs)))


def setup(params: Mapping[str, Any], progress: bool = True) -> Kit:
    """Build the chapter's zoo from the names of its parameters cell: ``kit = chapter.setup(globals())``.

    Loads the dataset, trains the models that the cache lacks and loads them in eval mode on the chosen device
    (``device=None``: ``$HELPERS_DEVICE``, else CUDA if available, else CPU). On Colab with a GPU, a chapter
    whose ``profile`` is still ``"manual"`` first takes the ``colab`` profile's parameters
    (:func:`helpers.colab.apply_profile`, a no-op elsewhere)."""
    colab.apply_profile(params)
    p = zoo_params(params)
    device = torch.device(p["device"]) if p["device"] else settings.default_device()
    spec = zoo_spec(p)
    ds = load_dataset(p["dataset"])
    zoo = ensure_zoo(spec, device=device, progress=progress)
    return Kit(str(p["profile"]), ds, spec, zoo, device, p["vary"], int(p["seed_offset"]))
