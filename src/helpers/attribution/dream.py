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
from typing import Literal, NamedTuple, Sequence
import torch
import torch.nn.functional as F
from torch import nn

from ..zoo.stacking import meta_copy, stack_models


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
            from torchvision.transforms.functional import gaussian_blur  # here: torchvision takes a second to import

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


def split_zoo(models: Sequence[nn.Module], n_ensemble: int) -> tuple[list[nn.Module], list[nn.Module]]:
    """The first ``n_ensemble`` networks (the ensemble) and the rest (held out, to test how dreams transfer)."""
    models = list(models)
    if not 1 <= n_ensemble < len(models):
        raise ValueError(f"n_ensemble={n_ensemble} but the zoo has {len(models)} networks: use 1 ≤ n_ensemble ≤ "
                         f"{len(models) - 1} (at least one network must be held out) or train a bigger zoo")
    return models[:n_ensemble], models[n_ensemble:]


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
