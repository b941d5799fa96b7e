"""Maps over a grid of settings: every perturbation baseline and every value of a method's hyperparameters
(Brunke et al. 2020), and the seed yardstick they are judged against, with a shared or an own method seed per model
(RISE's masks, Petsiuk et al. 2018; KernelSHAP's samples).
"""
from __future__ import annotations

from typing import Sequence
import torch
from torch import nn

from ..attribution.perturbation import rise
from .ranks import rank_correlation, with_others


def maps_under(method: str, models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor,
               baseline: torch.Tensor, cache: tuple[str, Sequence[tuple[int, int]]] | None = None,
               model_seeds: Sequence[int] | None = None, **kwargs) -> torch.Tensor:
    """Channel-summed maps (M, N, H, W) of a registered method that takes ``baseline``, with a baseline *image* per
    input.

    ``model_seeds`` gives model k its own method seed (RISE's masks, KernelSHAP's samples) instead of the shared
    ``seed``; ``cache`` = (zoo key, seed pairs of ``models``) keeps each model's maps in the shared map cache
    (:mod:`helpers.attribution.mapcache`), keyed also by the baseline's digest."""
    from ..attribution import mapcache
    from ..attribution.registry import attribute

    if model_seeds is not None and len(model_seeds) != len(models):
        raise ValueError(f"{len(model_seeds)} method seeds for {len(models)} models: pass one seed per model")
    out = []
    for k, model in enumerate(models):
        kw = dict(kwargs)
        if model_seeds is not None and "seed" in kw:
            kw["seed"] = int(model_seeds[k])
        key = None
        if cache is not None:
            tag = {**kw, "baseline_image": mapcache.tensor_digest(baseline), "via": "sweeps.maps_under"}
            key = mapcache.model_key(cache[0], tuple(cache[1][k]), method, tag, x, target)
            hit = mapcache.load(key, (1, x.shape[0], *x.shape[-2:]))
            if hit is not None:
                out.append(hit[0].to(x.device, x.dtype))
                continue
        if method == "rise":  # also registered as "rise" in helpers.attribution
            a = rise(model, x, target, baseline, **kw)
        else:
            a = attribute(method, model, x, target, baseline=baseline, **kw)
        a = a.sum(1)
        if key is not None:
            mapcache.save(key, a[None].detach().float())
        out.append(a)
    return torch.stack(out)


def at_resolution(maps: torch.Tensor, resolution: float = 0.01) -> torch.Tensor:
    """Maps (..., H, W) rounded to steps of ``resolution`` times their scale (the 99th percentile of
    |a − median(a)| per map), centred on the median, for rank comparisons: values closer than that are ties.

    Where an image equals the baseline (MNIST's black background under a black baseline), integrated gradients,
    DeepLIFT and occlusion give exact zeros; shifting the baseline by a hair turns them into tiny values of arbitrary
    order, and a Spearman correlation over all pixels counts that as a large change (Brunke et al.'s question needs a
    test that a 0.01 shift does not fail). ``resolution = 0`` returns the maps unchanged."""
    if resolution < 0:
        raise ValueError(f"resolution={resolution}: use 0 (exact ranks) or a small positive fraction such as 0.01")
    if resolution == 0:
        return maps
    f = maps.flatten(-2).double()
    med = f.median(-1, keepdim=True).values
    scale = (f - med).abs().quantile(0.99, dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.round((f - med) / (resolution * scale)).view(maps.shape)


def seed_yardstick(methods: Sequence[str], models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor,
                   baseline: torch.Tensor, method_kwargs: dict[str, dict],
                   cache: tuple[str, Sequence[tuple[int, int]]] | None = None,
                   resolution: float = 0.0) -> dict[str, object]:
    """How much maps differ between seeds (the yardstick of Brunke et al.'s question), from all pairs of models.

    ``"maps"`` (K, M, N, H, W): every model's maps with the shared method seed (the book's convention, used by
    the rest of the chapter). ``"shared"`` and ``"independent"`` (K, M, N): each model's rank correlation with
    every other model, averaged over the others, with the shared method seed and with model k's own method seed
    ``seed + k`` (for deterministic methods the two are the same maps). ``"monte_carlo"`` {method: (M, N)}: a
    sampled method's own noise, one model under two method seeds (model k ≥ 1: seeds ``seed`` and ``seed + k``,
    model 0: ``seed`` and ``seed + M``). Sharing the seed adds the sampling pattern to every model's map
    (Petsiuk et al.'s masks), so ``"shared"`` can overstate the agreement between seeds. Correlations compare the
    maps :func:`at_resolution` ``resolution``; ``"maps"`` are the maps themselves."""
    m = len(models)
    if m < 2:
        raise ValueError("a seed yardstick compares the maps of two models at least: pass n_sweep_models ≥ 2")
    shared, indep, mc = [], [], {}
    for meth in methods:
        kw = dict(method_kwargs.get(meth, {}))
        s = maps_under(meth, models, x, target, baseline, cache, **kw)
        shared.append(s)
        if "seed" not in kw:
            indep.append(s)
            continue
        seeds = [kw["seed"] + k for k in range(m)]
        own = maps_under(meth, models[1:], x, target, baseline, None if cache is None else (cache[0], cache[1][1:]),
                         seeds[1:], **kw)
        extra = maps_under(meth, models[:1], x, target, baseline, None if cache is None else (cache[0], cache[1][:1]),
                           [kw["seed"] + m], **kw)
        indep.append(torch.cat([s[:1], own]))
        mc[meth] = rank_correlation(at_resolution(s, resolution), at_resolution(torch.cat([extra, own]), resolution))
    shared_t, indep_t = torch.stack(shared), torch.stack(indep)
    rho = lambda t: with_others(at_resolution(t, resolution).movedim(1, 0)).movedim(0, 1)  # noqa: E731  (K, M, N)
    return {"maps": shared_t, "shared": rho(shared_t), "independent": rho(indep_t), "monte_carlo": mc}


HYPERPARAMETERS = {"occlusion": ("window", "stride"), "rise": ("cell", "n_masks"),
                   "integrated_gradients": ("n_steps",), "kernel_shap": ("n_samples",)}


def hyper_sweep(method: str, models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor,
                baselines: dict[str, torch.Tensor], name: str, values: Sequence,
                cache: tuple[str, Sequence[tuple[int, int]]] | None = None, **kwargs) -> torch.Tensor:
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
        out.append(torch.stack([maps_under(method, models, x, target, b, cache, **kw) for b in baselines.values()]))
    return torch.stack(out)


def hyper_sweeps(hypers: dict[str, dict[str, Sequence]], models: Sequence[nn.Module], x: torch.Tensor,
                 target: torch.Tensor, baselines: dict[str, torch.Tensor],
                 method_kwargs: dict[str, dict], cache: tuple[str, Sequence[tuple[int, int]]] | None = None
                 ) -> dict[tuple[str, str], torch.Tensor]:
    """:func:`hyper_sweep` for every (method, hyperparameter) of ``hypers`` ({method: {name: values}}), the other
    hyperparameters held at ``method_kwargs[method]``."""
    return {(m, name): hyper_sweep(m, models, x, target, baselines, name, values, cache,
                                   **{k: v for k, v in method_kwargs.get(m, {}).items() if k != name})
            for m, by_name in hypers.items() for name, values in by_name.items()}


def sweep(methods: Sequence[str], models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor,
          baselines: dict[str, torch.Tensor], method_kwargs: dict[str, dict] | None = None,
          progress: bool = False, cache: tuple[str, Sequence[tuple[int, int]]] | None = None,
          reuse: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Maps of every method under every baseline: (B, K, M, N, H, W), channel-summed (Brunke et al.'s first
    question: do "neutral" baselines change the maps?). ``reuse`` {baseline: (K, M, N, H, W)} supplies maps
    already made (e.g. the seed yardstick's under the maps' baseline) instead of recomputing them."""
    from tqdm.auto import tqdm

    kw, reuse = method_kwargs or {}, reuse or {}
    jobs = [(b, m) for b in baselines for m in methods if b not in reuse]
    made = {(b, m): maps_under(m, models, x, target, baselines[b], cache, **kw.get(m, {}))
            for b, m in tqdm(jobs, desc="maps under each baseline", disable=not progress)}
    out = [reuse[b][k] if b in reuse else made[b, m] for b in baselines for k, m in enumerate(methods)]
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
