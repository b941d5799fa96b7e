"""Sanity checks for saliency maps (Adebayo et al., NeurIPS 2018), for single models and for a zoo's mean map.

- **Model parameter randomization**: re-initialize layers and see whether the map changes. *Cascading*: from the
  logits down to the first layer, cumulatively; *independent*: one layer at a time, the others trained. A method
  whose map survives the randomization of the layers it is meant to explain is insensitive to the model.
- **Class sensitivity** (Khakzar et al. 2020; Sixt et al.'s "random logit"): the map of the predicted class against
  the map of another class; a map that does not change explains the image, not the decision.
- **Similarity** of two maps: Spearman rank correlation of the signed and of the absolute maps, SSIM and the
  correlation of HOG features (scikit-image), as in Adebayo et al.'s code, and Pearson correlation.

Randomization works on deep copies, seeded per (seed, model, layer): the trained zoo is untouched, on disk and in
memory, and the same layer gets the same new weights in the cascading and in the independent test. The new weights
come from each layer's own initializer (``reset_parameters``, the architecture's initialization), drawn on the CPU so
that they do not depend on the device; a BatchNorm that follows a randomized layer is reset with it.
*Single vs marginalized*: the single test compares each model's maps; the marginalized test compares the zoo's mean
maps (each map divided by its largest |value| first), with the same layers randomized in every model.
"""
from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..attribution.maps import normalize
from ..attribution.parallel import per_model
from ..attribution.registry import as_target, attribute, check_inputs, get_method
from .intervals import Interval, mean_interval

METRICS = ("spearman_abs", "spearman", "ssim", "hog", "pearson")


METRIC_LABELS = {"spearman_abs": "Spearman ρ of |map|", "spearman": "Spearman ρ (signed)", "ssim": "SSIM of |map|",
                 "hog": "HOG similarity of |map|", "pearson": "Pearson r (signed)"}


_LAYERS = (nn.Conv2d, nn.Linear)


def layers(model: nn.Module) -> list[str]:
    """Names of the randomizable layers (convolutions and linear layers), from the input to the logits."""
    return [name for name, m in model.named_modules() if isinstance(m, _LAYERS)]


def _units(model: nn.Module) -> dict[str, list[str]]:
    """Each layer with the BatchNorm registered right after it (its normalization), reset together."""
    named = [(n, m) for n, m in model.named_modules() if isinstance(m, (*_LAYERS, nn.modules.batchnorm._BatchNorm))]
    out: dict[str, list[str]] = {}
    for i, (name, m) in enumerate(named):
        if isinstance(m, _LAYERS):
            out[name] = [name]
            if i + 1 < len(named) and isinstance(named[i + 1][1], nn.modules.batchnorm._BatchNorm):
                out[name].append(named[i + 1][0])
    return out


def check_layers(model: nn.Module, names: Sequence[str]) -> None:
    known = layers(model)
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"unknown layer(s) {', '.join(map(repr, bad))} of {type(model).__name__}: choose from "
                         f"{', '.join(known)} (helpers.sanity.layers(model))")


def _layer_seed(seed: int, model_index: int, layer_index: int) -> int:
    """A hashed seed, so that no layer is redrawn with the seed that initialized a zoo (small integers)."""
    digest = hashlib.sha256(f"helpers.sanity/{seed}/{model_index}/{layer_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def randomize_(model: nn.Module, names: Sequence[str], seed: int = 0, model_index: int = 0) -> nn.Module:
    """Re-initialize the layers ``names`` of ``model`` **in place** (use on a copy: :func:`randomized`)."""
    check_layers(model, names)
    units, modules, order = _units(model), dict(model.named_modules()), layers(model)
    for name in names:
        for part in units[name]:
            module = modules[part]
            fresh = copy.deepcopy(module).to("cpu").to(memory_format=torch.contiguous_format)  # layout-free draws
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(_layer_seed(seed, model_index, order.index(name)))
                fresh.reset_parameters()
            with torch.no_grad():
                for key, value in fresh.state_dict().items():
                    module.state_dict()[key].copy_(value)
    return model


def randomized(model: nn.Module, names: Sequence[str], seed: int = 0, model_index: int = 0) -> nn.Module:
    """A deep copy of ``model`` (eval mode) with the layers ``names`` re-initialized; ``model`` is unchanged."""
    return randomize_(copy.deepcopy(model).eval(), names, seed, model_index)


def cascade(model: nn.Module, names: Sequence[str] | None = None, seed: int = 0,
            model_index: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """Cascading randomization (Adebayo et al. 2018): yields ("trained", copy), then (layer, copy) with that layer
    and every layer above it re-initialized, from the logits down (``names``: input-to-output order, default all)."""
    names = layers(model) if names is None else list(names)
    check_layers(model, names)
    net = copy.deepcopy(model).eval()
    yield "trained", net
    for name in reversed(names):
        randomize_(net, [name], seed, model_index)
        yield name, net


def independent(model: nn.Module, names: Sequence[str] | None = None, seed: int = 0,
                model_index: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """Independent randomization: yields ("trained", copy), then (layer, copy with only that layer re-initialized),
    from the logits down."""
    names = layers(model) if names is None else list(names)
    check_layers(model, names)
    yield "trained", copy.deepcopy(model).eval()
    for name in reversed(names):
        yield name, randomized(model, [name], seed, model_index)


@dataclass(frozen=True)
class Randomization:
    """Channel-summed maps ``maps[method]`` (S, M, N, H, W) of M models at S randomization steps (step 0: trained;
    step s: ``steps[s]`` randomized, cumulatively from the logits down for ``mode="cascading"``)."""

    mode: str
    steps: list[str]
    maps: dict[str, torch.Tensor]


def randomization_maps(methods: Sequence[str], models: Sequence[nn.Module], inputs: torch.Tensor, target,
                       mode: str = "cascading", names: Sequence[str] | None = None, seed: int = 0,
                       method_kwargs: dict[str, dict] | None = None) -> Randomization:
    """Maps of every method for every model at every randomization step, batched over the images.

    The explained class ``target`` stays fixed (one per image). Model k's layers get seed (``seed``, k, layer)."""
    if mode not in ("cascading", "independent"):
        raise ValueError(f"mode={mode!r}: use 'cascading' or 'independent'")
    for m in methods:
        get_method(m)
    if not models:
        raise ValueError("no models: pass a non-empty list (e.g. kit.models[:4])")
    check_inputs(inputs, models[0])
    t = as_target(target, inputs.shape[0], inputs.device, models[0])
    kw = method_kwargs or {}
    walk = cascade if mode == "cascading" else independent
    per: dict[str, list[list[torch.Tensor]]] = {m: [] for m in methods}
    steps: list[str] = []
    for k, model in enumerate(models):
        steps = []
        for step, net in walk(model, names, seed, k):
            steps.append(step)
            for m in methods:
                if len(per[m]) < len(steps):
                    per[m].append([])
                per[m][len(steps) - 1].append(attribute(m, net, inputs, t, **kw.get(m, {})).sum(-3))
    return Randomization(mode, steps, {m: torch.stack([torch.stack(s) for s in per[m]]) for m in methods})


def class_pair(models: Sequence[nn.Module], inputs: torch.Tensor, other: str = "random",
               seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the zoo's predicted class (highest mean logit) and another class: a seeded random one
    (``other="random"``) or the runner-up (``"runner_up"``)."""
    from ..zoo.outputs import zoo_logits

    mean = zoo_logits(models, inputs).mean(0)
    ranked = mean.argsort(1, descending=True)
    if other == "runner_up":
        return ranked[:, 0], ranked[:, 1]
    if other != "random":
        raise ValueError(f"other={other!r}: use 'random' or 'runner_up'")
    gen = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, mean.shape[1], (mean.shape[0],), generator=gen).to(ranked.device)
    return ranked[:, 0], (ranked[:, 0] + shift) % mean.shape[1]


def class_maps(methods: Sequence[str], models: Sequence[nn.Module], inputs: torch.Tensor, first: torch.Tensor,
               second: torch.Tensor, method_kwargs: dict[str, dict] | None = None) -> dict[str, torch.Tensor]:
    """Channel-summed maps (2, M, N, H, W) of every method: explaining class ``first``, then ``second``."""
    kw = method_kwargs or {}
    return {m: torch.stack([torch.stack(per_model(m, models, inputs, c, **kw.get(m, {}))).sum(-3)
                            for c in (first, second)]) for m in methods}


def _ranks(a: np.ndarray) -> np.ndarray:
    from .ranks import average_ranks

    return average_ranks(torch.from_numpy(a)).numpy()


def _unit_abs(a: np.ndarray) -> np.ndarray:
    a = np.abs(a)
    return a / np.maximum(a.max(axis=(-2, -1), keepdims=True), 1e-12)


def _hog(a: np.ndarray) -> np.ndarray:
    from skimage.feature import hog

    h, w = a.shape[-2:]
    cell = max(2, min(h, w) // 7)
    flat = a.reshape(-1, h, w)
    return np.stack([hog(m, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2)) for m in flat])


def _features(a: torch.Tensor, metric: str) -> torch.Tensor:
    """What a correlation metric correlates, per map (..., H, W) -> (..., F): ranks of the signed or absolute
    values, HOG features of the absolute map, or the values themselves."""
    lead, (h, w) = a.shape[:-2], a.shape[-2:]
    x = a.reshape(-1, h, w).numpy()
    if metric == "pearson":
        f = x.reshape(len(x), -1)
    elif metric in ("spearman", "spearman_abs"):
        f = _ranks((np.abs(x) if metric == "spearman_abs" else x).reshape(len(x), -1))
    else:
        f = _hog(_unit_abs(x))
    return torch.from_numpy(np.asarray(f, dtype=np.float64)).view(*lead, -1)


def _correlation(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """Pearson correlation over the last axis, broadcasting; 0 where either side is constant."""
    fa = fa - fa.mean(-1, keepdim=True)
    fb = fb - fb.mean(-1, keepdim=True)
    den = fa.norm(dim=-1) * fb.norm(dim=-1)
    num = (fa * fb).sum(-1)
    return torch.where(den > 1e-12, num / den.clamp_min(1e-12), torch.zeros_like(num)).float()


def similarity(a: torch.Tensor, b: torch.Tensor, metric: str = "spearman_abs") -> torch.Tensor:
    """Similarity of maps ``a`` and ``b`` (..., H, W), broadcast over the leading axes: one of :data:`METRICS`.

    Correlations with a constant map are 0 (no shared structure). SSIM and HOG compare the absolute maps scaled to
    [0, 1] (SSIM with a 7-pixel window, HOG with 9 orientations in cells of about a seventh of the image). Ranks and
    HOG features are computed once per map, before broadcasting."""
    if metric not in METRICS:
        raise ValueError(f"unknown similarity {metric!r}: choose one of {', '.join(METRICS)}")
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    if metric != "ssim":
        return _correlation(_features(a, metric), _features(b, metric))
    from skimage.metrics import structural_similarity

    a, b = torch.broadcast_tensors(a, b)
    lead, (h, w) = a.shape[:-2], a.shape[-2:]
    x, y = _unit_abs(a.reshape(-1, h, w).numpy()), _unit_abs(b.reshape(-1, h, w).numpy())
    win = min(7, h, w) - (1 - min(7, h, w) % 2)  # the largest odd window that fits, at most 7
    out = [structural_similarity(p, q, data_range=1.0, win_size=win) for p, q in zip(x, y)]
    return torch.tensor(out, dtype=torch.float32).view(lead)


def single_similarity(before: torch.Tensor, after: torch.Tensor, metric: str) -> torch.Tensor:
    """Per-model similarity of maps (…, M, N, H, W): one value per model and image."""
    return similarity(before, after, metric)


def zoo_mean(maps: torch.Tensor) -> torch.Tensor:
    """The marginalized map: mean over the models axis (-4) of maps each divided by its largest |value|."""
    return normalize(maps, "maxabs").mean(-4)


def marginal_similarity(before: torch.Tensor, after: torch.Tensor, metric: str) -> torch.Tensor:
    """Similarity of the zoo's mean maps (…, M, N, H, W) -> (…, N)."""
    return similarity(zoo_mean(before), zoo_mean(after), metric)


def curves(result: Randomization, metric: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per method: single similarities (S, M, N) and marginalized ones (S, N) of every step with the trained maps."""
    out = {}
    for m, maps in result.maps.items():
        out[m] = (single_similarity(maps[:1], maps, metric), marginal_similarity(maps[:1], maps, metric))
    return out


def interval(values: torch.Tensor, n_boot: int = 1000, level: float = 0.9, seed: int = 0) -> Interval:
    """Mean with a multi-bootstrap interval (:func:`helpers.intervals.mean_interval`): of (M, N) values over models
    and images, of (N,) values (a marginalized map is one per image) over images."""
    if values.ndim in (1, 2):
        return mean_interval(values if values.ndim == 2 else values[None], n_boot, level, seed)
    raise ValueError(f"values of shape {tuple(values.shape)}: pass (models, images) or (images,)")


def verdict(iv: Interval, threshold: float) -> str:
    """"passes" if the whole interval of the similarity lies below ``threshold`` (the map changed), "fails" if it
    lies at or above it (the map survived), "undecided" if it straddles it."""
    if iv.high < threshold:
        return "passes"
    if iv.low >= threshold:
        return "fails"
    return "undecided"


def cascade_score(sims: torch.Tensor) -> torch.Tensor:
    """A method's cascading score: its similarity to the trained map averaged over the randomized steps (the area
    under Adebayo et al.'s curve, normalized), from (S, …) similarities whose step 0 is the trained model."""
    return sims[1:].mean(0)


def images_per_second(methods: Sequence[str], model: nn.Module, inputs: torch.Tensor, target,
                      method_kwargs: dict[str, dict] | None = None, repeats: int = 3,
                      budget: float = 0.5) -> dict[str, float]:
    """Throughput of each method on this machine (Huber et al. 2021's run-time comparison): images per second of
    one batched call on ``inputs``, the best of up to ``repeats`` calls (fewer once ``budget`` seconds are spent),
    after a one-image warm-up call (imports, hooks)."""
    kw = method_kwargs or {}
    t = as_target(target, inputs.shape[0], inputs.device)
    sync = (lambda: torch.cuda.synchronize(inputs.device)) if inputs.device.type == "cuda" else (lambda: None)
    out = {}
    for m in methods:
        attribute(m, model, inputs[:1], t[:1], **kw.get(m, {}))
        best, spent = float("inf"), 0.0
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            attribute(m, model, inputs, t, **kw.get(m, {}))
            sync()
            took = time.perf_counter() - start
            best, spent = min(best, took), spent + took
            if spent > budget:
                break
        out[m] = inputs.shape[0] / max(best, 1e-9)
    return out


def model_maps(methods: Sequence[str], models: Sequence[nn.Module], inputs: torch.Tensor, target,
               method_kwargs: dict[str, dict] | None = None) -> dict[str, torch.Tensor]:
    """Channel-summed maps (M, N, H, W) of every method for every model, explaining ``target``."""
    if not models:
        raise ValueError("no models: pass a non-empty list (e.g. a random-label zoo's models)")
    check_inputs(inputs, models[0])
    t = as_target(target, inputs.shape[0], inputs.device, models[0])
    kw = method_kwargs or {}
    return {m: torch.stack(per_model(m, models, inputs, t, **kw.get(m, {}))).sum(-3) for m in methods}


def data_randomization(trained: torch.Tensor, shuffled: torch.Tensor,
                       metric: str = "spearman_abs") -> tuple[torch.Tensor, torch.Tensor]:
    """Adebayo et al.'s data randomization test: the similarity between the maps (M, N, H, W) of models trained on
    the true labels and of models with the same seeds trained on permuted labels, same images and explained class.
    Returns (single (M, N): model k against random-label model k; marginalized (N,): the two zoos' mean maps).
    A method passes where the similarity is low (the map depends on what the labels taught the model)."""
    if trained.shape != shuffled.shape:
        raise ValueError(f"maps of {tuple(trained.shape)} and {tuple(shuffled.shape)}: give both zoos the same "
                         "number of models (the random-label zoo has the first models' seeds), images and classes")
    return single_similarity(trained, shuffled, metric), marginal_similarity(trained, shuffled, metric)


# --- symmetric comparison of single-model and zoo-mean scores -----------------------------------------------------
#
# A single-model score is a mean over models and images, so its multi-bootstrap resamples both. The zoo's mean map
# depends on which models were averaged just as much; resampling only its images would give it a narrower interval
# than the single score for a reason that has nothing to do with the maps, and verdict "changes" at the threshold
# would follow from interval width alone. Here both readings use the *same* replicates: replicate r draws the models
# (one of ``n_model_draws`` model draws, reused in turn) and the images; the single score averages the drawn models'
# similarities over the drawn images, the zoo-mean score compares the mean maps of the drawn models (trained and
# randomized, or trained and random-label, the same draw on both sides) over the same images. Their paired
# difference (single − zoo mean) comes from the same replicates.


@dataclass(frozen=True)
class Scores:
    """A test's similarities: ``single`` (M, N) per model and image; ``point`` (N,) of the whole zoo's mean maps;
    ``draws`` (P, N) of the mean maps of P model draws (:func:`model_pool`). Linear statistics of these (a mean
    over steps, a difference of two methods) are again :class:`Scores` with the same draws."""

    single: torch.Tensor
    point: torch.Tensor
    draws: torch.Tensor

    def __sub__(self, other: Scores) -> Scores:
        return Scores(self.single - other.single, self.point - other.point, self.draws - other.draws)


@dataclass(frozen=True)
class Paired:
    """Single-model and zoo-mean score of one test from the same replicates, and their paired difference."""

    single: Interval
    marginal: Interval
    diff: Interval


def model_pool(n_models: int, n_model_draws: int = 100, seed: int = 0) -> torch.Tensor:
    """(P, M) counts of P model draws with replacement (seeded); draw 0 is the whole zoo once each, so that the
    first replicate is the observed zoo."""
    if n_models < 1 or n_model_draws < 1:
        raise ValueError("a model pool needs at least one model and one draw")
    gen = torch.Generator().manual_seed(int(seed) + 7919)
    idx = torch.randint(n_models, (n_model_draws, n_models), generator=gen)
    idx[0] = torch.arange(n_models)
    return torch.zeros(n_model_draws, n_models, dtype=torch.float64).scatter_add_(
        1, idx, torch.ones(idx.shape, dtype=torch.float64))


def draw_means(maps: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """Mean maps of the model draws: maps (…, M, N, H, W), each divided by its largest |value|, weighted by the
    pool's counts (P, M) -> (P, …, N, H, W)."""
    w = (pool / pool.sum(1, keepdim=True)).to(torch.float32)
    return torch.einsum("pm,...mnhw->p...nhw", w, normalize(maps.detach().float().cpu(), "maxabs"))


def step_scores(before: torch.Tensor, after: torch.Tensor, metric: str, pool: torch.Tensor) -> list[Scores]:
    """Per step s the :class:`Scores` of ``after[s]`` against ``before`` (maps (Sb, M, N, H, W) with Sb = 1 or S,
    and (S, M, N, H, W)); the zoo-mean side compares the mean maps of the same model draw on both sides."""
    if before.ndim == 4:
        before, after = before[None], after[None]
    single = single_similarity(before, after, metric)  # (S, M, N)
    point = marginal_similarity(before, after, metric)  # (S, N)
    draws = _draw_similarity(before, after, metric, pool)  # (P, S, N)
    return [Scores(single[s], point[s], draws[:, s]) for s in range(single.shape[0])]


def _draw_similarity(before: torch.Tensor, after: torch.Tensor, metric: str, pool: torch.Tensor) -> torch.Tensor:
    """Similarities (P, S, N) of the draws' mean maps; a step whose maps are the trained ones (a cascade's step 0)
    is compared through the trained side's features, computed once (ranks are the cost)."""
    mb, n_steps = draw_means(before, pool), after.shape[0]
    same = [before.shape[0] == 1 and torch.equal(after[s], before[0]) for s in range(n_steps)]
    if metric == "ssim" or not any(same):
        return similarity(mb, draw_means(after, pool), metric)
    keep = [s for s in range(n_steps) if not same[s]]
    fb = _features(mb, metric)  # (P, 1, N, F)
    out = _correlation(fb, fb).expand(-1, n_steps, -1).clone()
    if keep:
        out[:, keep] = _correlation(fb, _features(draw_means(after[keep], pool), metric))
    return out


def mean_scores(scores: Sequence[Scores]) -> Scores:
    """The mean of several tests' scores (e.g. over the steps of a cascade), draw by draw."""
    return Scores(*(torch.stack([getattr(s, k) for s in scores]).mean(0) for k in ("single", "point", "draws")))


def paired_replicates(scores: Scores, pool: torch.Tensor, n_boot: int = 1000,
                      seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Bootstrap replicates (n_boot,) of the single and the zoo-mean score: replicate r takes model draw r mod P of
    ``pool`` for both and the same image draw (:func:`helpers.evaluation.intervals.draw_counts`) for both."""
    from .intervals import draw_counts

    m, n = scores.single.shape
    if pool.shape[1] != m or scores.draws.shape != (pool.shape[0], n):
        raise ValueError(f"scores of {m} models and {n} images do not fit a pool of shape {tuple(pool.shape)}")
    _, ci = draw_counts(m, n, n_boot, seed)  # (R, N)
    which = torch.arange(n_boot) % pool.shape[0]
    cm = pool[which]  # (R, M)
    single = torch.einsum("mn,rm,rn->r", scores.single.double(), cm, ci) / (cm.sum(1) * n)
    marginal = (scores.draws.double()[which] * ci).sum(1) / n
    return single, marginal


def paired_interval(scores: Scores, pool: torch.Tensor, n_boot: int = 1000, level: float = 0.9,
                    seed: int = 0) -> Paired:
    """Single and zoo-mean score with intervals from the same replicates, and the interval of their difference.

    The replicates are centred on the observed value before their percentiles are read (a bias-corrected
    percentile interval, the same on both sides): a resampled zoo holds repeated models, about 63 % distinct, so
    its mean map averages fewer seeds and its similarity is shifted against the whole zoo's; the shift is a
    property of resampling, not of the zoo, and without the correction the zoo mean's point could fall outside its
    own interval. For the single score (a mean) the replicates' mean is the point already, so it hardly moves."""
    from .intervals import percentile

    single, marginal = paired_replicates(scores, pool, n_boot, seed)
    s, g = float(scores.single.double().mean()), float(scores.point.double().mean())
    centred = lambda reps, point: reps - reps[torch.isfinite(reps)].mean() + point  # noqa: E731
    return Paired(percentile(s, centred(single, s), level), percentile(g, centred(marginal, g), level),
                  percentile(s - g, centred(single - marginal, s - g), level))


def asymmetric_interval(scores: Scores, n_boot: int = 1000, level: float = 0.9, seed: int = 0) -> tuple[Interval,
                                                                                                         Interval]:
    """The asymmetric reading, kept as the contrast: the single score over models and images, the zoo mean over
    images only (its models held fixed), so its interval leaves out the variation between models."""
    return interval(scores.single, n_boot, level, seed), interval(scores.point, n_boot, level, seed)


def edge_maps(inputs: torch.Tensor) -> torch.Tensor:
    """A model-independent "explanation", Adebayo et al.'s edge detector: the Sobel gradient magnitude of the
    channel-summed image (N, C, H, W) -> (N, H, W). It ignores the model, so it must fail every randomization test
    (the known answer of a negative control)."""
    x = inputs.detach().float().cpu().sum(1, keepdim=True)
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    gx = torch.nn.functional.conv2d(x, k.view(1, 1, 3, 3), padding=1)
    gy = torch.nn.functional.conv2d(x, k.t().reshape(1, 1, 3, 3), padding=1)
    return (gx ** 2 + gy ** 2).sqrt()[:, 0]


def noise_maps(shape: Sequence[int], seed: int = 0) -> torch.Tensor:
    """Maps of i.i.d. Gaussian noise, fresh for every model, step and image: a map that shares nothing with any
    other, so it must pass every test (the known answer of a positive control)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(int(seed) + 104729))


def differs(diff: Interval, tol: float = 1e-6) -> bool:
    """Whether a paired difference's interval excludes 0 by more than rounding (``tol``): readings that agree
    exactly (a control, a linear statistic) differ only in the last bits of float32 sums."""
    return bool(diff.low > tol or diff.high < -tol)
