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

import copy
import hashlib
import json
import os
import platform
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import settings
from .data import Dataset, load_dataset, subsample
from .models import PRETRAINED, LeNet, build_model

FORMAT_VERSION = 1
# fields added to Recipe after zoos were cached, with the value that keeps them out of the cache key
LATER_FIELDS: dict[str, Any] = {"weight_decay": 0.0, "amp": False, "label_smoothing": 0.0}
# the speed-run recipe's defaults for schedule="onecycle" (Page 2018; Jordan 2024): label smoothing, weight decay and
# bfloat16 on CUDA; an explicit value in the Recipe wins
ONECYCLE_DEFAULTS: dict[str, Any] = {"weight_decay": 5e-4, "amp": True, "label_smoothing": 0.2}
ONECYCLE_WARMUP = 0.25  # fraction of the steps spent raising the learning rate (then linear decay)
GROUP_SIZE = 24  # LeNets trained together on the CPU; an interrupted run loses at most one group


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


@dataclass(frozen=True)
class ZooSpec:
    """A zoo: ``n_models`` models of one architecture on one dataset, model i trained with
    ``init_seeds[i]`` and ``data_seeds[i]`` (both default to ``0 … n_models-1``)."""

    arch: str
    dataset: str
    recipe: Recipe = field(default_factory=Recipe)
    n_models: int = 16
    init_seeds: tuple[int, ...] | None = None
    data_seeds: tuple[int, ...] | None = None
    arch_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
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
        for name in ("amp", "label_smoothing"):
            if recipe[name] == LATER_FIELDS[name]:
                del recipe[name]  # fields added later stay out of the key at their default: old caches stay valid
        return {"format": FORMAT_VERSION, "arch": self.arch, "arch_kwargs": dict(self.arch_kwargs),
                "dataset": self.dataset, "recipe": recipe}

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
                       self.arch_kwargs)


def model_name(init_seed: int, data_seed: int) -> str:
    return f"i{init_seed}_d{data_seed}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_manifest(spec: ZooSpec) -> dict[str, Any]:
    path = spec.directory / "manifest.json"
    if path.is_file():
        return json.loads(path.read_text())
    return {"spec": spec.identity(), "models": {}}


def _write_manifest(spec: ZooSpec, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True).encode()
    _atomic_write(spec.directory / "manifest.json", lambda f: f.write(text))


def new_model(spec: ZooSpec, ds: Dataset, init_seed: int, for_loading: bool = False) -> nn.Module:
    """An untrained model of the zoo's architecture with the weights fixed by ``init_seed``.

    ``for_loading``: the weights are about to be replaced by a checkpoint, so pretrained weights are not read."""
    kwargs = dict(spec.arch_kwargs)
    if for_loading and spec.arch in PRETRAINED:
        kwargs["pretrained"] = False
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
        torch.manual_seed(init_seed)
        return build_model(spec.arch, ds.in_channels, ds.num_classes, image_size=ds.image_shape[-1], **kwargs)


def crop_flip_draws(b: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The random row and column offsets (0…8) and flips of :func:`crop_flip` for ``b`` images, drawn from ``gen``."""
    di = torch.randint(0, 9, (b,), generator=gen)
    dj = torch.randint(0, 9, (b,), generator=gen)
    return di, dj, torch.rand(b, generator=gen) < 0.5


def _crop_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random 4-pixel-padded crop and horizontal flip, batched, drawn from ``gen``."""
    return crop_flip(x, *(t.to(x.device) for t in crop_flip_draws(x.shape[0], gen)))


def crop_flip(x: torch.Tensor, di: torch.Tensor, dj: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Crop image k of the 4-pixel zero-padded batch ``x`` at row ``di[k]``, column ``dj[k]`` (4, 4: no shift) and
    mirror it left-right where ``flip[k]``; done on ``x``'s device, the result is in channels-last memory."""
    b, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    rows = di[:, None] + torch.arange(h, device=x.device)
    cols = dj[:, None] + torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    bidx = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[bidx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


@torch.no_grad()
def logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The model's logits for every image of ``x``, ``batch_size`` images at a time, without autograd."""
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def zoo_logits(models: Sequence[nn.Module], x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Every model's logits for every image of ``x``: (M, N, K), without autograd."""
    if len(models) == 0:
        raise ValueError("no models given: pass a non-empty list (e.g. load_zoo(spec).models)")
    return torch.stack([logits(m, x, batch_size) for m in models])


def ranked_classes(models: Sequence[nn.Module], x: torch.Tensor, first: torch.Tensor, n: int) -> torch.Tensor:
    """(N, n) classes per image: ``first[i]`` (e.g. the true class), then the others by the zoo's mean logit, highest
    first ("runner-up", "third", …)."""
    mean = zoo_logits(models, x).mean(0)
    return mean.scatter(1, first.view(-1, 1).to(mean.device), torch.inf).argsort(1, descending=True)[:, :n]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    model.eval()
    return (logits(model, x, batch_size).argmax(1) == y).sum().item() / max(1, len(y))


def train_model(spec: ZooSpec, ds: Dataset, init_seed: int, data_seed: int,
                device: torch.device | str = "cpu") -> nn.Module:
    """Train one model of the zoo. On the CPU the result is bit-for-bit reproducible for fixed seeds."""
    r = spec.recipe
    device = torch.device(device)
    train = subsample(ds.train, r.n_train, seed=1)
    x, y = train.x.to(device), train.y.to(device)
    model = new_model(spec, ds, init_seed).to(device)
    amp = r.amp and device.type == "cuda"
    if amp:
        model = model.to(memory_format=torch.channels_last)
    steps_per_epoch = -(-len(y) // r.batch_size)
    opt, sched = _make_optimizer(r, model.parameters(), r.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(data_seed)
    model.train()
    for _ in range(r.epochs):
        order = torch.randperm(len(y), generator=gen).to(device)
        for i in range(0, len(y), r.batch_size):
            idx = order[i:i + r.batch_size]
            xb = x[idx]
            if r.augment == "crop-flip":
                xb = _crop_flip(xb, gen)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(xb), y[idx], label_smoothing=r.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
    return model.eval()


class _GroupedConv2d(nn.Module):
    """``M`` same-shape convolutions as one convolution with ``groups`` × M (model-major channels), weights in
    channels-last memory (faster on the CPU for these small LeNets: benchmarks/bench_training.py)."""

    def __init__(self, convs: list[nn.Conv2d]) -> None:
        super().__init__()
        c = convs[0]
        self.stride, self.padding, self.dilation, self.groups = c.stride, c.padding, c.dilation, c.groups * len(convs)
        weight = torch.cat([m.weight.detach() for m in convs])
        self.weight = nn.Parameter(weight.contiguous(memory_format=torch.channels_last))
        self.bias = nn.Parameter(torch.cat([m.bias.detach() for m in convs])) if c.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class _StackedLinear(nn.Module):
    """``M`` same-shape linear layers: input (B, M·in) → output (B, M·out), one batched matrix product."""

    def __init__(self, linears: list[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in linears]))  # (M, out, in)
        has_bias = linears[0].bias is not None
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in linears])) if has_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, b = self.weight.shape[0], x.shape[0]
        h = x.reshape(b, m, -1).transpose(0, 1)  # (M, B, in)
        out = (torch.baddbmm(self.bias[:, None, :], h, self.weight.transpose(1, 2)) if self.bias is not None
               else torch.bmm(h, self.weight.transpose(1, 2)))
        return out.transpose(0, 1).reshape(b, -1)


def groupable(model: nn.Module) -> bool:
    """Whether :class:`LeNetGroup` can train ``model`` with others: a LeNet (only convolutions and linear layers
    hold weights, no buffers, every other operation acts per channel), with zero-padded convolutions."""
    return (isinstance(model, LeNet) and not list(model.buffers())
            and all(m.padding_mode == "zeros" for m in model.modules() if isinstance(m, nn.Conv2d)))


class LeNetGroup(nn.Module):
    """``M`` LeNets of one shape run as one network, so that one optimizer step trains all of them.

    A copy of the first model whose convolutions are grouped (model k owns channel block k) and whose linear layers
    are stacked, so ``LeNet.forward`` itself runs on a (B, M·C, H, W) input and returns (B, M·classes): channels of
    different models never mix. :meth:`write_back` copies the trained weights into the original models."""

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        if not models or not all(groupable(m) for m in models):
            raise ValueError("LeNetGroup takes one or more LeNets (see zoo.groupable)")
        self.models = models
        self.net = copy.deepcopy(models[0])  # its convolutions and linear layers are replaced below
        for name, module in models[0].named_modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                parts = [m.get_submodule(name) for m in models]
                grouped = _GroupedConv2d(parts) if isinstance(module, nn.Conv2d) else _StackedLinear(parts)
                parent, _, leaf = name.rpartition(".")
                setattr(self.net.get_submodule(parent) if parent else self.net, leaf, grouped)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(M, B, C, H, W) images, model k's batch at index k → (M, B, classes) logits."""
        m, b = x.shape[:2]
        grouped = x.permute(1, 0, 2, 3, 4).reshape(b, -1, *x.shape[3:])  # (B, M·C, H, W), model-major channels
        out = self.net(grouped.contiguous(memory_format=torch.channels_last))
        return out.reshape(b, m, -1).transpose(0, 1)

    @torch.no_grad()
    def write_back(self) -> list[nn.Module]:
        """Copy each model's block of the grouped weights into that model; returns the models."""
        for name, module in self.net.named_modules():
            if isinstance(module, (_GroupedConv2d, _StackedLinear)):
                for k, model in enumerate(self.models):
                    target = model.get_submodule(name)
                    for pname in ("weight", "bias"):
                        grouped = getattr(module, pname)
                        if grouped is None:
                            continue
                        part = (grouped.chunk(len(self.models))[k] if isinstance(module, _GroupedConv2d)
                                else grouped[k])
                        getattr(target, pname).copy_(part)
        return self.models


def _make_optimizer(r: Recipe, params: Any, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    if r.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=r.lr, weight_decay=r.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=r.lr, momentum=0.9, nesterov=True, weight_decay=r.weight_decay)
    sched: Any = None
    if r.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    elif r.schedule == "onecycle" and steps >= 3:  # Smith & Topin 2019: up to lr, then linearly down (per step)
        warmup = min(0.5, max(ONECYCLE_WARMUP, 2 / steps))  # at least a step up (a shorter run keeps lr constant)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r.lr, total_steps=steps, pct_start=warmup,
                                                    anneal_strategy="linear", cycle_momentum=False)
    return opt, sched


def _fit_group(group: LeNetGroup, gens: list[torch.Generator], r: Recipe, x: torch.Tensor, y: torch.Tensor,
               stop: threading.Event) -> None:
    """The loop of :func:`train_model` for a :class:`LeNetGroup`: model k draws from ``gens[k]`` alone."""
    steps_per_epoch = -(-len(y) // r.batch_size)
    opt, sched = _make_optimizer(r, group.parameters(), r.epochs * steps_per_epoch)
    group.train()
    for _ in range(r.epochs):
        order = torch.stack([torch.randperm(len(y), generator=g) for g in gens])  # (M, N)
        for i in range(0, len(y), r.batch_size):
            if stop.is_set():
                return
            idx = order[:, i:i + r.batch_size]
            xb = x[idx]  # (M, B, C, H, W)
            if r.augment == "crop-flip":
                xb = torch.stack([_crop_flip(xb[k], g) for k, g in enumerate(gens)])
            out = group(xb)  # (M, B, classes)
            # the sum over models of each model's mean loss: model k's gradient is that of its own loss
            loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y[idx].reshape(-1), reduction="sum",
                                   label_smoothing=r.label_smoothing) / idx.shape[1]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()


def train_group(spec: ZooSpec, ds: Dataset, seed_pairs: list[tuple[int, int]],
                workers: int | None = None) -> list[nn.Module]:
    """Train the models of ``seed_pairs`` (all :func:`groupable`) together on the CPU; returns them in that order.

    Each model starts from its own ``init_seed`` weights and draws its batch order (and augmentation) from its own
    ``data_seed`` generator in the same sequence as :func:`train_model`; the loss is the sum of the per-model mean
    losses, so each model gets its own gradient, and Adam and SGD act element by element, so model k follows the
    trajectory of ``train_model(spec, ds, *seed_pairs[k])`` up to float rounding (tests/test_zoo.py).

    The models are split into ``workers`` (default: ``torch.get_num_threads()``) :class:`LeNetGroup` s, each trained
    in its own Python thread with one intra-op thread (the thread setting is restored afterwards): for these small
    networks, two cores do more as two single-threaded loops than as one loop whose every operation is split in
    two, and a single-threaded loop does not stall when another process takes a core (benchmarks/bench_training.py).
    Bit-for-bit reproducible for the same seeds, ``workers`` and group; otherwise equal within float tolerance.
    """
    r = spec.recipe
    train = subsample(ds.train, r.n_train, seed=1)
    x, y = train.x, train.y
    n_workers = max(1, min(len(seed_pairs), torch.get_num_threads() if workers is None else workers))
    bounds = [len(seed_pairs) * k // n_workers for k in range(n_workers + 1)]
    parts = [seed_pairs[lo:hi] for lo, hi in zip(bounds, bounds[1:])]
    # built here, in order: new_model seeds the global RNG, which is not thread-safe
    groups = [LeNetGroup([new_model(spec, ds, i) for i, _ in part]) for part in parts]
    gens = [[torch.Generator().manual_seed(d) for _, d in part] for part in parts]
    stop = threading.Event()
    if n_workers == 1:
        _fit_group(groups[0], gens[0], r, x, y, stop)
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the workers' own setting is initialised from this one
        try:
            with ThreadPoolExecutor(n_workers) as pool:
                futures = [pool.submit(_fit_group, g, gs, r, x, y, stop) for g, gs in zip(groups, gens)]
                try:
                    for future in futures:
                        future.result()
                except BaseException:
                    stop.set()  # an error or a KeyboardInterrupt: let the other workers stop at their next step
                    raise
        finally:
            torch.set_num_threads(threads)
    return [m.eval() for g in groups for m in g.write_back()]


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
        from . import gpu_train

        return max(1, gpu_train.stack_size(spec.arch) if group is None else group)
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
    x_test, y_test = ds.test.x.to(device), ds.test.y.to(device)
    from tqdm.auto import tqdm

    size = _group_size(spec, ds, device, group, engine)
    bar = tqdm(total=len(todo), desc=f"zoo {spec.arch}/{spec.dataset}", unit="model", disable=not progress)
    for start in range(0, len(todo), size):
        chunk = todo[start:start + size]
        t0 = time.perf_counter()
        if engine == "gpu":
            from .gpu_train import train_models

            models = train_models(spec, ds, chunk, device)
        elif len(chunk) > 1:
            models = train_group(spec, ds, chunk)
        else:
            models = [train_model(spec, ds, chunk[0][0], chunk[0][1], device)]
        seconds = (time.perf_counter() - t0) / len(chunk)
        for (init_seed, data_seed), model in zip(chunk, models):
            acc = accuracy(model, x_test, y_test)
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
