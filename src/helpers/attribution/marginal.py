"""Marginalized saliency: the mean of one method's maps over M seeded models (Woerl et al., CVPR 2023).

"Marginalization over the initialization distribution by simple stochastic integration": for models θ_1…θ_M that
differ only in their seeds, ā(x) = (1/M) Σ_m A(f_θm, x) and the per-pixel standard deviation
s(x) = sqrt(1/(M−1) Σ_m (A(f_θm, x) − ā(x))²).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from .parallel import per_model
from .registry import TargetLike, as_target, attribute, check_inputs, get_method
from ..zoo.stacking import _same_architecture, meta_copy, stack_models


@dataclass(frozen=True)
class MarginalMaps:
    """Maps of M models for N images: ``per_model`` is (M, N, C, H, W)."""

    per_model: torch.Tensor

    @property
    def n_models(self) -> int:
        return self.per_model.shape[0]

    @property
    def mean(self) -> torch.Tensor:
        """(N, C, H, W) mean over models."""
        return self.per_model.mean(0)

    @property
    def std(self) -> torch.Tensor:
        """(N, C, H, W) per-pixel standard deviation over models (unbiased; zero for one model)."""
        if self.n_models < 2:
            return torch.zeros_like(self.per_model[0])
        return self.per_model.std(0)

    def running_mean(self) -> torch.Tensor:
        """(M, N, C, H, W): entry k is the mean over the first k+1 models."""
        counts = torch.arange(1, self.n_models + 1, dtype=self.per_model.dtype, device=self.per_model.device)
        return self.per_model.cumsum(0) / counts.view(-1, *([1] * (self.per_model.ndim - 1)))


# Methods whose per-model maps can be computed for all models at once with torch.func (vmap over stacked weights).
_VMAP_METHODS = {"gradient": False, "input_x_gradient": True}  # value: multiply by the input


def stacked_logit_gradients(models: Sequence[nn.Module], inputs: torch.Tensor, target: torch.Tensor,
                            model_batch: int | None = None) -> torch.Tensor:
    """∂z_target/∂x for every model and image in one vmapped call: (M, N, C, H, W).

    The models must share one architecture and be in eval mode. ``model_batch`` bounds how many are stacked at once.
    """
    base = meta_copy(models[0])

    def summed_logit(params, buffers, x, t):
        logits = functional_call(base, (params, buffers), (x,))
        return logits.gather(1, t[:, None]).sum()

    per_models = vmap(grad(summed_logit, argnums=2), in_dims=(0, 0, None, None))
    step = model_batch or len(models)
    out = []
    for i in range(0, len(models), step):
        params, buffers = stack_models(models[i:i + step])
        out.append(per_models(params, buffers, inputs, target))
    return torch.cat(out)


def _vmap_pays(model: nn.Module) -> bool:
    """Whether vmap over models beats a loop, as measured (benchmarks/bench_marginal.py, benchmarks/gpu_zoo.py):
    for models without BatchNorm (CPU, 2 threads, 24 LeNets × 64 images: 1.4× faster than the loop), but not with
    it (CPU: ConvNet 0.5×; H100 with 6–8 models × 20 images: ResNet101 0.7×, VGG19 0.9×, ResNet18 1.1–1.2×, and
    0.3–0.45× with 2 models), so BatchNorm networks use the loop."""
    return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


_MEASURED: dict[tuple[str, str, int], bool] = {}  # (device, architecture, weight count) → whether vmap was faster


def best_seconds(fn, device: torch.device, repeat: int = 2) -> float:
    """Best wall-clock seconds of ``repeat`` calls of ``fn`` after one warm-up call, synchronizing CUDA."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()  # warm-up (cuDNN autotuning, vmap tracing)
    best = float("inf")
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def measured_vmap_pays(models: Sequence[nn.Module], inputs: torch.Tensor, target: torch.Tensor) -> bool:
    """Whether vmap over models beats the loop on this device, by timing both once on up to 8 models × 32 images
    (warm-up, then best of 2); cached per (device, architecture, weight count), so only the first call pays."""
    key = (str(inputs.device), type(models[0]).__name__, sum(p.numel() for p in models[0].parameters()))
    if key not in _MEASURED:
        ms, x, t = list(models[:8]), inputs[:32], target[:32]
        loop = best_seconds(lambda: [attribute("gradient", m, x, t) for m in ms], inputs.device)
        vec = best_seconds(lambda: stacked_logit_gradients(ms, x, t), inputs.device)
        _MEASURED[key] = vec < loop
    return _MEASURED[key]


class Marginalized:
    """Mean, std and per-model maps of ``method`` over ``models``.

    ``vectorize`` (gradient and input×gradient only): ``None`` chooses vmap over models where it is faster: on a
    CPU by :func:`_vmap_pays`, on an accelerator by timing both on the first call (:func:`measured_vmap_pays`;
    ``vectorize`` is ``None`` until then). Stacked calls that run out of CUDA memory are retried with half as many
    models per call, then half as many images.

    >>> maps = Marginalized("gradient", models).attribute(x, target=y)  # doctest: +SKIP
    >>> maps.mean.shape == x.shape  # doctest: +SKIP
    """

    def __init__(self, method: str, models: Sequence[nn.Module], vectorize: bool | None = None,
                 **method_kwargs) -> None:
        get_method(method)  # fail early on an unknown name
        if len(models) == 0:
            raise ValueError("Marginalized needs at least one model: pass a non-empty list (e.g. load_zoo(spec).models)")
        self.method = method
        self.models = list(models)
        self.method_kwargs = method_kwargs
        possible = method in _VMAP_METHODS and not method_kwargs and _same_architecture(self.models)
        on_cpu = all(p.device.type == "cpu" for p in self.models[0].parameters())
        self.vectorize: bool | None = possible and (vectorize if vectorize is not None
                                                    else _vmap_pays(self.models[0]) if on_cpu else None)
        self.model_batch: int | None = None  # models per stacked call; lowered when CUDA memory runs out

    def attribute(self, inputs: torch.Tensor, target: TargetLike, batch_size: int = 256,
                  model_batch: int | None = None) -> MarginalMaps:
        """Maps of every model for every image, ``batch_size`` images at a time."""
        check_inputs(inputs, self.models[0])
        t = as_target(target, inputs.shape[0], inputs.device, self.models[0])
        chunks = []
        self.model_batch = model_batch or self.model_batch or len(self.models)
        for i in range(0, inputs.shape[0], batch_size):
            x, tt = inputs[i:i + batch_size], t[i:i + batch_size]
            if self.vectorize is None:
                self.vectorize = measured_vmap_pays(self.models, x, tt)
            if self.vectorize:
                g = self._stacked_fitting_memory(x, tt)
                chunks.append(g * x if _VMAP_METHODS[self.method] else g)
            else:
                chunks.append(torch.stack(per_model(self.method, self.models, x, tt, **self.method_kwargs)))
        return MarginalMaps(torch.cat(chunks, dim=1).detach())

    def _stacked_fitting_memory(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """:func:`stacked_logit_gradients`, halving the models per call (then the images) while CUDA memory runs out."""
        try:
            return stacked_logit_gradients(self.models, x, t, self.model_batch)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if self.model_batch > 1:
                self.model_batch = (self.model_batch + 1) // 2
                return self._stacked_fitting_memory(x, t)
            if len(x) < 2:
                raise
            h = len(x) // 2
            return torch.cat([self._stacked_fitting_memory(x[:h], t[:h]),
                              self._stacked_fitting_memory(x[h:], t[h:])], dim=1)


def marginalize_methods(methods: Sequence[str], models: Sequence[nn.Module], inputs: torch.Tensor,
                        target: TargetLike, method_kwargs: dict[str, dict] | None = None,
                        progress: bool = True) -> dict[str, MarginalMaps]:
    """:class:`Marginalized` maps of several methods over the same models and images, with a progress bar."""
    from tqdm.auto import tqdm

    for name in methods:
        get_method(name)  # fail before any work on a typo
    method_kwargs = method_kwargs or {}
    out = {}
    for name in tqdm(methods, desc="methods", disable=not progress):
        out[name] = Marginalized(name, models, **method_kwargs.get(name, {})).attribute(inputs, target)
    return out


def class_maps(method: str, models: Sequence[nn.Module], inputs: torch.Tensor, num_classes: int,
               **method_kwargs) -> torch.Tensor:
    """Channel-summed maps of every model for every class's logit: (K classes, M models, N images, H, W).

    Chapter 1 and 2's class selector: a map explains one logit, and the same image has a map per class."""
    k, n = num_classes, inputs.shape[0]
    x = inputs.repeat(k, *([1] * (inputs.ndim - 1)))
    t = torch.arange(k, device=inputs.device).repeat_interleave(n)
    per_model = Marginalized(method, models, **method_kwargs).attribute(x, target=t).per_model  # (M, K·N, C, H, W)
    return per_model.sum(-3).unflatten(1, (k, n)).transpose(0, 1)


def of_class(per_class: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """From (K, M, N, H, W) maps pick class ``classes[n]`` for image n: (M, N, H, W)."""
    n = per_class.shape[2]
    if classes.shape != (n,):
        raise ValueError(f"need one class per image ({n}), got shape {tuple(classes.shape)}")
    return per_class[classes.to(per_class.device), :, torch.arange(n, device=per_class.device)].transpose(0, 1)


def method_maps(methods: Sequence[str], models: Sequence[nn.Module], inputs: torch.Tensor, target: TargetLike,
                method_kwargs: dict[str, dict] | None = None, progress: bool = True) -> dict[str, torch.Tensor]:
    """Channel-summed per-model maps (M, N, H, W) of every method, for the chapters' tables and SNRs."""
    out = marginalize_methods(methods, models, inputs, target, method_kwargs, progress)
    return {name: r.per_model.sum(-3) for name, r in out.items()}
