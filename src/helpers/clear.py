"""CLEAR class-dominance maps (Kumar, Wong & Taylor, *Explaining the Unexplained: A CLass-Enhanced Attentive
Response (CLEAR) Approach to Understanding Deep Neural Networks*, CVPR Workshops 2017, arXiv:1704.04133).

For an image x and **every** class k, a response map R_k(x) (H×W) back-projects class k's score onto the input.
CLEAR then shows, per pixel p, the *dominant class* Ĉ(p) = argmax_k R_k(p) as a hue and the *dominant response*
R̂(p) = max_k R_k(p) as brightness, so one picture says where the network looks and for which class.
Marginalized CLEAR averages R_k over M seeded models *before* the argmax (Woerl et al., CVPR 2023).

Back-projection (our reading; the paper gives no equations): the paper back-projects the class response with a
"fractional stride convolution", i.e. a deconvnet (Zeiler & Fergus 2014). captum's ``Deconvolution`` does exactly
that for a class logit (transposed weights, ReLU on the backward signal, max-unpooling with the forward switches), so
it is the default ``backend``. ``"gradient_x_input"`` (signed x ⊙ ∂z_k/∂x) is the alternative.
All K classes are computed in one batched pass per chunk: every image is repeated K times with targets 0…K−1.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from plotly.colors import hex_to_rgb
from torch import nn

from . import maps
from .attribution import attribute, check_inputs
from .marginal import MarginalMaps
from .zoo import logits as batched_logits

Backend = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def _deconvolution(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    from captum.attr import Deconvolution

    with warnings.catch_warnings():  # captum announces its ReLU hooks and the requires_grad it sets
        warnings.simplefilter("ignore", UserWarning)
        return Deconvolution(model).attribute(x, target=target)


def _gradient_x_input(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return attribute("input_x_gradient", model, x, target)


BACKENDS: dict[str, Backend] = {"deconvolution": _deconvolution, "gradient_x_input": _gradient_x_input}

# Paul Tol's "light" qualitative scheme (P. Tol, *Colour Schemes*, SRON/EPS/TN/09-002, 2021; 8 colours + pale grey),
# chosen because all its colours are bright on the black background of a CLEAR map, plus the purple of his "muted"
# scheme as a tenth class colour. Distinct for common colour-vision deficiencies up to 9 classes; the legend (and
# hover text) disambiguates the rest.
PALETTE: tuple[str, ...] = ("#77AADD", "#EE8866", "#EEDD88", "#FFAABB", "#99DDFF", "#44BB99", "#BBCC33",
                            "#AAAA00", "#DDDDDD", "#AA4499")
PALETTE_SOURCE = "Paul Tol, Colour Schemes (SRON/EPS/TN/09-002): 'light' scheme + 'muted' purple"
# For more than ten classes (25 dog breeds): 13 hues × 2 saturations at full value, interleaved so that neighbouring
# class indices differ in hue. Value is left free for the response (brightness), and every colour has its own
# chromaticity, so :func:`palette_index` can invert a rendering. No palette of that size is colour-blind safe; the
# legend and hover text name the classes.
def _hsv_palette(n_hues: int = 13, saturations: tuple[float, ...] = (1.0, 0.5)) -> tuple[str, ...]:
    import colorsys

    out = []
    for s in saturations:
        for k in range(n_hues):
            h = (k * 5 % n_hues) / n_hues  # step 5 of 13 around the wheel: neighbours get distant hues
            r, g, b = colorsys.hsv_to_rgb(h, s, 1.0)
            out.append("#{:02X}{:02X}{:02X}".format(*(round(255 * v) for v in (r, g, b))))
    return tuple(out)


EXTENDED_PALETTE: tuple[str, ...] = _hsv_palette()


def palette_for(n_classes: int) -> tuple[str, ...]:
    """The colour-blind-safe :data:`PALETTE` for up to ten classes, else :data:`EXTENDED_PALETTE` (up to 26)."""
    if n_classes <= len(PALETTE):
        return PALETTE
    if n_classes <= len(EXTENDED_PALETTE):
        return EXTENDED_PALETTE
    raise ValueError(f"{n_classes} classes but at most {len(EXTENDED_PALETTE)} colours: pass your own palette")


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise ValueError(f"unknown CLEAR backend {name!r}: choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


@torch.no_grad()
def _num_classes(model: nn.Module, x: torch.Tensor) -> int:
    return int(model(x[:1]).shape[1])


def class_responses(model: nn.Module, x: torch.Tensor, backend: str = "deconvolution",
                    batch_size: int = 4096) -> torch.Tensor:
    """Response maps R_k(x) of every class k for every image: (N, K, H, W), channels summed (signed).

    ``batch_size`` bounds the rows (image, class) of one backward pass (Kumar et al., CVPRW 2017).
    """
    fn = get_backend(backend)
    check_inputs(x)
    if model.training:
        raise ValueError("model is in training mode (BatchNorm would mix images): call model.eval() first")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}: pass a positive number of rows")
    k = _num_classes(model, x)
    per_chunk = max(1, batch_size // k)
    classes = torch.arange(k, device=x.device)
    out = []
    for i in range(0, x.shape[0], per_chunk):
        xb = x[i:i + per_chunk]
        rows = xb.repeat_interleave(k, dim=0)  # image 0 × K classes, image 1 × K classes, …
        attr = fn(model, rows, classes.repeat(xb.shape[0]))
        out.append(maps.to_2d(attr.detach()).reshape(xb.shape[0], k, *x.shape[-2:]))
    return torch.cat(out)


def per_model_responses(models: Sequence[nn.Module], x: torch.Tensor, backend: str = "deconvolution",
                        batch_size: int = 4096) -> torch.Tensor:
    """``class_responses`` of each model: (M, N, K, H, W)."""
    _check_models(models)
    return torch.stack([class_responses(m, x, backend, batch_size) for m in models])


def marginalized_responses(models: Sequence[nn.Module], x: torch.Tensor, backend: str = "deconvolution",
                           n_models: int | None = None, batch_size: int = 4096) -> torch.Tensor:
    """Per-class maps averaged over the first ``n_models`` models (default all) *before* the argmax: (N, K, H, W).

    Marginalization over seeds as in Woerl et al. (CVPR 2023), applied to CLEAR's response maps.
    """
    _check_models(models)
    m = len(models) if n_models is None else n_models
    if not 1 <= m <= len(models):
        raise ValueError(f"n_models={m} but {len(models)} models were given: pass 1 ≤ n_models ≤ {len(models)}")
    total = class_responses(models[0], x, backend, batch_size)
    for model in models[1:m]:
        total += class_responses(model, x, backend, batch_size)
    return total / m


def running_mean(per_model: torch.Tensor) -> torch.Tensor:
    """(M, …) -> (M, …): entry m is the mean over the first m+1 models (responses or logits, for a slider over M)."""
    if not isinstance(per_model, torch.Tensor) or per_model.ndim < 2:
        raise ValueError("per_model must be a tensor (M, …) with one entry per model: stack the models' outputs")
    return MarginalMaps(per_model).running_mean()


def select_examples(pred: torch.Tensor, labels: torch.Tensor, n_correct: int, n_wrong: int,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random indices of ``n_correct`` correctly and ``n_wrong`` wrongly predicted images (fewer if there are
    not that many)."""
    if pred.shape != labels.shape or pred.ndim != 1:
        raise ValueError(f"pred {tuple(pred.shape)} and labels {tuple(labels.shape)} must be (N,): pass one "
                         f"model's predictions")
    gen = torch.Generator().manual_seed(seed)
    ok = (pred == labels).cpu()
    pick = (lambda mask, n: torch.nonzero(mask)[:, 0][torch.randperm(int(mask.sum()), generator=gen)[:n]])
    return pick(ok, n_correct), pick(~ok, n_wrong)


def stats_subset(preds: torch.Tensor, labels: torch.Tensor, n_random: int, max_wrong: int | None = None,
                 seed: int = 0) -> torch.Tensor:
    """Sorted indices: ``n_random`` seeded random images plus the images that one of the prediction rows ``preds``
    (R, N) gets wrong (e.g. the first model and the ensemble; at most ``max_wrong`` of them, drawn at random), so
    that both the correct and the wrong group have members."""
    if preds.ndim != 2 or preds.shape[1] != labels.shape[0]:
        raise ValueError(f"preds must be (R, N) with N = {labels.shape[0]} images, got {tuple(preds.shape)}: "
                         f"stack the prediction rows")
    gen = torch.Generator().manual_seed(seed)
    chosen = torch.zeros(labels.shape[0], dtype=torch.bool)
    chosen[torch.randperm(labels.shape[0], generator=gen)[:n_random]] = True
    wrong = torch.nonzero((preds.cpu() != labels.cpu()).any(0) & ~chosen)[:, 0]
    chosen[wrong[torch.randperm(len(wrong), generator=gen)[:max_wrong]]] = True
    return torch.nonzero(chosen)[:, 0]


def _check_models(models: Sequence[nn.Module]) -> None:
    if len(models) == 0:
        raise ValueError("no models given: pass a non-empty list (e.g. load_zoo(spec).models)")


def _check_responses(responses: torch.Tensor, min_ndim: int = 3, what: str = "responses") -> None:
    if not isinstance(responses, torch.Tensor) or responses.ndim < min_ndim:
        shape = tuple(responses.shape) if isinstance(responses, torch.Tensor) else type(responses).__name__
        raise ValueError(f"{what} must be a tensor (…, K, H, W) with at least {min_ndim} axes, got {shape}: "
                         f"pass the output of class_responses")


def dominant_class(responses: torch.Tensor) -> torch.Tensor:
    """Ĉ(p) = argmax_k R_k(p): (…, K, H, W) -> (…, H, W) class indices (Kumar et al., CVPRW 2017)."""
    _check_responses(responses)
    return responses.argmax(dim=-3)


def dominant_response(responses: torch.Tensor) -> torch.Tensor:
    """R̂(p) = max_k R_k(p): (…, K, H, W) -> (…, H, W) (Kumar et al., CVPRW 2017)."""
    _check_responses(responses)
    return responses.amax(dim=-3)


def palette_rgb(palette: Sequence[str] = PALETTE, n_classes: int | None = None) -> np.ndarray:
    """Hex colours -> (K, 3) floats in [0, 1]; checks that ``n_classes`` classes have a colour each."""
    if n_classes is not None and n_classes > len(palette):
        raise ValueError(f"{n_classes} classes but the palette has {len(palette)} colours: pass a palette with "
                         f"at least {n_classes} colours")
    return np.array([hex_to_rgb(c) for c in palette], dtype=np.float32) / 255.0


def render(dom_class: torch.Tensor, dom_response: torch.Tensor, palette: Sequence[str] = PALETTE,
           norm: str = "quantile", q: float = 0.99, floor: float = 0.0) -> np.ndarray:
    """The CLEAR map as RGB floats in [0, 1], shape (…, H, W, 3): colour = class colour, brightness = R̂.

    R̂ is clipped at 0 and normalised per map (``helpers.maps.normalize``: ``"quantile"`` divides by the ``q``-quantile,
    ``"maxabs"`` by the maximum); pixels below ``floor`` and pixels with no positive response are black.
    """
    if dom_class.shape != dom_response.shape or dom_class.ndim < 2:
        raise ValueError(f"dominant class {tuple(dom_class.shape)} and response {tuple(dom_response.shape)} must be "
                         f"maps of one shape (…, H, W): pass dominant_class(r) and dominant_response(r)")
    if dom_class.is_floating_point():
        raise ValueError("dom_class must hold integer class indices: pass dominant_class(responses)")
    colours = palette_rgb(palette, int(dom_class.max()) + 1 if dom_class.numel() else None)
    value = maps.normalize(dom_response.detach().float().clamp_min(0), norm, q).clamp(0, 1)
    value = torch.where(value < floor, torch.zeros_like(value), value)
    return colours[dom_class.cpu().numpy()] * value.cpu().numpy()[..., None]


def palette_index(rgb: np.ndarray, palette: Sequence[str] = PALETTE, black: float = 1e-6) -> np.ndarray:
    """Invert :func:`render`: the class whose colour has the pixel's chromaticity (rgb / max channel), −1 for black."""
    colours = palette_rgb(palette)
    brightness = rgb.max(-1, keepdims=True)
    chroma = rgb / np.maximum(brightness, black)
    ref = colours / colours.max(-1, keepdims=True)
    idx = np.abs(chroma[..., None, :] - ref).sum(-1).argmin(-1)
    return np.where(brightness[..., 0] > black, idx, -1)


@dataclass(frozen=True)
class ClearStats:
    """Per-image CLEAR numbers, each of shape (…, N). ``shares[..., k]`` is the fraction of the positive dominant
    response mass Σ_p max(R̂(p), 0) that falls on pixels whose dominant class is k. ``top`` is the class holding the
    largest share; ``pred``/``second`` are the best and second-best classes by logit."""

    true: torch.Tensor
    pred: torch.Tensor
    second: torch.Tensor
    top: torch.Tensor
    shares: torch.Tensor  # (…, N, K)

    @property
    def correct(self) -> torch.Tensor:
        return self.pred == self.true

    def share_of(self, cls: torch.Tensor) -> torch.Tensor:
        return self.shares.gather(-1, cls.unsqueeze(-1)).squeeze(-1)


def image_stats(responses: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> ClearStats:
    """CLEAR statistics of ``responses`` (…, N, K, H, W) given the model's ``logits`` (…, N, K) and ``labels`` (N,)."""
    _check_responses(responses, min_ndim=4)
    if logits.shape != responses.shape[:-2]:
        raise ValueError(f"logits {tuple(logits.shape)} do not match responses {tuple(responses.shape)}: "
                         f"pass one row of K logits per image, shape {tuple(responses.shape[:-2])}")
    if labels.shape != (responses.shape[-4],):
        raise ValueError(f"labels {tuple(labels.shape)} do not match the {responses.shape[-4]} images: "
                         f"pass one label per image")
    k = responses.shape[-3]
    dom = dominant_class(responses).flatten(-2)
    mass = dominant_response(responses).clamp_min(0).flatten(-2)
    per_class = torch.zeros(*dom.shape[:-1], k, dtype=mass.dtype, device=mass.device).scatter_add_(-1, dom, mass)
    shares = per_class / per_class.sum(-1, keepdim=True).clamp_min(torch.finfo(mass.dtype).tiny)
    best2 = logits.topk(2, dim=-1).indices
    true = labels.to(logits.device).expand(best2.shape[:-1])
    return ClearStats(true, best2[..., 0], best2[..., 1], shares.argmax(-1), shares)


def zoo_stats(models: Sequence[nn.Module], x: torch.Tensor, labels: torch.Tensor, backend: str = "deconvolution",
              batch_size: int = 4096) -> tuple[ClearStats, ClearStats]:
    """(single, marginalized): every model's own stats, shape (M, N); and the stats of the mean response over all
    models, with the ensemble's prediction taken from the mean logits (the logit whose responses were averaged)."""
    _check_models(models)
    singles, total, logit_sum = [], None, None
    for model in models:
        r, z = class_responses(model, x, backend, batch_size), batched_logits(model, x)
        singles.append(image_stats(r, z, labels))
        total = r if total is None else total.add_(r)
        logit_sum = z if logit_sum is None else logit_sum + z
    m = len(models)
    single = ClearStats(*(torch.stack([getattr(s, f) for s in singles]) for f in ClearStats.__dataclass_fields__))
    return single, image_stats(total / m, logit_sum / m, labels)


def summarize(stats: ClearStats) -> list[dict[str, float | int | str]]:
    """One row per group (correct, wrong): images, mean shares of the predicted / true / second-best class, and how
    often the image's top class (largest share) is the predicted, the true or the second-best class."""
    rows = []
    flat = {f: getattr(stats, f).reshape(-1) for f in ("true", "pred", "second", "top")}
    sp, st, ss = (stats.share_of(getattr(stats, f)).reshape(-1) for f in ("pred", "true", "second"))
    ok = flat["pred"] == flat["true"]
    for name, sel in (("correct", ok), ("wrong", ~ok)):
        n = int(sel.sum())
        mean = (lambda v: float(v[sel].float().mean()) if n else float("nan"))
        rows.append({"group": name, "n": n, "share_pred": mean(sp), "share_true": mean(st), "share_second": mean(ss),
                     "top_is_pred": mean(flat["top"] == flat["pred"]), "top_is_true": mean(flat["top"] == flat["true"]),
                     "top_is_second": mean(flat["top"] == flat["second"])})
    return rows


def dominance_confusion(stats: ClearStats, wrong_only: bool = True) -> torch.Tensor:
    """(K, K) counts over images (wrong predictions by default): row = top class of the CLEAR map, column = the
    second-best class by logit. The diagonal counts maps whose largest share goes to the runner-up class."""
    k = stats.shares.shape[-1]
    top, second = stats.top.reshape(-1), stats.second.reshape(-1)
    if wrong_only:
        sel = ~stats.correct.reshape(-1)
        top, second = top[sel], second[sel]
    return torch.bincount(top * k + second, minlength=k * k).reshape(k, k)
