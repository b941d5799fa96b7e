"""Zoos of seeded models: same architecture, data and recipe, different random seeds (Woerl et al., CVPR 2023).

A model is defined by (architecture, dataset, recipe, init seed, data-order seed). The init seed fixes the initial
weights, the data-order seed fixes the mini-batch order and augmentation, so a chapter can vary one at a time.
Trained weights live in ``<cache>/zoo/<key>/`` where ``<key>`` hashes the spec without its seed list (architecture,
dataset, recipe), so a zoo of 32 seeds reuses the models of a zoo of 16. Each weights file is named by its two seeds
and has its own record beside it (:mod:`.records`: accuracy, training time, sha256, host), written atomically after
it, under a lock per model, so trainers in several processes never lose or repeat each other's work, and a killed run
resumes from the models already done (old caches with one ``manifest.json`` still load).

On the CPU, LeNets are trained :data:`GROUP_SIZE` at a time (:func:`train_group`): as grouped networks
(:class:`LeNetGroup`: convolutions with ``groups=M`` in channels-last memory, linear layers as batched matrix
products), one per core, each in its own thread, in groups of a fixed number of slots, so that a model's weights do not
depend on which models share its group. Every model keeps its own initial weights, batch order and optimizer
state, so its weights equal those of one-at-a-time training (:func:`train_model`) within float tolerance, and the
files, records and cache key are the same; ``benchmarks/bench_training.py`` measures the speed-up. Several zoos
(a chapter's sibling zoos of 10 models, one group each) are trained side by side by :func:`train_zoos`. Loaded LeNets
keep their convolution weights in channels-last memory on the CPU (:func:`inference_layout`): the same values, and
attribution methods run up to twice as fast.
"""
from __future__ import annotations

import contextlib
import os
import platform
import time
import warnings
from typing import Any, NamedTuple
import torch
from torch import nn

from ..data.datasets import Dataset, load_dataset
from ..data.files import check_writable, remove_stale_temporaries
from .cpu import groupable, train_group, train_groups
from .outputs import accuracy
from .health import TrainingFailed, check_trained
from .spec import ZooSpec, model_name
from . import records
from .records import read_manifest
from .training import new_model, sha256_file, train_model, training_split
from ..data import settings


GROUP_SIZE = 24  # LeNets trained at once on the CPU (two groups of cpu.SLOTS); a kill loses at most these


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
    return max(1, GROUP_SIZE if group is None else group) if _groupable(spec, ds, device) else 1


def train_zoo(spec: ZooSpec, device: torch.device | str | None = None, progress: bool = True,
              group: int | None = None, engine: str | None = None) -> dict[str, Any]:
    """Train every model of ``spec`` that is not in the cache yet; return the manifest (:func:`read_manifest`).

    Control zoos (``spec.control``) are stored like trained ones: an ``"untrained"`` zoo's models are written at
    their initial weights (no training: it costs a forward pass for the record's accuracy), a ``"random-labels"``
    zoo is trained on permuted labels and checked on them (:func:`helpers.zoo.health.check_trained`).

    Models already stored (record present, checksum matching) are skipped, so an interrupted run resumes; a file whose
    checksum does not match is retrained after a warning. Each model is trained under its own lock
    (:func:`helpers.zoo.records.model_lock`): models that another process is training are waited for, not trained
    again. On the CPU, LeNets are trained ``group`` at a time (default :data:`GROUP_SIZE`) with :func:`train_group`
    (groups of :data:`helpers.zoo.cpu.SLOTS`) and stored when their group finishes (``train_seconds`` is then the
    group's time divided by its size); other models one at a time. On CUDA (or with ``engine="gpu"``)
    :func:`helpers.zoo.gpu.train_models` trains ``group`` models at a time (default
    :func:`helpers.zoo.gpu.stack_size`). Every engine draws each model's batches from its own data seed in the same
    order, so they agree up to float rounding and share the cache.
    """
    device = torch.device(device) if device is not None else settings.default_device()
    engine = _engine(device, engine)
    todo = missing(spec)
    if todo:
        _prepare(spec)
    ds: Dataset | None = None
    while todo:
        with contextlib.ExitStack() as held:
            mine = _claim(spec, todo, held)
            if mine:
                if ds is None:
                    ds = load_dataset(spec.dataset)
                    if spec.recipe.n_train is not None and spec.recipe.n_train > len(ds.train):
                        raise ValueError(f"n_train={spec.recipe.n_train} but {spec.dataset} has {len(ds.train)} "
                                         f"training images: use n_train ≤ {len(ds.train)} or None")
                _train_pairs(spec, ds, mine, device, engine, group, progress)
        for pair in todo:  # the models others were training: wait for their locks, then look again
            with records.model_lock(spec, model_name(*pair), blocking=True):
                pass
        todo = missing(spec, todo)
    return read_manifest(spec)


def _prepare(spec: ZooSpec) -> None:
    """Before training into ``spec``'s folder: a read-only cache that lacks models names the fix, and the
    temporary files of killed writers (``.tmp-<pid>-…``, :mod:`helpers.data.files`) are removed."""
    check_writable(spec.directory)
    records.remove_stale_temporaries(spec)
    remove_stale_temporaries(spec.directory)


def _claim(spec: ZooSpec, todo: list[tuple[int, int]], held: contextlib.ExitStack) -> list[tuple[int, int]]:
    """The models of ``todo`` whose locks this process got (held until ``held`` closes) and that are still missing:
    some may have been finished meanwhile by another process."""
    mine = [pair for pair in todo if held.enter_context(records.model_lock(spec, model_name(*pair)))]
    return missing(spec, mine)


def missing(spec: ZooSpec, pairs: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """The seed pairs of ``spec`` (or ``pairs``) whose model is not stored with a matching checksum."""
    return [(i, d) for i, d in (spec.seed_pairs if pairs is None else pairs) if not _is_done(spec, i, d)]


def _train_pairs(spec: ZooSpec, ds: Dataset, todo: list[tuple[int, int]], device: torch.device, engine: str,
                 group: int | None, progress: bool) -> None:
    """Train and store the models of ``todo`` (whose locks the caller holds), ``group`` at a time."""
    from tqdm.auto import tqdm

    size = _group_size(spec, ds, device, group, engine)
    grouped = engine == "group" and _groupable(spec, ds, device)  # even one model: groups have fixed slots
    bar = tqdm(total=len(todo), desc=f"zoo {spec.arch}/{spec.dataset}", unit="model", disable=not progress)
    try:
        for start in range(0, len(todo), size):
            chunk = todo[start:start + size]
            t0 = time.perf_counter()
            if spec.control == "untrained":  # the weights at initialization: nothing to train
                models = [new_model(spec, ds, i).to(device).eval() for i, _ in chunk]
            elif engine == "gpu":
                from .gpu import train_models

                models = train_models(spec, ds, chunk, device)
            elif grouped:
                models = train_group(spec, ds, chunk)
            else:
                models = [train_model(spec, ds, chunk[0][0], chunk[0][1], device)]
            _store(spec, ds, chunk, models, (time.perf_counter() - t0) / len(chunk), device, bar)
    finally:
        bar.close()


def _store(spec: ZooSpec, ds: Dataset, chunk: list[tuple[int, int]], models: list[nn.Module], seconds: float,
           device: torch.device, bar: Any = None) -> None:
    """Check and write the trained ``models`` of ``chunk`` with their records; a model that failed its health check
    is not written, and the first failure is raised after the healthy ones are kept."""
    x_test, y_test = ds.test.x.to(device), ds.test.y.to(device)
    x_fit = y_fit = None  # a random-label model is checked on the permuted labels it was trained on
    if spec.control == "random-labels":
        fit = training_split(spec, ds)
        x_fit, y_fit = fit.x.to(device), fit.y.to(device)
    accs = [accuracy(model, x_test, y_test) for model in models]
    fits = [accuracy(model, x_fit, y_fit) for model in models] if x_fit is not None else [None] * len(models)
    failed: TrainingFailed | None = None
    for (init_seed, data_seed), model, acc, fit in zip(chunk, models, accs, fits):
        try:
            check_trained(model, acc, spec, (init_seed, data_seed), ds.num_classes, train_accuracy=fit)
        except TrainingFailed as err:  # the healthy models of the chunk are kept, the failed one is not
            failed = failed or err
            continue
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        extra = {} if spec.control is None else {"control": spec.control}
        if fit is not None:
            extra.update(train_accuracy=fit, label_seed=spec.label_seed)
        records.write_model(spec, model_name(init_seed, data_seed), state, {
            "init_seed": init_seed, "data_seed": data_seed, "test_accuracy": acc,
            "train_seconds": round(seconds, 3), "device": str(device), "torch": torch.__version__,
            "host": platform.node(), "job": os.environ.get("SLURM_JOB_ID", ""), **extra,
        })
        if bar is not None:
            bar.update(1)
            bar.set_postfix(acc=f"{acc:.3f}")
    if failed is not None:
        raise failed


def _groupable(spec: ZooSpec, ds: Dataset, device: torch.device) -> bool:
    if device.type != "cpu":
        return False
    with torch.device("meta"):
        return groupable(new_model(spec, ds, 0, for_loading=True))


def _is_done(spec: ZooSpec, init_seed: int, data_seed: int) -> bool:
    """Whether the model is stored: its record exists and its file's checksum matches (else a warning)."""
    entry = records.read_record(spec, model_name(init_seed, data_seed))
    if entry is None:
        return False
    path = spec.directory / entry["file"]
    if not path.is_file():
        return False
    if sha256_file(path) != entry["sha256"]:
        warnings.warn(f"checksum mismatch for {path}: retraining it", stacklevel=3)
        return False
    return True


class LoadedZoo(NamedTuple):
    models: list[nn.Module]
    manifest: dict[str, Any]

    def records(self, spec: ZooSpec) -> list[dict[str, Any]]:
        """The manifest entries of ``spec``'s models, in zoo order."""
        return [self.manifest["models"][model_name(i, d)] for i, d in spec.seed_pairs]


def load_zoo(spec: ZooSpec, device: torch.device | str | None = None) -> LoadedZoo:
    """Load the trained models of ``spec`` in eval mode (``torch.load(weights_only=True)``), checking sha256."""
    device = torch.device(device) if device is not None else settings.default_device()
    manifest = {"spec": spec.identity(), "models": {}}
    ds = load_dataset(spec.dataset) if spec.seed_pairs else None
    models = []
    for init_seed, data_seed in spec.seed_pairs:
        name = model_name(init_seed, data_seed)
        entry = records.read_record(spec, name)
        if entry is not None:
            manifest["models"][name] = entry
        path = spec.directory / (entry["file"] if entry else f"{name}.pt")
        if entry is None or not path.is_file():
            raise FileNotFoundError(f"model {name} of zoo {spec.key} is not trained: run train_zoo(spec) first")
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise ValueError(f"checksum mismatch for {path}: delete the file and run train_zoo(spec) to retrain it")
        model = new_model(spec, ds, init_seed, for_loading=True)  # type: ignore[arg-type]
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        models.append(inference_layout(model.to(device).eval()))
    return LoadedZoo(models, manifest)


def inference_layout(model: nn.Module) -> nn.Module:
    """On the CPU, a LeNet's convolution weights in channels-last memory (the same values): its forward pass takes
    half the time and its backward pass two thirds, which every attribution method pays many times
    (``benchmarks/bench_layout.py``). Returns ``model``, changed in place."""
    from .architectures import LeNet

    if isinstance(model, LeNet) and all(p.device.type == "cpu" for p in model.parameters()):
        model.to(memory_format=torch.channels_last)
    return model


def ensure_zoo(spec: ZooSpec, device: torch.device | str | None = None, progress: bool = True) -> LoadedZoo:
    """Train what is missing, then load the zoo."""
    train_zoo(spec, device=device, progress=progress)
    return load_zoo(spec, device=device)


def train_zoos(specs: list[ZooSpec], device: torch.device | str | None = None, progress: bool = True) -> None:
    """:func:`train_zoo` for several zoos, the CPU's LeNet groups of all of them trained side by side
    (:func:`helpers.zoo.cpu.train_groups`): a chapter's sibling zoos of 10 models are one group each, which
    :func:`train_zoo` would train one after the other on one core. Each model's weights are the same either way.

    Only the models missing when it starts, up to :data:`GROUP_SIZE` per zoo and under their locks, are trained
    jointly; :func:`train_zoo` then does whatever remains for each zoo (models other processes held, more models,
    other engines), as it would alone."""
    device = torch.device(device) if device is not None else settings.default_device()
    grouped = _engine(device, None) == "group"  # CPU LeNet groups; other engines: train_zoo alone
    datasets: dict[str, Dataset] = {}
    with contextlib.ExitStack() as held:
        work = []
        for spec in specs:
            todo = missing(spec)[:GROUP_SIZE] if grouped and spec.control != "untrained" else []
            if not todo:
                continue
            if spec.dataset not in datasets:
                datasets[spec.dataset] = load_dataset(spec.dataset)
            ds = datasets[spec.dataset]
            if not _groupable(spec, ds, device) or (spec.recipe.n_train or 0) > len(ds.train):
                continue  # train_zoo trains it (or names the fix)
            _prepare(spec)
            mine = _claim(spec, todo, held)
            if mine:
                work.append((spec, ds, mine))
        if len(work) > 1:
            t0 = time.perf_counter()
            trained = train_groups(work)
            seconds = (time.perf_counter() - t0) / sum(len(pairs) for _, _, pairs in work)
            failed: TrainingFailed | None = None
            for (spec, ds, pairs), models in zip(work, trained):
                try:
                    _store(spec, ds, pairs, models, seconds, device)
                except TrainingFailed as err:  # every zoo's healthy models are kept first
                    failed = failed or err
            if failed is not None:
                raise failed
    for spec in specs:
        train_zoo(spec, device=device, progress=progress)


def ensure_zoos(specs: list[ZooSpec], device: torch.device | str | None = None,
                progress: bool = True) -> list[LoadedZoo]:
    """:func:`train_zoos`, then load every zoo."""
    train_zoos(specs, device=device, progress=progress)
    return [load_zoo(spec, device=device) for spec in specs]
