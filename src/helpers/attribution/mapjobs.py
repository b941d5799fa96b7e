"""A chapter's maps for large zoos as a job array: one job per model and method (``python -m helpers maps compute``).

Each job loads one model of the zoo, computes one method's maps for a request (the images and targets a chapter
asks for, saved with :func:`save_request`) and stores them as that model's own map-cache entry
(:func:`helpers.attribution.mapcache.model_key`); :func:`helpers.attribution.mapcache.method_maps` then assembles the
zoo's entry from the per-model ones when the chapter asks for it. What is done is read from the map cache.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence
import torch

from ..zoo.spec import ZooSpec
from ..zoo.training import _atomic_write
from . import mapcache


def save_request(path: Path, inputs: torch.Tensor, target: torch.Tensor) -> Path:
    """Save the images and targets whose maps the jobs compute (a chapter's ``inputs`` and ``target``)."""
    state = {"inputs": inputs.detach().cpu().contiguous(), "target": torch.as_tensor(target).detach().cpu()}
    _atomic_write(Path(path), lambda f: torch.save(state, f))
    return Path(path)


def load_request(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    from .registry import as_target

    return state["inputs"], as_target(state["target"], state["inputs"].shape[0], torch.device("cpu"))


@dataclass(frozen=True)
class MapUnit:
    """One job: ``method``'s maps of model ``pair`` of zoo ``spec`` for the request at ``request``."""

    spec: ZooSpec
    pair: tuple[int, int]
    method: str
    request: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    device: str = "cpu"

    def entry(self) -> str:
        inputs, target = load_request(Path(self.request))
        return mapcache.model_key(self.spec.key, self.pair, self.method, dict(self.kwargs), inputs, target)


def map_units(specs: Sequence[ZooSpec], methods: Sequence[str], request: Path, device: str = "cpu",
              method_kwargs: dict[str, dict] | None = None) -> list[MapUnit]:
    """The (model, method) jobs whose per-model entry the map cache lacks."""
    kw = method_kwargs or {}
    out = [MapUnit(s, tuple(p), m, str(request), tuple(sorted(kw.get(m, {}).items())), device)
           for s in specs for p in s.seed_pairs for m in methods]
    return [u for u in out if mapcache.load(u.entry()) is None]


def run_map_unit(unit: MapUnit) -> str:
    """Compute and store one model's maps of one method (in a job); returns the entry's key."""
    from ..zoo.store import load_zoo
    from .marginal import method_maps

    (i, d) = unit.pair
    one = replace(unit.spec, n_models=1, init_seeds=(i,), data_seeds=(d,))
    model = load_zoo(one, device=unit.device).models
    inputs, target = load_request(Path(unit.request))
    inputs, target = inputs.to(unit.device), target.to(unit.device)
    maps = method_maps([unit.method], model, inputs, target, {unit.method: dict(unit.kwargs)}, progress=False)
    k = unit.entry()
    mapcache.save(k, maps[unit.method])
    return k
