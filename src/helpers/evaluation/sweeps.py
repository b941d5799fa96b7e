"""Maps over a grid of settings: every perturbation baseline and every value of a method's hyperparameters
(Brunke et al. 2020), and RISE's shared vs independent masks (Petsiuk et al. 2018).
"""
from __future__ import annotations

from typing import Sequence
import torch
from torch import nn

from ..attribution.perturbation import rise
from .ranks import rank_correlation, with_others


def maps_under(method: str, models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor,
               baseline: torch.Tensor, **kwargs) -> torch.Tensor:
    """Channel-summed maps (M, N, H, W) of a registered method that takes ``baseline``, with a baseline *image* per
    input."""
    from ..attribution.registry import attribute

    out = []
    for model in models:
        if method == "rise":  # also registered as "rise" in helpers.attribution
            a = rise(model, x, target, baseline, **kwargs)
        else:
            a = attribute(method, model, x, target, baseline=baseline, **kwargs)
        out.append(a.sum(1))
    return torch.stack(out)


HYPERPARAMETERS = {"occlusion": ("window", "stride"), "rise": ("cell", "n_masks"),
                   "integrated_gradients": ("n_steps",), "kernel_shap": ("n_samples",)}


def hyper_sweep(method: str, models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor,
                baselines: dict[str, torch.Tensor], name: str, values: Sequence, **kwargs) -> torch.Tensor:
    """Maps (V, B, M, N, H, W) of ``method`` for every value of one hyperparameter ``name`` (see
    :data:`HYPERPARAMETERS`) under every baseline, the others held at ``kwargs``. Occlusion's ``window`` carries its
    stride along (half the window), its ``stride`` holds the window."""
    if name not in HYPERPARAMETERS.get(method, ()):
        known = "; ".join(f"{m}: {', '.join(h)}" for m, h in HYPERPARAMETERS.items())
        raise ValueError(f"{method} has no swept hyperparameter {name!r}: choose one of {known}")
    out = []
    for v in values:
        kw = {**kwargs, name: v}
        if method == "occlusion" and name == "window":
            kw["stride"] = max(1, v // 2)
        out.append(torch.stack([maps_under(method, models, x, target, b, **kw) for b in baselines.values()]))
    return torch.stack(out)


def hyper_sweeps(hypers: dict[str, dict[str, Sequence]], models: Sequence[nn.Module], x: torch.Tensor,
                 target: torch.Tensor, baselines: dict[str, torch.Tensor],
                 method_kwargs: dict[str, dict]) -> dict[tuple[str, str], torch.Tensor]:
    """:func:`hyper_sweep` for every (method, hyperparameter) of ``hypers`` ({method: {name: values}}), the other
    hyperparameters held at ``method_kwargs[method]``."""
    return {(m, name): hyper_sweep(m, models, x, target, baselines, name, values,
                                   **{k: v for k, v in method_kwargs.get(m, {}).items() if k != name})
            for m, by_name in hypers.items() for name, values in by_name.items()}


def monte_carlo_agreement(methods: Sequence[str], models: Sequence[nn.Module], x: torch.Tensor,
                          target: torch.Tensor, baseline: torch.Tensor, reference: torch.Tensor,
                          method_kwargs: dict[str, dict]) -> dict[str, torch.Tensor]:
    """A sampled method's own noise at a fixed setting: the rank correlation (M, N) of each model's maps under its
    seed (``reference`` (K, M, N, H, W), e.g. one baseline of :func:`sweep`) and under the next method seed. A
    hyperparameter "moves the maps" only if its values disagree more than this (for RISE's ``n_masks`` the
    divergence can be its own Monte Carlo noise)."""
    out = {}
    for k, m in enumerate(methods):
        kw = dict(method_kwargs.get(m, {}))
        if "seed" not in kw:
            continue  # deterministic: no sampling noise
        kw["seed"] += 1
        out[m] = rank_correlation(reference[k], maps_under(m, models, x, target, baseline, **kw))
    return out


def shared_masks(models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor, baseline: torch.Tensor,
                 seed: int = 0, **kwargs) -> dict[str, torch.Tensor]:
    """How much of the agreement between RISE maps of different models comes from sharing the masks.

    Rank correlations (M, N), each averaged over the other models: ``"shared"``, two models with the same masks
    (``seed`` for all, the book's convention); ``"independent"``, two models with their own masks (seed
    ``seed + 1 + m``); and ``"masks_only"``, one model under two mask sets (``seed`` vs ``seed + 1 + m``), the
    agreement that the masks' sampling alone leaves."""
    m = len(models)
    if m < 2:
        raise ValueError("comparing RISE maps across models needs at least two models")
    shared = torch.stack([rise(mod, x, target, baseline, seed=seed, **kwargs).sum(1) for mod in models])
    own = torch.stack([rise(mod, x, target, baseline, seed=seed + 1 + k, **kwargs).sum(1)
                       for k, mod in enumerate(models)])
    return {"shared": with_others(shared), "independent": with_others(own),
            "masks_only": rank_correlation(shared, own)}


def sweep(methods: Sequence[str], models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor,
          baselines: dict[str, torch.Tensor], method_kwargs: dict[str, dict] | None = None,
          progress: bool = False) -> torch.Tensor:
    """Maps of every method under every baseline: (B, K, M, N, H, W), channel-summed (Brunke et al.'s first
    question: do "neutral" baselines change the maps?)."""
    from tqdm.auto import tqdm

    kw = method_kwargs or {}
    jobs = [(b, m) for b in baselines for m in methods]
    out = [maps_under(m, models, x, target, baselines[b], **kw.get(m, {}))
           for b, m in tqdm(jobs, desc="maps under each baseline", disable=not progress)]
    return torch.stack(out).view(len(baselines), len(methods), len(models), *x.shape[:1], *x.shape[-2:])


def method_options(methods: Sequence[str], window: int = 4, rise_masks: int = 500, rise_cell: int = 4,
                   surrogate_samples: int = 100, ig_steps: int = 32, seed: int = 0) -> dict[str, dict]:
    """Keyword arguments of the baseline methods of chapter 6 (the baseline itself is passed separately)."""
    table = {"occlusion": {"window": window, "stride": max(1, window // 2)},
             "rise": {"n_masks": rise_masks, "cell": rise_cell, "seed": seed},
             "integrated_gradients": {"n_steps": ig_steps},
             "kernel_shap": {"n_samples": surrogate_samples, "seed": seed},
             "lime": {"n_samples": surrogate_samples, "seed": seed}}
    return {m: table.get(m, {}) for m in methods}
