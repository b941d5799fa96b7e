"""Deep dream ("inceptionism") for a class logit of one network or of an ensemble of seeded networks.

Gradient ascent on the *input* (Mordvintsev, Olah & Tyka 2015, *Inceptionism*; Olah, Mordvintsev & Schubert 2017,
*Feature Visualization*): starting from a grey, mean or noise image, follow the gradient of the class logit
:math:`z_c` with respect to the pixels. Woerl, Disselhoff & Wand (*Initialization Noise in Image Gradients and
Saliency Maps*, CVPR 2023) show that input gradients of a single network are dominated by initialization noise and
that averaging over seeds removes it; their poster applies the same "stochastic integration" to deep dream, ascending
the mean logit of an ensemble of 20 networks instead of one. The update implemented here is

.. math::

    x_{t+1} = \\operatorname{clamp}\\Big(x_t + \\eta\\, \\hat g_t - \\nabla R(x_t)\\Big), \\qquad
    g_t = \\nabla_x \\frac{1}{M} \\sum_{m=1}^{M} z_c\\big(\\theta_m, \\operatorname{roll}(x_t)\\big),

where :math:`\\hat g_t = g_t / \\operatorname{mean}|g_t|` (per image, as in the original deep-dream code, so that
one network and an ensemble take steps of the same size), ``roll`` is a random jitter drawn anew every step,
:math:`R(x) = \\tfrac{\\lambda_2}{2}\\lVert x\\rVert^2 + \\lambda_{TV}\\, \\mathrm{TV}(x)` an optional penalty, every
few steps the image is blurred with a small Gaussian, and ``clamp`` keeps every pixel in the dataset's valid range
(in normalized units). A single network is an ensemble of one. The hyperparameters of the poster are not published;
the defaults of :class:`DreamConfig` are ours, tuned on LeNets trained on MNIST.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Literal, Mapping, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from .marginal import meta_copy, stack_models
from .zoo import logits as batched_logits
from .zoo import zoo_logits

START_KINDS = ("mean", "grey", "noise")


@dataclass(frozen=True)
class DreamConfig:
    """Hyperparameters of :func:`dream` (defaults: ours, tuned on LeNet/MNIST; the paper gives none).

    Attributes:
        steps: number of gradient-ascent steps T.
        step_size: η, the mean absolute change of a pixel per step in normalized units (the gradient is divided by
            its mean absolute value per image when ``normalize_grad``; otherwise η multiplies the raw gradient).
        normalize_grad: divide the logit gradient by its per-image mean |g| (Mordvintsev et al. 2015), so that one
            network and an ensemble, whose averaged gradient is smaller, take steps of the same size.
        jitter: largest random shift (pixels, both axes, wrapping around) applied before each gradient; 0 = off.
        blur_every: blur the image every this many steps; 0 = never.
        blur_sigma: standard deviation (pixels) of that Gaussian blur.
        l2: λ₂ of the penalty λ₂/2·‖x‖² (pulls pixels towards the dataset mean, which is 0 after normalization).
        tv: λ_TV of the anisotropic total-variation penalty Σ|x_{i+1,j}−x_{i,j}| + |x_{i,j+1}−x_{i,j}|.
        start: initial image: ``"mean"`` (the dataset's mean pixel, i.e. 0 in normalized units), ``"grey"`` (pixel
            value 0.5) or ``"noise"`` (``"mean"`` plus Gaussian noise of standard deviation ``noise_std``).
        noise_std: standard deviation (normalized units) of the start noise for ``start="noise"``.
        seed: seeds the start noise and the jitter, so a run is reproducible.
        snapshot_every: keep the image every this many steps (plus step 0 and the last step) for a slider.
        clamp: keep pixels inside the valid range [0, 1] of the dataset (mapped to normalized units).
    """

    steps: int = 200
    step_size: float = 0.05
    normalize_grad: bool = True
    jitter: int = 1
    blur_every: int = 4
    blur_sigma: float = 0.5
    l2: float = 0.0
    tv: float = 0.0
    start: str = "noise"
    noise_std: float = 0.1
    seed: int = 0
    snapshot_every: int = 10
    clamp: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps={self.steps}: use at least 1 step")
        if self.step_size <= 0:
            raise ValueError(f"step_size={self.step_size}: use a positive step size")
        if self.snapshot_every < 1:
            raise ValueError(f"snapshot_every={self.snapshot_every}: use 1 or more")
        if self.jitter < 0 or self.blur_every < 0:
            raise ValueError("jitter and blur_every must be ≥ 0: use 0 to switch them off")
        if self.blur_every and self.blur_sigma <= 0:
            raise ValueError(f"blur_sigma={self.blur_sigma}: use a positive sigma or blur_every=0")
        if self.l2 < 0 or self.tv < 0 or self.noise_std < 0:
            raise ValueError("l2, tv and noise_std must be ≥ 0: use 0 to switch a term off")
        if self.start not in START_KINDS:
            raise ValueError(f"unknown start {self.start!r}: use one of {', '.join(START_KINDS)}")

    def replace(self, **changes) -> "DreamConfig":
        """A copy with some fields changed."""
        return DreamConfig(**{**asdict(self), **changes})


class DreamResult(NamedTuple):
    """What :func:`dream` returns (all tensors on the CPU).

    Attributes:
        images: (B, C, H, W) final images, normalized units.
        snapshots: (S, B, C, H, W) images at ``snapshot_steps``.
        snapshot_steps: the step numbers of the snapshots: 0, k, 2k, …, and always ``steps``.
        logits: (T+1, B, K) ensemble-mean logits of x_0 … x_T (unjittered), per class K.
        probs: (T+1, B, K) ensemble-mean softmax probabilities of x_0 … x_T.
        classes: (B,) the target class of each image.
    """

    images: torch.Tensor
    snapshots: torch.Tensor
    snapshot_steps: list[int]
    logits: torch.Tensor
    probs: torch.Tensor
    classes: torch.Tensor

    def target_logits(self) -> torch.Tensor:
        """(T+1, B) the ensemble-mean logit of each image's own target class, per step."""
        return self.logits.gather(2, self._idx()).squeeze(2)

    def target_probs(self) -> torch.Tensor:
        """(T+1, B) the ensemble-mean softmax probability of each image's target class, per step."""
        return self.probs.gather(2, self._idx()).squeeze(2)

    def _idx(self) -> torch.Tensor:
        return self.classes.view(1, -1, 1).expand(self.logits.shape[0], -1, 1)


class Ensemble(nn.Module):
    """The logits of M networks of one architecture at once: ``forward(x)`` → (M, B, K).

    ``mode="loop"`` calls the networks one after the other; ``mode="vmap"`` stacks their parameters and runs one
    ``torch.func.vmap`` of ``functional_call`` (identical results; which is faster depends on the size of the
    networks and the device). Measured for 20 LeNets, 10 MNIST images, one dream step (forward + backward + a
    no-grad forward) on a shared 2-core CPU with one thread: loop 107 ms, vmap 78 ms. ``"loop"`` is the default
    because it works for any list of networks; vmap needs one architecture and vmap-compatible layers. The
    networks should be in eval mode.
    """

    def __init__(self, models: Sequence[nn.Module], mode: Literal["loop", "vmap"] = "loop") -> None:
        super().__init__()
        models = list(models)
        if not models:
            raise ValueError("empty model list: pass at least one network (a single network is an ensemble of one)")
        if mode not in ("loop", "vmap"):
            raise ValueError(f"unknown mode {mode!r}: use 'loop' or 'vmap'")
        self.mode = mode
        self.models = models  # a plain list: not registered, so .to()/.train() of the ensemble leave them alone
        if mode == "vmap":
            self._params, self._buffers = stack_models(models)
            self._base = meta_copy(models[0])

    def __len__(self) -> int:
        return len(self.models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "loop":
            return torch.stack([m(x) for m in self.models])
        from torch.func import functional_call, vmap

        def one(params: dict, buffers: dict, inp: torch.Tensor) -> torch.Tensor:
            return functional_call(self._base, (params, buffers), (inp,))

        return vmap(one, in_dims=(0, 0, None))(self._params, self._buffers, x)


def pixel_bounds(mean: Sequence[float], std: Sequence[float], device: torch.device | str = "cpu"
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalized values of pixel 0 and pixel 1 per channel, each (1, C, 1, 1)."""
    if len(mean) != len(std) or not len(mean):
        raise ValueError(f"mean has {len(mean)} entries and std {len(std)}: give one of each per channel")
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return (0 - m) / s, (1 - m) / s


def start_images(n: int, image_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
                 config: DreamConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """The seeded start x_0 of :func:`dream`: (n, C, H, W) in normalized units."""
    c, h, w = _check_shape(image_shape)
    if len(mean) != c:
        raise ValueError(f"image has {c} channels but mean/std have {len(mean)}: pass the dataset's mean and std")
    lo, hi = pixel_bounds(mean, std)
    if config.start == "grey":
        x = ((0.5 - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)).expand(n, c, h, w)
    else:
        x = torch.zeros(n, c, h, w)
    if config.start == "noise":
        gen = torch.Generator().manual_seed(config.seed)
        x = x + config.noise_std * torch.randn(n, c, h, w, generator=gen)
    x = torch.maximum(torch.minimum(x, hi), lo) if config.clamp else x
    return x.contiguous().to(device)


def _check_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    if len(image_shape) != 3 or any(int(s) < 1 for s in image_shape):
        raise ValueError(f"image_shape {tuple(image_shape)} is not (C, H, W): pass e.g. ds.image_shape")
    return int(image_shape[0]), int(image_shape[1]), int(image_shape[2])


def _tv(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation of every image, summed over the batch."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().sum() + (x[..., :, 1:] - x[..., :, :-1]).abs().sum()


def _blur_kernel(sigma: float) -> int:
    return 2 * max(1, int(round(2 * sigma))) + 1  # odd, covers ±2σ


def dream(models: Sequence[nn.Module] | nn.Module | Ensemble, classes: Sequence[int] | torch.Tensor,
          image_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
          config: DreamConfig | None = None, x0: torch.Tensor | None = None,
          mode: Literal["loop", "vmap"] = "loop") -> DreamResult:
    """Deep dream: ascend the ensemble-mean logit of ``classes[b]`` for image b, all images in one batch.

    Woerl et al. (CVPR 2023) compare dreams of one network with dreams of an ensemble of 20 networks trained with
    different seeds; pass one model (or a list of one) for the former and the list for the latter.

    Args:
        models: the networks θ_1 … θ_M (eval mode, same input and output size), or one network, or an
            :class:`Ensemble`.
        classes: (B,) target class per image; repeat a class to dream it from several starts (with ``x0``).
        image_shape: (C, H, W) of the inputs, e.g. ``ds.image_shape``.
        mean, std: the dataset's per-channel normalization (``ds.mean``, ``ds.std``), for the start and the clamp.
        config: hyperparameters, :class:`DreamConfig` defaults if None.
        x0: (B, C, H, W) start images in normalized units; if None, :func:`start_images` from ``config``.
        mode: how the ensemble is evaluated (``"loop"`` or ``"vmap"``), see :class:`Ensemble`.

    Returns:
        A :class:`DreamResult` with the final images, the snapshots every ``config.snapshot_every`` steps and the
        ensemble-mean logits and probabilities of every step.
    """
    cfg = config or DreamConfig()
    if isinstance(models, nn.Module) and not isinstance(models, Ensemble):
        models = [models]
    ens = models if isinstance(models, Ensemble) else Ensemble(models, mode=mode)
    c, h, w = _check_shape(image_shape)
    device = next(ens.models[0].parameters()).device
    target = torch.as_tensor(classes, dtype=torch.long).reshape(-1)
    if target.numel() == 0:
        raise ValueError("no classes given: pass at least one target class")
    if x0 is None:
        x = start_images(len(target), (c, h, w), mean, std, cfg, device)
    else:
        if x0.shape != (len(target), c, h, w):
            raise ValueError(f"x0 has shape {tuple(x0.shape)} but needs {(len(target), c, h, w)}: "
                             f"one start image of shape image_shape per class")
        x = x0.detach().to(device, torch.float32).clone()
    lo, hi = pixel_bounds(mean, std, device)
    if lo.shape[1] != c:
        raise ValueError(f"image has {c} channels but mean/std have {lo.shape[1]}: pass the dataset's mean and std")
    target = target.to(device)

    def evaluate(inp: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return ens(inp)

    first = evaluate(x)  # (M, B, K)
    n_classes = first.shape[-1]
    bad = target[(target < 0) | (target >= n_classes)]
    if len(bad):
        raise ValueError(f"unknown class {int(bad[0])}: the networks have {n_classes} classes, use 0 … {n_classes - 1}")
    gen = torch.Generator().manual_seed(cfg.seed + 1)  # jitter stream, independent of the start noise
    ksize = _blur_kernel(cfg.blur_sigma) if cfg.blur_every else 0
    logits, probs = [first.mean(0).cpu()], [first.softmax(-1).mean(0).cpu()]
    snapshots, snap_steps = [x.cpu()], [0]
    pick = F.one_hot(target, n_classes).to(x.dtype)  # (B, K): selects each image's own target logit
    for t in range(1, cfg.steps + 1):
        if cfg.jitter:
            dy, dx = (int(v) for v in torch.randint(-cfg.jitter, cfg.jitter + 1, (2,), generator=gen))
        else:
            dy = dx = 0
        xg = x.detach().requires_grad_(True)
        z = ens(torch.roll(xg, shifts=(dy, dx), dims=(-2, -1)) if (dy or dx) else xg)  # (M, B, K)
        (g,) = torch.autograd.grad((z.mean(0) * pick).sum(), xg)
        if cfg.normalize_grad:
            g = g / g.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
        step = cfg.step_size * g
        if cfg.l2 or cfg.tv:
            xr = x.detach().requires_grad_(True)
            penalty = 0.5 * cfg.l2 * xr.pow(2).sum() + cfg.tv * _tv(xr)
            (gr,) = torch.autograd.grad(penalty, xr)
            step = step - gr
        x = x.detach() + step
        if cfg.blur_every and t % cfg.blur_every == 0:
            x = gaussian_blur(x, kernel_size=[ksize, ksize], sigma=[cfg.blur_sigma, cfg.blur_sigma])
        if cfg.clamp:
            x = torch.maximum(torch.minimum(x, hi), lo)
        zt = evaluate(x)  # logits of the new, unjittered image
        logits.append(zt.mean(0).cpu())
        probs.append(zt.softmax(-1).mean(0).cpu())
        if t % cfg.snapshot_every == 0 or t == cfg.steps:
            snapshots.append(x.cpu())
            snap_steps.append(t)
    return DreamResult(images=x.detach().cpu(), snapshots=torch.stack(snapshots), snapshot_steps=snap_steps,
                       logits=torch.stack(logits), probs=torch.stack(probs), classes=target.cpu())


@torch.no_grad()
def logits_under(models: Sequence[nn.Module], images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """(M, N, K) logits of ``images`` (N, C, H, W) under each of ``models`` (e.g. held-out networks), on CPU."""
    if not len(models):
        raise ValueError("empty model list: pass at least one network")
    device = next(models[0].parameters()).device
    return zoo_logits(models, images.to(device), batch_size).cpu()


def split_zoo(models: Sequence[nn.Module], n_ensemble: int) -> tuple[list[nn.Module], list[nn.Module]]:
    """The first ``n_ensemble`` networks (the ensemble) and the rest (held out, to test how dreams transfer)."""
    models = list(models)
    if not 1 <= n_ensemble < len(models):
        raise ValueError(f"n_ensemble={n_ensemble} but the zoo has {len(models)} networks: use 1 ≤ n_ensemble ≤ "
                         f"{len(models) - 1} (at least one network must be held out) or train a bigger zoo")
    return models[:n_ensemble], models[n_ensemble:]


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


# --- The chapter's experiment: who dreams, who scores, and the numbers its prose cites --------------------------

class DreamRun(NamedTuple):
    """The dreams of :func:`dream_zoo`: single networks, the ensemble, and how long they took.

    Attributes:
        singles: one :class:`DreamResult` per single network 0 … n_single − 1 (each dreams alone).
        ensemble: the dream of the mean logit of all members.
        seconds_single: wall-clock seconds per single-network dream (mean over the single networks).
        seconds_ensemble: wall-clock seconds of the ensemble dream.
    """

    singles: list[DreamResult]
    ensemble: DreamResult
    seconds_single: float
    seconds_ensemble: float


def dream_zoo(members: Sequence[nn.Module], n_single: int, classes: Sequence[int] | torch.Tensor,
              image_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
              config: DreamConfig | None = None, mode: Literal["loop", "vmap"] = "loop") -> DreamRun:
    """Woerl et al. (CVPR 2023)'s comparison: each of the first ``n_single`` members dreams alone, then all members
    dream together (their mean logit), from the same start and with the same jitter; both are timed.

    The single dreamers are members, so the networks left out of ``members`` stay unseen by every dream."""
    members = list(members)
    if not 1 <= n_single <= len(members):
        raise ValueError(f"n_single={n_single} but the ensemble has {len(members)} networks: use 1 ≤ n_single ≤ "
                         f"{len(members)} (single dreamers are members, so held-out networks stay unseen)")
    t0 = time.perf_counter()
    singles = [dream(members[k], classes, image_shape, mean, std, config) for k in range(n_single)]
    t1 = time.perf_counter()
    ens = dream(members, classes, image_shape, mean, std, config, mode=mode)
    t2 = time.perf_counter()
    return DreamRun(singles, ens, (t1 - t0) / n_single, t2 - t1)


def half_ensemble_dreams(members: Sequence[nn.Module], classes: Sequence[int] | torch.Tensor,
                         image_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
                         config: DreamConfig | None = None, mode: Literal["loop", "vmap"] = "loop"
                         ) -> tuple[DreamResult, DreamResult]:
    """The dreams of two disjoint halves of ``members`` (networks 0 … h−1 and h … 2h−1, h = M // 2), same start and
    jitter: how reproducible an ensemble's dream is across seeds, as chapter 1 measured it for gradients."""
    members = list(members)
    half = len(members) // 2
    if half < 1:
        raise ValueError(f"{len(members)} member(s): two disjoint halves need an ensemble of at least 2 networks")
    return (dream(members[:half], classes, image_shape, mean, std, config, mode=mode),
            dream(members[half:2 * half], classes, image_shape, mean, std, config, mode=mode))


def pixel_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) Pearson correlation over all pixels (and channels) between image b of ``a`` and image b of ``b``."""
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)}: pass two (B, ...) batches of equal shape")
    fa, fb = a.flatten(1).double(), b.flatten(1).double()
    fa, fb = fa - fa.mean(1, keepdim=True), fb - fb.mean(1, keepdim=True)
    return ((fa * fb).sum(1) / (fa.norm(dim=1) * fb.norm(dim=1)).clamp_min(1e-12)).float()


def prototype_correlation(images: torch.Tensor, classes: Sequence[int] | torch.Tensor, x: torch.Tensor,
                          y: torch.Tensor) -> torch.Tensor:
    """(B,) Pearson correlation of each dream with the mean real image of its class (the class's "prototype").

    ``images`` (B, C, H, W) and the real images ``x`` (N, C, H, W) in the same units; ``y`` (N,) their labels."""
    classes = torch.as_tensor(classes, dtype=torch.long).reshape(-1)
    if images.shape[0] != len(classes):
        raise ValueError(f"{images.shape[0]} images but {len(classes)} classes: pass one class per image")
    y = y.to(x.device)
    missing = [int(c) for c in classes if not (y == c).any()]
    if missing:
        raise ValueError(f"no real image of class {missing[0]}: pass real images of every dreamt class")
    protos = torch.stack([x[y == c].float().mean(0) for c in classes.tolist()])
    return pixel_correlation(images.float().cpu(), protos.cpu())


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


def threshold_phrase(first_steps: Mapping[str, int | None], threshold: float, steps: int) -> str:
    """Says which curves reach ``threshold`` and by when, from :func:`first_step_at` of each curve."""
    reached = {k: v for k, v in first_steps.items() if v is not None}
    n = len(first_steps)
    if len(reached) == n:
        return f"the mean of every curve reaches {threshold:g} by step {max(reached.values())}"
    if not reached:
        return f"no curve's mean reaches {threshold:g} within the {steps} steps"
    return (f"the means of {len(reached)} of the {n} curves reach {threshold:g} (by step {max(reached.values())}); "
            f"the others stay below it for all {steps} steps")


def networks_phrase(indices: Sequence[int], kind: str = "held-out", span: bool = True) -> str:
    """"4 held-out networks (20–23)" or "1 held-out network (network 2)": a group of networks for the prose
    (without the indices in parentheses if not ``span``)."""
    idx = sorted(int(k) for k in indices)
    if not idx:
        raise ValueError("no networks: pass at least one index")
    if len(idx) == 1:
        return f"1 {kind} network" + (f" (network {idx[0]})" if span else "")
    which = f"{idx[0]}–{idx[-1]}" if idx == list(range(idx[0], idx[-1] + 1)) else ", ".join(map(str, idx))
    return f"{len(idx)} {kind} networks" + (f" ({which})" if span else "")


def when_phrase(step: int | None, steps: int) -> str:
    """"at step 5", or "at no step up to step 100" for a :func:`first_step_at` that never happened."""
    return f"at step {step}" if step is not None else f"at no step up to step {steps}"


def blur_phrase(on: float, off: float, blur_every: int) -> str:
    """The sentence on the blur's cost, from :func:`blur_effect` of the ensemble's own logit."""
    if not blur_every or on != on:  # nan: no step was blurred
        return "No step of this run ended with a blur, so the curves show no blur steps."
    verdict = "the blur costs logit" if on < off else "the blur costs no logit here"
    return (f"On the steps that end with a blur (every {blur_every}) the ensemble's own logit changes by {on:+.3g} "
            f"on average, on the other steps by {off:+.3g}: {verdict}.")


def change_phrase(before: float, after: float, digits: int = 3) -> str:
    """"3.21 lower" / "0.412 higher": how ``after`` compares with ``before`` (``digits`` significant digits)."""
    d = after - before
    return f"{abs(d):.{digits}g} {'lower' if d < 0 else 'higher'}"


def transfer_facts(rows: Mapping[str, Mapping[str, float]], gap: Mapping[str, float]) -> dict[str, str | float]:
    """The comparisons the chapter states, from :func:`transfer_rows` and the :func:`per_network` spread of
    (ensemble dream − single dream) under the held-out networks; every word is picked by its comparison.

    Keys: ``own_word`` (single dream under its own weights vs ensemble dream under its members), ``own_reason``
    (why, only when the single dream is higher), ``held_word``
    (ensemble vs single dream under the held-out networks), ``order`` (whether that order flips), ``single_drop``
    and ``ens_drop`` (own score → held-out score), ``drop_word``, ``margin_word``, ``super_sentence`` and
    ``top1_sentence``."""
    so, sh, em, eh, real = (rows[k] for k in ("single_own", "single_held", "ens_members", "ens_held", "real_held"))
    own_higher, held_higher = so["logit"] > em["logit"], gap["mean"] > 0
    drop_s, drop_e = so["logit"] - sh["logit"], em["logit"] - eh["logit"]
    all_hit = min(rows[k]["top1"] for k in ("single_own", "single_others", "ens_members", "ens_held")) >= 1.0
    beats = sh["logit"] > real["logit"] and eh["logit"] > real["logit"]
    return {
        "own_word": "higher" if own_higher else "lower",
        "own_reason": (": it only has to please one network, and can exploit that network's idiosyncrasies"
                       if own_higher else ""),
        "held_word": "higher" if held_higher else "lower",
        "order": "the order flips" if own_higher == held_higher else "the order stays the same",
        "single_drop": change_phrase(so["logit"], sh["logit"]), "ens_drop": change_phrase(em["logit"], eh["logit"]),
        "drop_word": "less" if drop_e < drop_s else "more",
        "margin_word": "higher" if eh["margin"] > sh["margin"] else "lower",
        "super_sentence": ("Both dreams are “super-stimuli”: under the held-out networks they score higher than real "
                           "images of their class." if beats else "Under the held-out networks, not both dreams "
                           "score higher than real images of their class."),
        "top1_sentence": ("Every final dream is classified as its target by every network of the zoo: the top-1 test "
                          "cannot tell the two dreams apart, the logits and margins can." if all_hit else
                          f"Not every dream is classified as its target by every network: the other networks give "
                          f"network 0's dream its target for {rows['single_others']['top1']:.0%} of the "
                          f"(network, class) pairs, the held-out networks the ensemble's dream for "
                          f"{eh['top1']:.0%}."),
    }


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


def similarity_facts(sim: Mapping[str, torch.Tensor], n_ensemble: int) -> dict[str, str | float | int]:
    """What the chapter says about :func:`dream_similarity`: ``r_<name>_<mean|sd|min|max>`` over classes, the
    half-ensemble size ``half``, per-class counts (``half_n_higher``: classes where the half-ensembles agree better
    than networks 0 and 1; ``proto_n_higher``: where the ensemble's dream is closer to the class mean than network
    0's) and the words and sentences picked by those comparisons."""
    facts: dict[str, str | float | int] = {f"r_{k}_{stat}": v for k, vals in sim.items()
                                           for stat, v in spread(vals).items()}
    half_better = facts["r_half_mean"] > facts["r_single_mean"]
    facts.update({
        "half": n_ensemble // 2,
        "half_note": (" (with an ensemble this small the halves are single networks: networks 0 and 1 themselves)"
                      if n_ensemble // 2 == 1 else ""),
        "half_n_higher": int((sim["half"] > sim["single"]).sum()),
        "half_word": "more closely" if half_better else "no more closely",
        "repro_sentence": ("Averaging the logits over seeds removes part of the seed from the dream, as averaging "
                           "the gradients removed it from the saliency maps of chapter 1." if half_better else
                           "In this run, averaging the logits over seeds did not make the dream more reproducible."),
        "proto_n_higher": int((sim["proto_ensemble"] > sim["proto_single"]).sum()),
        "proto_word": "closer to" if facts["r_proto_ensemble_mean"] > facts["r_proto_single_mean"] else "no closer to",
    })
    return facts
