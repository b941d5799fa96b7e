"""Zoos of seeded models: same architecture, data and recipe, different random seeds (Woerl et al., CVPR 2023).

A model is defined by (architecture, dataset, recipe, init seed, data-order seed). The init seed fixes the initial
weights, the data-order seed fixes the mini-batch order and augmentation, so a chapter can vary one at a time.
Trained weights live in ``<cache>/zoo/<key>/`` where ``<key>`` hashes the spec without its seed list (architecture,
dataset, recipe), so a zoo of 32 seeds reuses the models of a zoo of 16. Each weights file is named by its two seeds
and listed in ``manifest.json`` with its accuracy, training time and sha256. Every write is atomic (temporary file +
``os.replace``), so a killed run leaves no half-written file and resumes from the models already done.

On the CPU, LeNets are trained :data:`GROUP_SIZE` at a time (:func:`train_group`): as grouped networks
(:class:`LeNetGroup`: convolutions with ``groups=M`` in channels-last memory, linear layers as batched matrix
products), one per core, each in its own thread. Every model keeps its own initial weights, batch order and optimizer
state, so its weights equal those of one-at-a-time training (:func:`train_model`) within float tolerance, and the
files, manifest and cache key are the same; ``benchmarks/bench_training.py`` measures the speed-up.
"""
from __future__ import annotations

import json
import platform
import time
from typing import Any, NamedTuple
import torch
from torch import nn

from ..data.datasets import Dataset, load_dataset
from ..data.files import check_writable
from .cpu import groupable, train_group
from .outputs import accuracy
from .health import TrainingFailed, check_trained
from .spec import ZooSpec, model_name
from .training import _atomic_write, new_model, sha256_file, train_model
from ..data import settings


GROUP_SIZE = 24  # LeNets trained together on the CPU; an interrupted run loses at most one group


def read_manifest(spec: ZooSpec) -> dict[str, Any]:
    path = spec.directory / "manifest.json"
    if path.is_file():
        return json.loads(path.read_text())
    return {"spec": spec.identity(), "models": {}}


def _write_manifest(spec: ZooSpec, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True).encode()
    _atomic_write(spec.directory / "manifest.json", lambda f: f.write(text))


ENGINES = ("loop", "group", "gpu")


def _engine(device: torch.device, engine: str | None) -> str:
    """``None``: the GPU recipe (:mod:`helpers.gpu_train`) on CUDA, grouped LeNets (else the loop) on a CPU."""
    if engine is None:
        return "gpu" if device.type == "cuda" else "group"
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}, or None (by device)")
    return engine


def _group_size(spec: ZooSpec, ds: Dataset, device: torch.device, group: int | None, engine: str = "group") -> int:
    """How many models to train at once: :data:`GROUP_SIZE` LeNets on the CPU, the GPU recipe's stack, else one."""
    if engine == "gpu":
        from . import gpu

        return max(1, gpu.stack_size(spec.arch) if group is None else group)
    if device.type != "cpu" or engine == "loop":
        return 1  # grouping was measured on the CPU only
    with torch.device("meta"):
        probe = new_model(spec, ds, 0, for_loading=True)
    return max(1, GROUP_SIZE if group is None else group) if groupable(probe) else 1


def train_zoo(spec: ZooSpec, device: torch.device | str | None = None, progress: bool = True,
              group: int | None = None, engine: str | None = None) -> dict[str, Any]:
    """Train every model of ``spec`` that is not in the cache yet; return the manifest.

    Models already stored (file present, checksum matching) are skipped, so an interrupted run resumes. On the CPU,
    LeNets are trained ``group`` at a time (default :data:`GROUP_SIZE`) with :func:`train_group` and stored when
    their group finishes (``train_seconds`` is then the group's time divided by its size); other models one at a time.
    On CUDA (or with ``engine="gpu"``) :func:`helpers.gpu_train.train_models` trains ``group`` models at a time
    (default :func:`helpers.gpu_train.stack_size`) with the data on the device. Every engine draws each model's
    batches from its own data seed in the same order, so they agree up to float rounding and share the cache.
    """
    device = torch.device(device) if device is not None else settings.default_device()
    engine = _engine(device, engine)
    manifest = read_manifest(spec)
    todo = [(i, d) for i, d in spec.seed_pairs if not _is_done(spec, manifest, i, d)]
    if not todo:
        return manifest
    ds = load_dataset(spec.dataset)
    if spec.recipe.n_train is not None and spec.recipe.n_train > len(ds.train):
        raise ValueError(f"n_train={spec.recipe.n_train} but {spec.dataset} has {len(ds.train)} training images: "
                         f"use n_train ≤ {len(ds.train)} or None")
    check_writable(spec.directory)
    x_test, y_test = ds.test.x.to(device), ds.test.y.to(device)
    from tqdm.auto import tqdm

    size = _group_size(spec, ds, device, group, engine)
    bar = tqdm(total=len(todo), desc=f"zoo {spec.arch}/{spec.dataset}", unit="model", disable=not progress)
    for start in range(0, len(todo), size):
        chunk = todo[start:start + size]
        t0 = time.perf_counter()
        if engine == "gpu":
            from .gpu import train_models

            models = train_models(spec, ds, chunk, device)
        elif len(chunk) > 1:
            models = train_group(spec, ds, chunk)
        else:
            models = [train_model(spec, ds, chunk[0][0], chunk[0][1], device)]
        seconds = (time.perf_counter() - t0) / len(chunk)
        accs = [accuracy(model, x_test, y_test) for model in models]
        failed: TrainingFailed | None = None
        for (init_seed, data_seed), model, acc in zip(chunk, models, accs):
            try:
                check_trained(model, acc, spec, (init_seed, data_seed), ds.num_classes)
            except TrainingFailed as err:  # the healthy models of the chunk are kept, the failed one is not
                failed = failed or err
                continue
            name = model_name(init_seed, data_seed)
            path = spec.directory / f"{name}.pt"
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            _atomic_write(path, lambda f: torch.save(state, f))
            manifest = read_manifest(spec)  # re-read: another process may have added models meanwhile
            manifest["models"][name] = {
                "init_seed": init_seed, "data_seed": data_seed, "file": path.name, "sha256": sha256_file(path),
                "test_accuracy": acc, "train_seconds": round(seconds, 3), "device": str(device),
                "torch": torch.__version__, "host": platform.node(),
            }
            _write_manifest(spec, manifest)
            bar.update(1)
            bar.set_postfix(acc=f"{acc:.3f}")
        if failed is not None:
            bar.close()
            raise failed
    bar.close()
    return manifest


def _is_done(spec: ZooSpec, manifest: dict[str, Any], init_seed: int, data_seed: int) -> bool:
    entry = manifest["models"].get(model_name(init_seed, data_seed))
    return entry is not None and (spec.directory / entry["file"]).is_file()


class LoadedZoo(NamedTuple):
    models: list[nn.Module]
    manifest: dict[str, Any]

    def records(self, spec: ZooSpec) -> list[dict[str, Any]]:
        """The manifest entries of ``spec``'s models, in zoo order."""
        return [self.manifest["models"][model_name(i, d)] for i, d in spec.seed_pairs]


def load_zoo(spec: ZooSpec, device: torch.device | str | None = None) -> LoadedZoo:
    """Load the trained models of ``spec`` in eval mode (``torch.load(weights_only=True)``), checking sha256."""
    device = torch.device(device) if device is not None else settings.default_device()
    manifest = read_manifest(spec)
    ds = load_dataset(spec.dataset) if spec.seed_pairs else None
    models = []
    for init_seed, data_seed in spec.seed_pairs:
        name = model_name(init_seed, data_seed)
        entry = manifest["models"].get(name)
        path = spec.directory / (entry["file"] if entry else f"{name}.pt")
        if entry is None or not path.is_file():
            raise FileNotFoundError(f"model {name} of zoo {spec.key} is not trained: run train_zoo(spec) first")
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise ValueError(f"checksum mismatch for {path}: delete the file and run train_zoo(spec) to retrain it")
        model = new_model(spec, ds, init_seed, for_loading=True)  # type: ignore[arg-type]
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        models.append(model.to(device).eval())
    return LoadedZoo(models, manifest)


def ensure_zoo(spec: ZooSpec, device: torch.device | str | None = None, progress: bool = True) -> LoadedZoo:
    """Train what is missing, then load the zoo."""
    train_zoo(spec, device=device, progress=progress)
    return load_zoo(spec, device=device)
