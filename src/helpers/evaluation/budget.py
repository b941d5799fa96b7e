"""What averaging buys at equal compute: seed means of a zoo (Woerl et al., CVPR 2023) against single-model averages
over input noise (SmoothGrad, Smilkov et al. 2017), weight noise (NoiseGrad) or both (FusionGrad, Bykov et al.,
AAAI 2022), judged by closeness to the seed-marginalized map of a held-out half of the zoo, split-half
reproducibility and faithfulness next to a blur-matched control (deletion metrics reward blur: Song et al. 2023).

Every statistic is a (replicates, images) table: replicate r of a single-model estimator is its map on model r of
the estimation half; replicate r of the seed mean at budget b is the mean over models r, r+1, …, r+b−1 (cyclically)
of that half. Intervals resample replicates and images (:func:`helpers.evaluation.intervals.mean_interval`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence
import torch
from torch import nn

from ..attribution.maps import pearson
from .faithfulness import auc, blur_to_match, curves, fractions
from .intervals import Interval, mean_interval


def budgets_up_to(limit: int, extra: Sequence[int] = ()) -> list[int]:
    """1, 2, 4, … up to ``limit``, with ``extra`` budgets (e.g. M/2) merged in."""
    out, b = set(int(e) for e in extra if 1 <= e <= limit), 1
    while b <= limit:
        out.add(b)
        b *= 2
    return sorted(out)


def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of maps (..., H, W) over their pixels, in float64 (broadcasting over leading axes)."""
    return pearson(a.double(), b.double()).float()


def cyclic_means(maps: torch.Tensor, budgets: Sequence[int], start: int = 0) -> torch.Tensor:
    """(B, R, N, H, W) from per-model maps (R, N, H, W): entry (k, r) is the mean over models r+start, …,
    r+start+b_k−1 (modulo R), the seed mean at budget b_k of replicate r."""
    r = maps.shape[0]
    if max(budgets) > r:
        raise ValueError(f"a seed mean over {max(budgets)} models needs that many models; this half has {r}")
    csum = torch.cat([maps, maps]).cumsum(0)
    csum = torch.cat([torch.zeros_like(maps[:1]), csum])
    idx = (torch.arange(r) + start) % r
    return torch.stack([(csum[idx + b] - csum[idx]) / b for b in budgets])


def closeness(estimates: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(B, R, N): correlation of each estimate (B, R, N, H, W) with the held-out reference map (N, H, W)."""
    return correlation(estimates, reference[None, None])


def split_half_single(estimates: torch.Tensor) -> torch.Tensor:
    """(B, R, N): correlation between the estimate on model r and on model r+1 (their own models and method seeds):
    two independent replicates of a single-model estimator."""
    return correlation(estimates, estimates.roll(-1, dims=1))


def split_half_seed(maps_a: torch.Tensor, maps_b: torch.Tensor, budgets: Sequence[int]) -> torch.Tensor:
    """(B, R, N): correlation between seed means over b models of two disjoint halves of the zoo."""
    return correlation(cyclic_means(maps_a, budgets), cyclic_means(maps_b, budgets))


@dataclass(frozen=True)
class Decision:
    """A paired difference's interval judged against an effect-size threshold ``delta``."""

    interval: Interval
    delta: float
    code: str  # "+" (above +δ), "-" (below −δ), "=" (within ±δ), "?" (undecided)
    text: str


def decide(diff: torch.Tensor, delta: float, better: str, worse: str, equal: str, n_boot: int = 1000,
           level: float = 0.9, seed: int = 0) -> Decision:
    """The verdict a paired difference (R, N) supports at threshold δ: ``better`` if its interval lies above +δ,
    ``worse`` below −δ, ``equal`` inside (−δ, +δ), else undecided; the sentence states the interval and δ."""
    iv = mean_interval(diff, n_boot, level, seed)
    if iv.low > delta:
        code, words = "+", better
    elif iv.high < -delta:
        code, words = "-", worse
    elif iv.low > -delta and iv.high < delta:
        code, words = "=", equal
    else:
        code, words = "?", "this run cannot decide"
    return Decision(iv, delta, code, f"{words} (difference {iv:.3f}; threshold ±{delta:g})")


def intervals(values: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0) -> list[Interval]:
    """One interval per budget of a (B, R, N) statistic."""
    return [mean_interval(v, n_boot, level, seed) for v in values]


def faithfulness_vs_blur(models: Sequence[nn.Module], x: torch.Tensor, target: torch.Tensor, single: torch.Tensor,
                         estimates: dict[str, torch.Tensor], baseline: torch.Tensor, n_steps: int = 14,
                         patch: int = 1, score: str = "prob") -> dict[str, dict[str, torch.Tensor]]:
    """Deletion and insertion AUC (R, N), map r scored on model r, of every estimate (R, N, H, W) and of model r's
    single map blurred to the estimate's total variation (its smoothness-matched control, ``"<name> blur"``)."""
    frac = fractions(tuple(x.shape[-2:]), n_steps, patch)
    maps = {"single": single}
    for name, est in estimates.items():
        maps[name] = est
        maps[f"{name} blur"] = blur_to_match(single, est)[0]
    out: dict[str, dict[str, torch.Tensor]] = {"deletion": {}, "insertion": {}}
    for kind in out:
        for name, m in maps.items():
            c = curves(models, x, target, m, baseline, kind, "morf", n_steps, patch, score, paired=True)
            out[kind][name] = auc(c, frac)
    return out


def noisy_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float], n: int = 8,
                   seed: int = 0) -> list[float]:
    """Mean test accuracy of ``n`` noisy copies of ``model`` (W ⊙ η, η ~ N(1, σ²)) per σ: how far the weight noise
    of NoiseGrad moves the model away from the trained one."""
    from torch.func import functional_call

    from ..attribution.noise import weight_noise

    buffers = dict(model.named_buffers())
    out = []
    with torch.no_grad():
        for s in sigmas:
            accs = []
            for params in weight_noise(model, n, s, seed, 1):
                one = {k: v[0] for k, v in params.items()}
                pred = functional_call(model, (one, buffers), (x,)).argmax(1)
                accs.append(float((pred == y).double().mean()))
            out.append(sum(accs) / len(accs))
    return out
