"""Zoos as job arrays: the models a cache lacks cut into work units (one model per unit on a GPU, one fixed group of
:data:`helpers.zoo.cpu.SLOTS` LeNets per unit on a CPU), each unit a plain function call that submitit can run as one
job of a SLURM job array (or a local subprocess). A unit trains through :func:`helpers.zoo.store.train_zoo`, so it
takes each model's lock and writes each model's record: what is done is read from the cache, never from job state.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence
import torch

from .cpu import SLOTS, slot_groups
from .records import is_running
from .spec import ZooSpec, model_name
from .store import _groupable, missing, train_zoo


@dataclass(frozen=True)
class Unit:
    """One job: models ``pairs`` of the zoo ``spec`` trained on ``device``."""

    spec: ZooSpec
    pairs: tuple[tuple[int, int], ...]
    device: str = "cpu"

    def zoo(self) -> ZooSpec:
        """The zoo of just this unit's models (same cache key and folder as ``spec``)."""
        return replace(self.spec, n_models=len(self.pairs), init_seeds=tuple(i for i, _ in self.pairs),
                       data_seeds=tuple(d for _, d in self.pairs))

    def label(self) -> str:
        return f"{self.spec.arch}/{self.spec.key}:{','.join(model_name(*p) for p in self.pairs)}"


def merge(specs: Sequence[ZooSpec]) -> list[ZooSpec]:
    """One spec per cache key, with the union of the seed pairs in first-seen order (chapters share zoos)."""
    by_key: dict[str, list[Any]] = {}
    for s in specs:
        entry = by_key.setdefault(s.key, [s, []])
        entry[1] += [p for p in s.seed_pairs if p not in entry[1]]
    return [replace(s, n_models=len(pairs), init_seeds=tuple(i for i, _ in pairs),
                    data_seeds=tuple(d for _, d in pairs)) for s, pairs in by_key.values()]


def units(specs: Sequence[ZooSpec], device: str = "cpu") -> list[Unit]:
    """The work units for what the cache lacks (models being trained elsewhere, their lock held, left out)."""
    from ..data.datasets import load_dataset

    out = []
    for s in merge(specs):
        todo = [p for p in missing(s) if not is_running(s, model_name(*p))]
        if not todo:
            continue
        grouped = torch.device(device).type == "cpu" and _groupable(s, load_dataset(s.dataset), torch.device("cpu"))
        chunks = slot_groups(todo, SLOTS) if grouped else [[p] for p in todo]
        out += [Unit(s, tuple(c), device) for c in chunks]
    return out


def run_unit(unit: Unit) -> dict[str, str]:
    """Train one unit (in a job); returns each model's sha256 from its record."""
    manifest = train_zoo(unit.zoo(), device=unit.device, progress=False, group=len(unit.pairs))
    return {model_name(*p): manifest["models"][model_name(*p)]["sha256"] for p in unit.pairs}


def status(spec: ZooSpec) -> dict[str, int]:
    """``done``, ``missing`` and ``running`` (a lock held) counts of the models of ``spec``."""
    todo = missing(spec)
    running = sum(is_running(spec, model_name(*p)) for p in todo)
    return {"done": spec.n_models - len(todo), "missing": len(todo) - running, "running": running}
