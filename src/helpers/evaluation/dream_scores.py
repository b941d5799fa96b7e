"""How good a deep dream is: its target scores on the networks that made it and on held-out ones, score curves
along the steps, transfer, and its similarity to real images of the class (Woerl et al., CVPR 2023).
"""
from __future__ import annotations

from typing import Mapping, Sequence
import torch
from torch import nn

from ..attribution.dream import DreamResult, DreamRun, pixel_bounds
from ..zoo.outputs import zoo_logits


@torch.no_grad()
def logits_under(models: Sequence[nn.Module], images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """(M, N, K) logits of ``images`` (N, C, H, W) under each of ``models`` (e.g. held-out networks), on CPU."""
    if not len(models):
        raise ValueError("empty model list: pass at least one network")
    device = next(models[0].parameters()).device
    return zoo_logits(models, images.to(device), batch_size).cpu()


@torch.no_grad()
def target_scores(models: Sequence[nn.Module], images: torch.Tensor, classes: Sequence[int] | torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """How each network scores each image's target class.

    ``images`` is (..., B, C, H, W) (e.g. the (S, B, C, H, W) snapshots of a dream) and ``classes`` (B,).
    Returns four (M, ..., B) tensors: the target logit, its softmax probability, the margin (target logit minus
    the largest other logit) and whether the network's top class is the target (0/1).
    """
    classes = torch.as_tensor(classes, dtype=torch.long).reshape(-1)
    if images.ndim < 4 or images.shape[-4] != len(classes):
        raise ValueError(f"images of shape {tuple(images.shape)} do not end in (B={len(classes)}, C, H, W): "
                         f"pass one image per class")
    lead = images.shape[:-3]
    z = logits_under(models, images.reshape(-1, *images.shape[-3:]))  # (M, N, K)
    z = z.view(len(models), *lead, z.shape[-1])
    idx = classes.view(*([1] * (len(lead))), -1, 1).expand(len(models), *lead, 1)
    target = z.gather(-1, idx).squeeze(-1)
    prob = z.softmax(-1).gather(-1, idx).squeeze(-1)
    other = z.scatter(-1, idx, float("-inf")).amax(-1)
    return target, prob, target - other, (z.argmax(-1) == classes).float()


def pixel_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) Pearson correlation over all pixels (and channels) between image b of ``a`` and image b of ``b``."""
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)}: pass two (B, ...) batches of equal shape")
    fa, fb = a.flatten(1).double(), b.flatten(1).double()
    fa, fb = fa - fa.mean(1, keepdim=True), fb - fb.mean(1, keepdim=True)
    return ((fa * fb).sum(1) / (fa.norm(dim=1) * fb.norm(dim=1)).clamp_min(1e-12)).float()


def _prototypes(images: torch.Tensor, classes: Sequence[int] | torch.Tensor, x: torch.Tensor,
                y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The dreams' classes as a tensor and the mean real image of each (B, C, H, W) on the CPU, after checking that
    there is one class per dream and a real image of every class."""
    classes = torch.as_tensor(classes, dtype=torch.long).reshape(-1)
    if images.shape[0] != len(classes):
        raise ValueError(f"{images.shape[0]} images but {len(classes)} classes: pass one class per image")
    y = y.to(x.device)
    missing = [int(c) for c in classes if not (y == c).any()]
    if missing:
        raise ValueError(f"no real image of class {missing[0]}: pass real images of every dreamt class")
    return classes, torch.stack([x[y == c].float().mean(0) for c in classes.tolist()]).cpu()


def prototype_correlation(images: torch.Tensor, classes: Sequence[int] | torch.Tensor, x: torch.Tensor,
                          y: torch.Tensor) -> torch.Tensor:
    """(B,) Pearson correlation of each dream with the mean real image of its class (the class's "prototype").

    ``images`` (B, C, H, W) and the real images ``x`` (N, C, H, W) in the same units; ``y`` (N,) their labels."""
    return pixel_correlation(images.float().cpu(), _prototypes(images, classes, x, y)[1])


def prototype_matrix(images: torch.Tensor, classes: Sequence[int] | torch.Tensor, x: torch.Tensor,
                     y: torch.Tensor) -> torch.Tensor:
    """(B, B) Pearson correlation of dream b (of class ``classes[b]``) with the mean real image of class
    ``classes[c]``: the diagonal is :func:`prototype_correlation`, the rest compares each dream with the mean of a
    *wrong* class (the control of the class-mean claim: a smoother or more centred dream may correlate better with
    every class's mean, not only its own)."""
    classes, protos = _prototypes(images, classes, x, y)
    b = len(classes)
    a = images.float().cpu()
    return torch.stack([pixel_correlation(a, protos[c:c + 1].expand(b, *protos.shape[1:])) for c in range(b)], 1)


def prototype_matrices(run: DreamRun, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """:func:`prototype_matrix` of the ensemble's dreams (``"ensemble"``, (B, B)) and of every single network's
    (``"singles"``, (J, B, B)), against the real images ``x`` with labels ``y``."""
    ens = run.ensemble
    return {"ensemble": prototype_matrix(ens.images, ens.classes, x, y),
            "singles": torch.stack([prototype_matrix(r.images, r.classes, x, y) for r in run.singles])}


def class_examples(labels: torch.Tensor, classes: Sequence[int], n_per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``n_per_class`` seeded images of each of ``classes`` (real references for the dreams)."""
    if n_per_class < 1:
        raise ValueError(f"n_per_class={n_per_class}: use 1 or more")
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for c in classes:
        pool = torch.nonzero(labels.cpu() == int(c)).flatten()
        if len(pool) < n_per_class:
            raise ValueError(f"class {c} has {len(pool)} images, fewer than n_per_class={n_per_class}: ask for fewer")
        picked.append(pool[torch.randperm(len(pool), generator=gen)[:n_per_class]])
    return torch.cat(picked)


def score_along(result: DreamResult, models: Sequence[nn.Module]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S) target logit and (B, S) softmax probability of each snapshot, averaged over ``models``."""
    logit, prob, _, _ = target_scores(models, result.snapshots, result.classes)  # (M, S, B)
    return logit.mean(0).T, prob.mean(0).T


def score_curves(dreams: Mapping[str, DreamResult], held_out: Sequence[nn.Module]
                 ) -> dict[str, tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Per dream two curves for :func:`helpers.viz_dream.curves_figure`: ``"<name>, own score"`` (the dreamers'
    mean logit at every step) and ``"<name>, held-out networks"`` (the held-out networks' mean, per snapshot).

    Each value is (steps, logits (B, T), probabilities (B, T))."""
    curves: dict[str, tuple[list[int], torch.Tensor, torch.Tensor]] = {}
    for name, r in dreams.items():
        curves[f"{name}, own score"] = (list(range(r.logits.shape[0])), r.target_logits().T, r.target_probs().T)
        curves[f"{name}, held-out networks"] = (list(r.snapshot_steps), *score_along(r, held_out))
    return curves


def first_step_at(steps: Sequence[int], values: torch.Tensor, threshold: float) -> int | None:
    """The first step at which the mean over rows of ``values`` (B, T) (or a (T,) curve) reaches ``threshold``;
    None if it never does."""
    curve = torch.as_tensor(values, dtype=torch.float64)
    curve = curve.mean(0) if curve.ndim == 2 else curve
    if len(curve) != len(steps):
        raise ValueError(f"{len(curve)} values but {len(steps)} steps: pass one step per column")
    hit = torch.nonzero(curve >= threshold).flatten()
    return int(steps[int(hit[0])]) if len(hit) else None


def early_gain(curve: torch.Tensor, fraction: float = 0.5) -> float:
    """Share of the total rise of ``curve`` (T+1, B) (mean over rows) made in the first ``fraction`` of the steps:
    above 0.5 when the curve rises fast and then flattens."""
    c = curve.double().mean(1) if curve.ndim == 2 else curve.double()
    if not 0 < fraction < 1 or len(c) < 2:
        raise ValueError(f"fraction={fraction} on {len(c)} points: use 0 < fraction < 1 and at least 2 points")
    total = (c[-1] - c[0]).item()
    k = int(round(fraction * (len(c) - 1)))
    return (c[k] - c[0]).item() / total if total else float("nan")


def blur_effect(target_logits: torch.Tensor, blur_every: int) -> tuple[float, float]:
    """Mean change of the logit (T+1, B) on steps that end with a blur (t % blur_every == 0) and on the other steps.

    The blur of Olah et al. (2017) removes high frequencies the ascent added, so it should cost logit: the first
    number below the second. (nan, mean change) if ``blur_every`` is 0 or no step was blurred."""
    delta = target_logits.double().diff(dim=0)  # row t-1 is the change of step t
    t = torch.arange(1, delta.shape[0] + 1)
    blurred = (t % blur_every == 0) if blur_every else torch.zeros_like(t, dtype=torch.bool)
    on = delta[blurred].mean().item() if blurred.any() else float("nan")
    off = delta[~blurred].mean().item() if (~blurred).any() else float("nan")
    return on, off


def clamped_share(images: torch.Tensor, mean: Sequence[float], std: Sequence[float], tol: float = 1e-4) -> float:
    """Share of pixel values of ``images`` (B, C, H, W, normalized units) that sit at pixel value 0 or 1."""
    lo, hi = pixel_bounds(mean, std, images.device)
    at = ((images - lo).abs() <= tol) | ((images - hi).abs() <= tol)
    return at.float().mean().item()


def score_row(logit: torch.Tensor, prob: torch.Tensor, margin: torch.Tensor, hit: torch.Tensor) -> dict[str, float]:
    """Means over (networks, classes) of the four :func:`target_scores`, plus the worst margin."""
    return {"logit": logit.mean().item(), "prob": prob.mean().item(), "margin": margin.mean().item(),
            "min_margin": margin.min().item(), "top1": hit.mean().item()}


def held_out_indices(n_models: int, n_ensemble: int, exclude: Sequence[int] = ()) -> list[int]:
    """Networks n_ensemble … n_models − 1 (never seen by the ensemble), leaving out ``exclude`` (e.g. a dreamer)."""
    return [k for k in range(n_ensemble, n_models) if k not in set(exclude)]


def transfer_rows(single: Sequence[torch.Tensor], ensemble: Sequence[torch.Tensor], real: Sequence[torch.Tensor],
                  n_ensemble: int, dreamer: int = 0) -> dict[str, dict[str, float]]:
    """The transfer table: how every group of networks scores the single network's and the ensemble's dreams.

    ``single`` and ``ensemble`` are the four (M, B) :func:`target_scores` of the final dreams under all M networks
    of the zoo (networks 0 … n_ensemble − 1 formed the ensemble, ``dreamer`` dreamt alone), ``real`` the scores of
    real test images under the held-out networks. Leave-one-out throughout: the dreamer never scores its own dream
    in "single_others" or "single_held". Rows: ``single_own``, ``single_others``, ``single_held``,
    ``ens_members``, ``ens_held``, ``real_held``; columns: see :func:`score_row`.
    """
    n_models = single[0].shape[0]
    if not 0 <= dreamer < n_models or not 1 <= n_ensemble < n_models:
        raise ValueError(f"dreamer={dreamer}, n_ensemble={n_ensemble} for {n_models} networks: use 0 ≤ dreamer < "
                         f"{n_models} and 1 ≤ n_ensemble < {n_models}")
    others = [k for k in range(n_models) if k != dreamer]
    held = held_out_indices(n_models, n_ensemble, exclude=[dreamer])
    if not held:
        raise ValueError("no held-out network left once the dreamer is excluded: train a bigger zoo")
    rows_of = lambda scores, idx: score_row(*(s[idx] for s in scores))  # noqa: E731
    return {"single_own": rows_of(single, [dreamer]), "single_others": rows_of(single, others),
            "single_held": rows_of(single, held), "ens_members": rows_of(ensemble, list(range(n_ensemble))),
            "ens_held": rows_of(ensemble, held_out_indices(n_models, n_ensemble)), "real_held": score_row(*real)}


def per_network(scores: torch.Tensor, networks: Sequence[int]) -> dict[str, float]:
    """Spread over ``networks`` of the mean over classes of ``scores`` (M, B) (networks × classes).

    Pass a difference (e.g. ensemble dream − single dream under each network) to compare two dreams network by
    network. Returns mean, s.d. (population; 0 for one network), min, max, the number of networks ``n`` and how
    many of them have a positive mean (``n_positive``)."""
    if scores.ndim != 2 or not len(networks):
        raise ValueError(f"scores of shape {tuple(scores.shape)} with {len(networks)} networks: pass (M, B) scores "
                         f"and at least one network")
    d = scores[list(networks)].double().mean(1)
    return {"mean": d.mean().item(), "sd": d.std(unbiased=False).item(), "min": d.min().item(),
            "max": d.max().item(), "n": len(d), "n_positive": int((d > 0).sum())}


def spread(values: torch.Tensor) -> dict[str, float]:
    """Mean, s.d. (population), min and max of ``values`` (e.g. a correlation per class)."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    return {"mean": v.mean().item(), "sd": v.std(unbiased=False).item(), "min": v.min().item(),
            "max": v.max().item()}


def dream_similarity(run: DreamRun, halves: tuple[DreamResult, DreamResult], x: torch.Tensor, y: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
    """Chapter 1's test of reproducibility, for dreams: (B,) pixel correlations per class.

    ``"single"``: network 0 vs network 1, each alone (same start and jitter; only the seeds differ);
    ``"half"``: two disjoint half-ensembles (:func:`half_ensemble_dreams`); ``"single_vs_ensemble"``: network 0 vs
    the whole ensemble; ``"proto_single"`` / ``"proto_ensemble"``: network 0's and the ensemble's dream vs the mean
    real image of the class (:func:`prototype_correlation`, real images ``x`` with labels ``y``)."""
    if len(run.singles) < 2:
        raise ValueError("only one single-network dream: set n_single_dreams ≥ 2 so that networks 0 and 1 can be "
                         "compared")
    s0, ens = run.singles[0], run.ensemble
    return {"single": pixel_correlation(s0.images, run.singles[1].images),
            "half": pixel_correlation(halves[0].images, halves[1].images),
            "single_vs_ensemble": pixel_correlation(s0.images, ens.images),
            "proto_single": prototype_correlation(s0.images, s0.classes, x, y),
            "proto_ensemble": prototype_correlation(ens.images, ens.classes, x, y)}
