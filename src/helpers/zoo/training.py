"""Training one model: its initial weights from the init seed, batch order and augmentation from the data-order
seed, the optimizer and schedule of the recipe, and atomic, checksummed writes of the result.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable
import torch
import torch.nn.functional as F
from torch import nn

from ..data.datasets import Dataset, Split, subsample
from ..data.files import atomic_write, sha256_file  # noqa: F401  (sha256_file: used by the store)
from .architectures import PRETRAINED, build_model
from .health import LossWatch
from .spec import ONECYCLE_WARMUP, Recipe, ZooSpec


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """``write(file)`` into memory, then :func:`helpers.data.files.atomic_write` it to ``path`` (whole or not at all,
    mode 0644; a full disk or a read-only folder raises one line that names the fix)."""
    buf = io.BytesIO()
    write(buf)
    atomic_write(path, buf.getvalue())


def new_model(spec: ZooSpec, ds: Dataset, init_seed: int, for_loading: bool = False) -> nn.Module:
    """An untrained model of the zoo's architecture with the weights fixed by ``init_seed``.

    ``for_loading``: the weights are about to be replaced by a checkpoint, so pretrained weights are not read."""
    kwargs = dict(spec.arch_kwargs)
    if for_loading and spec.arch in PRETRAINED:
        kwargs["pretrained"] = False
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
        torch.manual_seed(init_seed)
        return build_model(spec.arch, ds.in_channels, ds.num_classes, image_size=ds.image_shape[-1], **kwargs)


def random_labels(split: Split, label_seed: int) -> Split:
    """``split`` with its labels permuted with ``label_seed`` (Adebayo et al. 2018's data randomization: the same
    images and class frequencies, labels unrelated to the images)."""
    gen = torch.Generator().manual_seed(int(label_seed))
    return Split(x=split.x, y=split.y[torch.randperm(len(split), generator=gen)])


def training_split(spec: ZooSpec, ds: Dataset) -> Split:
    """The images and labels every model of ``spec`` trains on: the recipe's subset of the training split (the
    trained zoo's images), its labels permuted with ``spec.label_seed`` for a ``"random-labels"`` control."""
    train = subsample(ds.train, spec.recipe.n_train, seed=1)
    return random_labels(train, spec.label_seed) if spec.control == "random-labels" else train


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


def train_model(spec: ZooSpec, ds: Dataset, init_seed: int, data_seed: int,
                device: torch.device | str = "cpu") -> nn.Module:
    """Train one model of the zoo. On the CPU the result is bit-for-bit reproducible for fixed seeds."""
    r = spec.recipe
    device = torch.device(device)
    train = training_split(spec, ds)
    x, y = train.x.to(device), train.y.to(device)
    model = new_model(spec, ds, init_seed).to(device)
    amp = r.amp and device.type == "cuda"
    if amp:
        model = model.to(memory_format=torch.channels_last)
    steps_per_epoch = -(-len(y) // r.batch_size)
    opt, sched = _make_optimizer(r, model.parameters(), r.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(data_seed)
    watch = LossWatch(spec, [(init_seed, data_seed)], device)
    model.train()
    for epoch in range(r.epochs):
        order = torch.randperm(len(y), generator=gen).to(device)
        for i in range(0, len(y), r.batch_size):
            idx = order[i:i + r.batch_size]
            xb = x[idx]
            if r.augment == "crop-flip":
                xb = _crop_flip(xb, gen)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(xb), y[idx], label_smoothing=r.label_smoothing)
            step(loss, opt, sched, watch, epoch, i // r.batch_size)
        watch.end_epoch(epoch)
    return model.eval()


def step(loss: torch.Tensor, opt: torch.optim.Optimizer, sched: Any, watch: LossWatch, epoch: int,
         batch: int) -> None:
    """One optimizer step on ``loss``, after its health check (a non-finite loss stops training before it lands
    in the weights)."""
    watch.step(loss, epoch, batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if sched is not None:
        sched.step()


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
