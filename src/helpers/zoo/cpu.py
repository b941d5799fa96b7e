"""Training LeNets on the CPU as grouped networks: :class:`LeNetGroup` holds M LeNets as grouped convolutions
and batched matrix products, each model with its own initial weights, batch order and optimizer state.
"""
from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
import torch
import torch.nn.functional as F
from torch import nn

from ..data.datasets import Dataset
from .architectures import LeNet
from .health import LossWatch
from .spec import Recipe, ZooSpec
from .training import _crop_flip, _make_optimizer, new_model, step, training_split


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


def _fit_group(group: LeNetGroup, gens: list[torch.Generator], r: Recipe, x: torch.Tensor, y: torch.Tensor,
               stop: threading.Event, watch: LossWatch) -> None:
    """The loop of :func:`train_model` for a :class:`LeNetGroup`: model k draws from ``gens[k]`` alone."""
    steps_per_epoch = -(-len(y) // r.batch_size)
    opt, sched = _make_optimizer(r, group.parameters(), r.epochs * steps_per_epoch)
    group.train()
    for epoch in range(r.epochs):
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
            step(loss, opt, sched, watch, epoch, i // r.batch_size)


SLOTS = 12  # models per LeNetGroup: fixed, like each model's slot, so its group does not change its weights


def slot_of(init_seed: int, data_seed: int, slots: int = SLOTS) -> int:
    """A model's place in its :class:`LeNetGroup`, fixed by its seeds: consecutive seeds (whichever of the two
    varies) take consecutive slots, so the default zoo's models 0–11 and 12–23 fill two groups in order."""
    return max(init_seed, data_seed) % slots


def slot_groups(seed_pairs: list[tuple[int, int]], slots: int = SLOTS) -> list[list[tuple[int, int]]]:
    """``seed_pairs`` packed, in order, into groups in which no two models share a slot (:func:`slot_of`)."""
    groups: list[dict[int, tuple[int, int]]] = []
    for pair in seed_pairs:
        k = slot_of(*pair, slots=slots)
        free = next((g for g in groups if k not in g), None)
        if free is None:
            free = {}
            groups.append(free)
        free[k] = pair
    return [list(g.values()) for g in groups]


def train_group(spec: ZooSpec, ds: Dataset, seed_pairs: list[tuple[int, int]],
                workers: int | None = None, slots: int = SLOTS) -> list[nn.Module]:
    """Train the models of ``seed_pairs`` (all :func:`groupable`) together on the CPU; returns them in that order.

    Each model starts from its own ``init_seed`` weights and draws its batch order (and augmentation) from its own
    ``data_seed`` generator in the same sequence as :func:`train_model`; the loss is the sum of the per-model mean
    losses, so each model gets its own gradient, and Adam and SGD act element by element, so model k follows the
    trajectory of ``train_model(spec, ds, *seed_pairs[k])`` up to float rounding (tests/zoo/test_store.py).

    The models are trained in :class:`LeNetGroup` s of exactly ``slots`` models, each model in the slot its seeds
    fix (:func:`slot_groups`; free slots hold copies of another model, whose results are dropped), each group with one
    intra-op thread, up to ``workers`` (default: ``torch.get_num_threads()``) groups at once in Python threads (the
    thread setting is restored afterwards). A model's arithmetic depends on its group's shape, its slot and the thread
    count, not on the other models' weights, so its weights are bit-for-bit the same whichever models share its
    group, however a zoo is split into jobs and whenever a run was cut off (tests/zoo/test_cpu.py). For these small
    networks two cores do more as two single-threaded loops than as one loop whose every operation is split in two
    (benchmarks/bench_training.py). :func:`train_groups` trains the models of several zoos at once in the same way.
    """
    return train_groups([(spec, ds, list(seed_pairs))], workers, slots)[0]


def train_groups(requests: list[tuple[ZooSpec, Dataset, list[tuple[int, int]]]], workers: int | None = None,
                 slots: int = SLOTS) -> list[list[nn.Module]]:
    """:func:`train_group` for several zoos at once (e.g. a chapter's sibling zoos of 10 models, one group each):
    every zoo's groups go to one pool of single-threaded workers, so that two cores train two zoos' groups side by
    side instead of one after the other. Each group is built and trained exactly as :func:`train_group` would, so
    every model's weights are bit-for-bit the same as when its zoo is trained alone. Returns, per request, its models
    in the order of its seed pairs."""
    jobs = []  # (group, generators, watch, recipe, x, y) of every group of every request
    layout = []  # per request: (groups' index range, its parts)
    for spec, ds, seed_pairs in requests:
        train = training_split(spec, ds)
        parts = slot_groups(list(seed_pairs), slots)
        first = len(jobs)
        for part in parts:
            by_slot = {slot_of(*pair, slots=slots): pair for pair in part}
            padded = [by_slot.get(k, part[0]) for k in range(slots)]
            # built here, in order: new_model seeds the global RNG, which is not thread-safe
            group = LeNetGroup([new_model(spec, ds, i) for i, _ in padded])
            gens = [torch.Generator().manual_seed(d) for _, d in padded]
            jobs.append((group, gens, LossWatch(spec, padded, torch.device("cpu")), spec.recipe, train.x, train.y))
        layout.append((first, parts))
    n_workers = max(1, min(len(jobs), torch.get_num_threads() if workers is None else workers))
    stop = threading.Event()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # every group single-threaded (the workers' own setting is initialised from this one)
    try:
        if n_workers == 1:
            for g, gs, w, r, x, y in jobs:
                _fit_group(g, gs, r, x, y, stop, w)
        else:
            with ThreadPoolExecutor(n_workers) as pool:
                futures = [pool.submit(_fit_group, g, gs, r, x, y, stop, w) for g, gs, w, r, x, y in jobs]
                try:
                    for future in futures:
                        future.result()
                except BaseException:
                    stop.set()  # an error or a KeyboardInterrupt: let the other workers stop at their next step
                    raise
    finally:
        torch.set_num_threads(threads)
    out = []
    for (spec, _, seed_pairs), (first, parts) in zip(requests, layout):
        trained = {pair: jobs[first + j][0].write_back()[slot_of(*pair, slots=slots)]
                   for j, part in enumerate(parts) for pair in part}
        out.append([trained[pair].eval() for pair in seed_pairs])
    return out
