"""One method's maps for every model of a zoo, on the CPU two models at a time.

For the book's small networks most of an attribution call is spent in operations too small to split over two cores,
so two single-threaded workers, one model each, do more than one loop whose every operation uses both cores
(``benchmarks/bench_parallel_maps.py`` measures it; the same holds for training, :mod:`helpers.zoo.cpu`). Only
methods registered with ``parallel=True`` run this way: those that draw no numbers from torch's global random
generator (SmoothGrad reseeds it per image, which two threads would interleave). Each worker gets its own copy of
the inputs (captum switches ``requires_grad`` of the tensor it is given on and off), and captum's warnings are
silenced once for the pool (:func:`helpers.attribution.registry.quiet_for_threads`). Each worker computes exactly
what the single-threaded loop computes (a test compares them bit for bit); against a loop whose operations use two
threads, some methods differ by float rounding (a relative 1e-6 at most in the tests), as maps computed on machines
with other core counts do.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import torch
from torch import nn

from .registry import attribute, get_method, quiet_for_threads


def workers_for(method: str, models: Sequence[nn.Module], inputs: torch.Tensor) -> int:
    """How many models are explained at once: 1 (the plain loop) on an accelerator, for a single model, for a
    method not registered ``parallel``, or when torch has one thread; else torch's thread count."""
    on_cpu = inputs.device.type == "cpu" and all(p.device.type == "cpu" for p in models[0].parameters())
    if len(models) < 2 or not on_cpu or not get_method(method).parallel:
        return 1
    return max(1, min(len(models), torch.get_num_threads()))


def per_model(method: str, models: Sequence[nn.Module], inputs: torch.Tensor, target: Any,
              **kwargs: Any) -> list[torch.Tensor]:
    """``[attribute(method, m, inputs, target, **kwargs) for m in models]``, :func:`workers_for` models at a time."""
    n = workers_for(method, models, inputs) if models else 1
    if n == 1:
        return [attribute(method, m, inputs, target, **kwargs) for m in models]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # each worker single-threaded (the workers' setting is initialised from this one)
    try:
        with quiet_for_threads(), ThreadPoolExecutor(n) as pool:
            return list(pool.map(lambda m: attribute(method, m, inputs.clone(), target, **kwargs), models))
    finally:
        torch.set_num_threads(threads)
