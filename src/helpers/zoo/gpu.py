"""The GPU recipe: several seeded models trained at once with the data resident on the device.

The zoo's models differ only in their seeds (Woerl et al., CVPR 2023), so a GPU can train a *stack* of them as one
network: their weights are stacked along a new first axis and one forward pass runs all of them with
``torch.func.vmap(functional_call(...))`` (the model ensembling recipe of the torch.func tutorials); the loss is the sum
of the per-model mean losses, so model k's gradient is that of its own loss, and SGD and Adam act element by element,
so each model follows its own trajectory. A stack of one runs the module itself (dense cuDNN kernels, channels-last).

Around it, the CIFAR-10 speed-run recipe (Page 2018, "How to train your ResNet"; Jordan 2024, airbench): the training
split uploaded once; the random crop (4-pixel padding) and horizontal flip applied on the device; bfloat16 autocast and
channels-last memory on CUDA (float16 with loss scaling on GPUs
without native bfloat16, such as Colab's T4; fp32 on a CPU); large batches with a one-cycle learning rate (Smith & Topin 2019) and
label smoothing (``Recipe(schedule="onecycle")``); optionally ``torch.compile``.

Each model keeps its own initial weights (its init seed) and draws its batch order and augmentation from its own
data-seed generator in the same sequence as :func:`helpers.zoo.train_model`, so a model trained here equals the one
trained alone up to float rounding (tests/test_gpu_recipe.py) and both share the zoo's cache.
"""
from __future__ import annotations

from typing import Callable, Sequence
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ..data.datasets import Dataset
from .health import LossWatch
from .spec import ZooSpec
from .stacking import meta_copy
from .training import _make_optimizer, crop_flip, crop_flip_draws, new_model, training_split


# models per stack on a GPU, by architecture (small networks gain most from stacking; large ones fill the GPU alone);
# untested guesses until benchmarks/gpu_zoo.py has been run on a GPU: pass ``group=`` to train_zoo to override
STACK = {"cifar-fast": 8, "lenet": 25, "lenet-wide": 25, "lenet-deep": 25, "convnet": 10}


COMPILE = False  # default of train_models' ``compile`` (benchmarks/gpu_zoo.py --compile sets it)


def stack_size(arch: str) -> int:
    """How many models of ``arch`` :func:`train_models` trains at once by default (one for large networks)."""
    return STACK.get(arch, 1)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast type for an ``amp`` recipe on ``device``: bfloat16 where the GPU has it natively (Ampere and
    later), float16 on older GPUs (needs loss scaling), ``None`` (fp32) on a CPU."""
    if device.type != "cuda":
        return None
    with torch.cuda.device(device):
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


def epoch_draws(gen: torch.Generator, n: int, batch_size: int, augment: str) -> list[torch.Tensor]:
    """One epoch of one model's random numbers, in the order :func:`helpers.zoo.train_model` draws them: the
    permutation of the ``n`` training images, then for each batch the crop offsets and flips (if ``augment``).
    Returns ``[order]`` or ``[order, rows, cols, flips]``, each of length ``n`` (position i: the i-th image drawn)."""
    order = torch.randperm(n, generator=gen)
    if augment != "crop-flip":
        return [order]
    parts = [crop_flip_draws(min(batch_size, n - i), gen) for i in range(0, n, batch_size)]
    return [order, *(torch.cat(p) for p in zip(*parts))]


def _stacked_forward(models: Sequence[nn.Module]) -> tuple[Callable[[torch.Tensor], torch.Tensor],
                                                          dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A function of (M, B, C, H, W) images → (M, B, classes) logits over the stacked weights of ``models``, and the
    stacked parameters (leaves to optimize) and buffers (BatchNorm statistics, updated in place)."""
    params, buffers = stack_module_state(list(models))
    base = meta_copy(models[0])

    def one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (p, b), (x,))

    batched = vmap(one)
    return (lambda x: batched(params, buffers, x)), params, buffers


@torch.no_grad()
def _write_back(models: Sequence[nn.Module], params: dict[str, torch.Tensor],
                buffers: dict[str, torch.Tensor]) -> None:
    for k, model in enumerate(models):
        for name, stacked in params.items():
            model.get_parameter(name).copy_(stacked[k])
        for name, stacked in buffers.items():
            model.get_buffer(name).copy_(stacked[k])


def train_models(spec: ZooSpec, ds: Dataset, seed_pairs: Sequence[tuple[int, int]],
                 device: torch.device | str = "cpu", compile: bool | None = None) -> list[nn.Module]:
    """Train the models of ``seed_pairs`` (init seed, data seed) together with ``spec``'s recipe; returns them in
    eval mode, in that order, on ``device``. One pair: the module itself; several: one vmapped stack.
    ``compile``: run the forward pass through ``torch.compile`` (default :data:`COMPILE`)."""
    compile = COMPILE if compile is None else compile
    r = spec.recipe
    device = torch.device(device)
    if not seed_pairs:
        raise ValueError("no seed pairs given: pass one (init seed, data seed) pair per model")
    train = training_split(spec, ds)
    x, y = train.x.to(device), train.y.to(device)  # resident: uploaded once
    n, m = len(y), len(seed_pairs)
    dtype = autocast_dtype(device) if r.amp else None
    amp = dtype is not None
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    models = [new_model(spec, ds, i).to(device).train() for i, _ in seed_pairs]
    gens = [torch.Generator().manual_seed(d) for _, d in seed_pairs]
    if m == 1:
        if amp:
            models[0].to(memory_format=torch.channels_last)
        model = torch.compile(models[0]) if compile else models[0]
        forward: Callable[[torch.Tensor], torch.Tensor] = lambda xb: model(xb[0])[None]
        params: list[torch.Tensor] = list(models[0].parameters())
    else:
        forward, stacked, buffers = _stacked_forward(models)
        forward = torch.compile(forward) if compile else forward
        params = list(stacked.values())
    opt, sched = _make_optimizer(r, params, r.epochs * -(-n // r.batch_size))
    watch = LossWatch(spec, seed_pairs, device)
    for epoch in range(r.epochs):
        draws = [torch.stack(t).to(device) for t in zip(*(epoch_draws(g, n, r.batch_size, r.augment) for g in gens))]
        for i in range(0, n, r.batch_size):
            idx = draws[0][:, i:i + r.batch_size]  # (M, B): model k's batch in row k
            b = idx.shape[1]
            xb = x[idx.reshape(-1)]
            if r.augment == "crop-flip":
                xb = crop_flip(xb, *(d[:, i:i + r.batch_size].reshape(-1) for d in draws[1:]))
            elif amp:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=dtype, enabled=amp):
                out = forward(xb.unflatten(0, (m, b)))
            # mean over all M·B images × M = the sum of the per-model mean losses (with one model: its mean loss)
            loss = F.cross_entropy(out.flatten(0, 1).float(), y[idx.reshape(-1)],
                                   label_smoothing=r.label_smoothing) * m
            watch.step(loss, epoch, i // r.batch_size)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)  # with float16: skipped where the scaled gradients overflowed
            scaler.update()
            if sched is not None:
                sched.step()
        watch.end_epoch(epoch)
    if m > 1:
        _write_back(models, stacked, buffers)
    return [mod.to(memory_format=torch.contiguous_format).eval() for mod in models]
