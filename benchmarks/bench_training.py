"""Zoo training on the CPU: today's loop against channels-last, vmap over models (torch.func) and grouped networks.

Run: ``.venv/bin/python benchmarks/bench_training.py [--models 24] [--seconds 60] [--repeats 3]`` (about 2 minutes
on 2 cores; part of ``make benchmark``). Prints, in one run, the speed-up of each way over today's loop:

1. Steps: every way keeps its own models and optimizer; a round is one Adam step (batch 64) of every model on the
   same batches. The ways take turns round by round for ``--seconds``, so a change in the machine's load hits all of
   them alike; the medians of the round times are compared.
2. End to end: the real functions, ``train_model`` for one model after another (today's zoo loop) against
   ``train_group`` (what ``train_zoo`` now runs on the CPU), on the default recipe cut to 640 images (10 steps),
   taking turns ``--repeats`` times; also the largest gap between the two paths' logits on 100 test images.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from helpers.data import load_dataset
from helpers.zoo.stacking import meta_copy
from helpers.zoo.cpu import LeNetGroup, train_group
from helpers.zoo import Recipe, ZooSpec, logits
from helpers.zoo.training import new_model, train_model

Step = Callable[[torch.Tensor], None]  # one optimizer step of every model; argument: (M, B) batch indices


def sequential(models: list[torch.nn.Module], x: torch.Tensor, y: torch.Tensor, channels_last: bool) -> Step:
    """Today's loop (``train_model``): one model after another, each with its own Adam."""
    if channels_last:
        models = [m.to(memory_format=torch.channels_last) for m in models]
        x = x.contiguous(memory_format=torch.channels_last)
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in models]

    def step(idx: torch.Tensor) -> None:
        for k, (m, opt) in enumerate(zip(models, opts)):
            loss = F.cross_entropy(m(x[idx[k]]), y[idx[k]])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return step


def vmapped(models: list[torch.nn.Module], x: torch.Tensor, y: torch.Tensor) -> Step:
    """``functional_call`` on a meta copy, vmapped over stacked weights; one Adam on the stacked leaves."""
    params, buffers = torch.func.stack_module_state(models)
    base = meta_copy(models[0])
    opt = torch.optim.Adam(list(params.values()), lr=1e-3)
    losses = vmap(lambda p, b, xb, yb: F.cross_entropy(functional_call(base, (p, b), (xb,)), yb))

    def step(idx: torch.Tensor) -> None:
        loss = losses(params, buffers, x[idx], y[idx]).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def grouped(models: list[torch.nn.Module], x: torch.Tensor, y: torch.Tensor, workers: int) -> Step:
    """``LeNetGroup`` s (grouped convolutions in channels-last memory); with ``workers`` > 1 as ``train_group`` runs
    them: one group per Python thread, each with one intra-op thread."""
    bounds = [len(models) * k // workers for k in range(workers + 1)]
    groups = [LeNetGroup(models[lo:hi]) for lo, hi in zip(bounds, bounds[1:])]
    opts = [torch.optim.Adam(g.parameters(), lr=1e-3) for g in groups]
    pool = ThreadPoolExecutor(workers) if workers > 1 else None

    def one(k: int, idx: torch.Tensor) -> None:
        out = groups[k](x[idx])
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y[idx].reshape(-1), reduction="sum") / idx.shape[1]
        opts[k].zero_grad(set_to_none=True)
        loss.backward()
        opts[k].step()

    def step(idx: torch.Tensor) -> None:
        if pool is None:
            return one(0, idx)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            list(pool.map(lambda k: one(k, idx[bounds[k]:bounds[k + 1]]), range(workers)))
        finally:
            torch.set_num_threads(threads)
    return step


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="lenet", choices=["lenet", "lenet-wide", "lenet-deep"])
    p.add_argument("--models", type=int, default=24)
    p.add_argument("--seconds", type=float, default=60.0, help="time for part 1 (steps, taking turns)")
    p.add_argument("--repeats", type=int, default=3, help="turns of part 2 (end to end)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ds = load_dataset("mnist-5k")
    x, y = ds.train.x, ds.train.y
    spec = ZooSpec(a.arch, "mnist-5k", Recipe(epochs=6), a.models)
    fresh = lambda: [new_model(spec, ds, i) for i in range(a.models)]  # noqa: E731
    print(f"{a.arch} × {a.models} on mnist-5k, batch 64, Adam 1e-3, CPU, {torch.get_num_threads()} threads "
          f"(torch {torch.__version__}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")

    ways: dict[str, Step] = {
        "today: train_model's loop, one model at a time": sequential(fresh(), x, y, channels_last=False),
        "channels-last, one model at a time": sequential(fresh(), x, y, channels_last=True),
        "vmap over stacked models (torch.func)": vmapped(fresh(), x, y),
        "one LeNetGroup of all models (channels-last)": grouped(fresh(), x, y, workers=1),
        f"adopted: {a.threads} LeNetGroups in {a.threads} threads (train_group)": grouped(fresh(), x, y, a.threads),
    }
    gen = torch.Generator().manual_seed(0)
    batch = lambda: torch.randint(0, len(y), (a.models, 64), generator=gen)  # noqa: E731
    for step in ways.values():
        step(batch())  # warm-up
    times: dict[str, list[float]] = {name: [] for name in ways}
    end = time.perf_counter() + a.seconds
    while time.perf_counter() < end or min(map(len, times.values())) < 3:
        idx = batch()
        for name, step in ways.items():
            t0 = time.perf_counter()
            step(idx)
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times[next(iter(ways))])
    print(f"1. one Adam step of all {a.models} models, median of {len(times[next(iter(ways))])} rounds taking turns")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<58} {med * 1000:8.1f} ms   ×{base / med:5.2f}")

    recipe = Recipe(epochs=1, n_train=640)
    pairs = [(i, i) for i in range(a.models)]
    short = ZooSpec(a.arch, "mnist-5k", recipe, a.models)
    e2e: dict[str, list[float]] = {"train_model, one model after another": [], "train_group": []}
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        alone = [train_model(short, ds, i, d) for i, d in pairs]
        e2e["train_model, one model after another"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        together = train_group(short, ds, pairs)
        e2e["train_group"].append(time.perf_counter() - t0)
    gap = max((logits(g, ds.test.x[:100]) - logits(m, ds.test.x[:100])).abs().max().item()
              for g, m in zip(together, alone))
    print(f"2. end to end: {a.models} models × 10 steps (640 images, 1 epoch), median of {a.repeats} turns; "
          f"largest logit gap between the paths {gap:.1e}")
    base = statistics.median(e2e["train_model, one model after another"])
    for name, ts in e2e.items():
        med = statistics.median(ts)
        print(f"  {name:<58} {med:8.2f} s    ×{base / med:5.2f}")
    print(f"  (load average at the end {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
