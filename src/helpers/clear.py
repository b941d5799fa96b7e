"""CLEAR class-dominance maps (Kumar, Wong & Taylor, *Explaining the Unexplained: A CLass-Enhanced Attentive
Response (CLEAR) Approach to Understanding Deep Neural Networks*, CVPR Workshops 2017, arXiv:1704.04133).

For an image x and **every** class k, a response map R_k(x) (H×W) back-projects class k's output response onto the
input. CLEAR then shows, per pixel p, the *dominant class* Ĉ(p) = argmax_k R_k(p) as a hue and the *dominant
response* R̂(p) = max_k R_k(p) as brightness, so one picture says where the network looks and for which class.
The paper's figures also read a *negative focus*: the pixels where a class's response is most negative
(argmin_k R_k(p), strength −min_k R_k(p)), e.g. “Major part of negative focus is 3”.

What the paper defines, and what we choose where it is silent:

- **Back-projection.** The paper back-projects with a "fractional stride convolution", i.e. a deconvnet (Zeiler &
  Fergus 2014); it gives no equations. captum's ``Deconvolution`` implements the deconvnet (transposed weights, ReLU
  on the backward signal, max-unpooling with the forward switches), so it is the default ``backend``;
  ``"gradient_x_input"`` (x ⊙ ∂z_k/∂x) is an alternative. Colour channels are summed (signed).
- **Start of the back-projection** (``start``). The paper back-projects each class's *response*: a deconvnet
  reconstructs from the activation itself, so R_k carries its class's strength. ``"response"`` (default) starts
  from class k's output response z_k. The deconvnet is positively homogeneous, so this equals z_k · D_k, with D_k
  the back-projection from a unit start. *Our choice where the paper is silent:* a class with a negative response
  (z_k ≤ 0) contributes a zero map. A deconvnet visualizes an activation, and an activation below zero is "off"
  (after a ReLU, as in the paper's class kernels, it would be 0); we start from the positive part z_k⁺ = max(z_k, 0).
  Negative focus therefore comes from the negative parts of the maps of active classes, not from negative logits.
  ``"unit"`` starts every class from a unit one-hot (captum's ``Deconvolution(...).attribute(x, target=k)``):
  R_k = D_k. It discards the class's strength, so we call it *class-blind*.
- **Marginalization** over M seeded models (Woerl et al., CVPR 2023) averages before the argmax. ``"explanations"``
  (default) averages each model's response map, R̄_k = (1/M) Σ_m z_k^(m)⁺ D_k^(m): the expected explanation over the
  seed distribution, as chapters 1–3 marginalize maps. ``"ensemble"`` takes the response map of the mean-logit
  ensemble, z̄_k⁺ · (1/M) Σ_m D_k^(m) with z̄_k = (1/M) Σ_m z_k^(m). With the unit start both are the same (and equal
  to the deconvnet of the ensemble, whose branches each receive 1/M of the backward signal). With the response
  start they differ in general: a mean of products is not the product of the means.

For the deconvnet, all K classes share one forward pass per chunk of images (one backward pass per class); other
backends repeat every image K times with targets 0…K−1.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from plotly.colors import hex_to_rgb
from torch import nn

from . import maps
from .attribution import attribute, check_inputs
from .intervals import Interval, percentile, verdict
from .marginal import MarginalMaps
from .zoo import logits as batched_logits
from .zoo import zoo_logits  # re-exported: clear.zoo_logits, every model's logits (M, N, K)

Backend = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def _deconvolution(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    from captum.attr import Deconvolution

    with warnings.catch_warnings():  # captum announces its ReLU hooks and the requires_grad it sets
        warnings.simplefilter("ignore", UserWarning)
        return Deconvolution(model).attribute(x, target=target)


def _deconvolution_all_classes(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Deconvnet maps of every class, (N, K, C, H, W): one forward pass, then one backward pass per class.

    The same rule as captum's ``Deconvolution`` (ReLU modules pass relu(backward signal), max-pooling routes it to the
    forward switches, weights transposed), but without repeating the forward pass K times (about 3× faster)."""
    hooks = [m.register_full_backward_hook(lambda mod, grad_in, grad_out: (torch.relu(grad_out[0]),))
             for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.enable_grad():
            xr = x.detach().clone().requires_grad_(True)
            z = model(xr)
            k = z.shape[1]
            return torch.stack([torch.autograd.grad(z[:, c].sum(), xr, retain_graph=c < k - 1)[0].detach()
                                for c in range(k)], 1)
    finally:
        for h in hooks:
            h.remove()


def _gradient_x_input(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return attribute("input_x_gradient", model, x, target)


BACKENDS: dict[str, Backend] = {"deconvolution": _deconvolution, "gradient_x_input": _gradient_x_input}
STARTS: dict[str, str] = {
    "response": "from the class's positive output response z_k⁺ (Kumar et al.: the deconvnet reconstructs the "
                "activation)",
    "unit": "from a unit one-hot (class-blind: every class starts at strength 1)",
}
MARGINALIZATIONS: dict[str, str] = {
    "explanations": "mean of the models' response maps, (1/M) Σ_m z_k^(m)⁺ D_k^(m)",
    "ensemble": "response map of the mean-logit ensemble, z̄_k⁺ (1/M) Σ_m D_k^(m)",
}

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


def check_start(start: str) -> str:
    if start not in STARTS:
        raise ValueError(f"unknown start {start!r}: choose 'response' (Kumar et al.) or 'unit' (class-blind)")
    return start


def check_marginalization(how: str) -> str:
    if how not in MARGINALIZATIONS:
        raise ValueError(f"unknown marginalization {how!r}: choose one of {', '.join(MARGINALIZATIONS)}")
    return how


@torch.no_grad()
def _num_classes(model: nn.Module, x: torch.Tensor) -> int:
    return int(model(x[:1]).shape[1])


def scale_responses(unit: torch.Tensor, logits: torch.Tensor, start: str = "response") -> torch.Tensor:
    """Response maps from unit-start maps D (…, K, H, W) and logits z (…, K): z_k⁺ · D_k, or D for ``"unit"``.

    For the deconvnet this is exact: its backward pass is positively homogeneous, so starting from z_k > 0 gives
    z_k times the unit-start map; classes with z_k ≤ 0 give zero maps (our choice, see the module docstring)."""
    if check_start(start) == "unit":
        return unit
    if logits.shape != unit.shape[:-2]:
        raise ValueError(f"logits {tuple(logits.shape)} do not match the maps {tuple(unit.shape)}: pass one logit "
                         f"per map, shape {tuple(unit.shape[:-2])}")
    return unit * logits.clamp_min(0).to(unit.dtype)[..., None, None]


def _unit_responses(model: nn.Module, x: torch.Tensor, backend: str, batch_size: int) -> torch.Tensor:
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
        if backend == "deconvolution":
            out.append(maps.to_2d(_deconvolution_all_classes(model, xb)))
            continue
        rows = xb.repeat_interleave(k, dim=0)  # image 0 × K classes, image 1 × K classes, …
        attr = fn(model, rows, classes.repeat(xb.shape[0]))
        out.append(maps.to_2d(attr.detach()).reshape(xb.shape[0], k, *x.shape[-2:]))
    return torch.cat(out)


def class_responses(model: nn.Module, x: torch.Tensor, backend: str = "deconvolution", batch_size: int = 4096,
                    start: str = "response") -> torch.Tensor:
    """Response maps R_k(x) of every class k for every image: (N, K, H, W), channels summed (signed).

    ``start="response"`` back-projects class k's positive output response (Kumar et al., CVPRW 2017),
    ``"unit"`` a unit one-hot (class-blind). ``batch_size`` bounds the rows (image, class) of one backward pass."""
    check_start(start)
    unit = _unit_responses(model, x, backend, batch_size)
    return unit if start == "unit" else scale_responses(unit, batched_logits(model, x), start)


def per_model_responses(models: Sequence[nn.Module], x: torch.Tensor, backend: str = "deconvolution",
                        batch_size: int = 4096, start: str = "response") -> torch.Tensor:
    """``class_responses`` of each model: (M, N, K, H, W)."""
    _check_models(models)
    return torch.stack([class_responses(m, x, backend, batch_size, start) for m in models])


def marginalize(unit: torch.Tensor, logits: torch.Tensor, start: str = "response",
                how: str = "explanations") -> torch.Tensor:
    """Marginalized response maps from per-model unit maps (M, …, K, H, W) and logits (M, …, K): (…, K, H, W).

    ``"explanations"``: mean over models of z_k⁺ D_k; ``"ensemble"``: (mean z_k)⁺ · mean D_k, the map of the
    mean-logit ensemble. Identical for ``start="unit"`` (see the module docstring)."""
    check_marginalization(how)
    if how == "ensemble":
        return scale_responses(unit.mean(0), logits.mean(0), start)
    return scale_responses(unit, logits, start).mean(0)


def marginalized_responses(models: Sequence[nn.Module], x: torch.Tensor, backend: str = "deconvolution",
                           n_models: int | None = None, batch_size: int = 4096, start: str = "response",
                           how: str = "explanations") -> torch.Tensor:
    """Per-class maps marginalized over the first ``n_models`` models (default all) *before* the argmax:
    (N, K, H, W). Marginalization over seeds as in Woerl et al. (CVPR 2023); ``how`` as in :func:`marginalize`."""
    _check_models(models)
    check_start(start), check_marginalization(how)
    m = len(models) if n_models is None else n_models
    if not 1 <= m <= len(models):
        raise ValueError(f"n_models={m} but {len(models)} models were given: pass 1 ≤ n_models ≤ {len(models)}")
    unit = per_model_responses(models[:m], x, backend, batch_size, start="unit")
    return marginalize(unit, zoo_logits(models[:m], x), start, how)


def running_mean(per_model: torch.Tensor) -> torch.Tensor:
    """(M, …) -> (M, …): entry m is the mean over the first m+1 models (responses or logits, for a slider over M)."""
    if not isinstance(per_model, torch.Tensor) or per_model.ndim < 2:
        raise ValueError("per_model must be a tensor (M, …) with one entry per model: stack the models' outputs")
    return MarginalMaps(per_model).running_mean()


def running_marginalized(unit: torch.Tensor, logits: torch.Tensor, start: str = "response",
                         how: str = "explanations") -> tuple[torch.Tensor, torch.Tensor]:
    """(responses, logits) marginalized over the first 1…M models, each with a leading axis of length M."""
    check_marginalization(how)
    z = running_mean(logits)
    if how == "ensemble":
        return scale_responses(running_mean(unit), z, start), z
    return running_mean(scale_responses(unit, logits, start)), z


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


def random_subset(n_total: int, n: int | None, seed: int = 0) -> torch.Tensor:
    """Sorted seeded random indices of ``n`` of ``n_total`` images (all of them for ``None`` or n ≥ n_total)."""
    if n is None or n >= n_total:
        return torch.arange(n_total)
    if n < 1:
        raise ValueError(f"n={n}: pass a positive number of images (or None for all)")
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def _check_models(models: Sequence[nn.Module]) -> None:
    if len(models) == 0:
        raise ValueError("no models given: pass a non-empty list (e.g. load_zoo(spec).models)")


def _check_responses(responses: torch.Tensor, min_ndim: int = 3, what: str = "responses") -> None:
    if not isinstance(responses, torch.Tensor) or responses.ndim < min_ndim:
        shape = tuple(responses.shape) if isinstance(responses, torch.Tensor) else type(responses).__name__
        raise ValueError(f"{what} must be a tensor (…, K, H, W) with at least {min_ndim} axes, got {shape}: "
                         f"pass the output of class_responses")


def _extreme(responses: torch.Tensor, largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(class, value) of the largest or smallest response per pixel: (…, K, H, W) -> two (…, H, W) tensors.

    Reduces over a contiguous last axis, much faster than ``argmax(dim=-3)`` on large CPU tensors."""
    _check_responses(responses)
    r = responses.movedim(-3, -1).contiguous()
    value, cls = r.max(-1) if largest else r.min(-1)
    return cls, value


def dominant_class(responses: torch.Tensor) -> torch.Tensor:
    """Ĉ(p) = argmax_k R_k(p): (…, K, H, W) -> (…, H, W) class indices (Kumar et al., CVPRW 2017)."""
    return _extreme(responses, largest=True)[0]


def dominant_response(responses: torch.Tensor) -> torch.Tensor:
    """R̂(p) = max_k R_k(p): (…, K, H, W) -> (…, H, W) (Kumar et al., CVPRW 2017)."""
    return _extreme(responses, largest=True)[1]


def negative_class(responses: torch.Tensor) -> torch.Tensor:
    """The class of the negative focus, argmin_k R_k(p): (…, K, H, W) -> (…, H, W)."""
    return _extreme(responses, largest=False)[0]


def negative_response(responses: torch.Tensor) -> torch.Tensor:
    """The negative focus's response min_k R_k(p) (≤ 0 where there is negative focus): (…, H, W)."""
    return _extreme(responses, largest=False)[1]


def focus(responses: torch.Tensor, sign: str = "positive") -> tuple[torch.Tensor, torch.Tensor]:
    """(class, strength ≥ 0 where there is focus) of the positive (argmax, max) or negative (argmin, −min) focus."""
    if sign == "positive":
        return _extreme(responses, largest=True)
    if sign == "negative":
        cls, value = _extreme(responses, largest=False)
        return cls, -value
    raise ValueError(f"unknown focus {sign!r}: use 'positive' or 'negative'")


def palette_rgb(palette: Sequence[str] = PALETTE, n_classes: int | None = None) -> np.ndarray:
    """Hex colours -> (K, 3) floats in [0, 1]; checks that ``n_classes`` classes have a colour each."""
    if n_classes is not None and n_classes > len(palette):
        raise ValueError(f"{n_classes} classes but the palette has {len(palette)} colours: pass a palette with "
                         f"at least {n_classes} colours")
    return np.array([hex_to_rgb(c) for c in palette], dtype=np.float32) / 255.0


def render(dom_class: torch.Tensor, dom_response: torch.Tensor, palette: Sequence[str] = PALETTE,
           norm: str = "quantile", q: float = 0.99, floor: float = 0.0) -> np.ndarray:
    """The CLEAR map as RGB floats in [0, 1], shape (…, H, W, 3): colour = class colour, brightness = R̂.

    R̂ is clipped at 0 and normalized per map (``helpers.maps.normalize``: ``"quantile"`` divides by the ``q``-quantile,
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


def render_focus(responses: torch.Tensor, palette: Sequence[str] = PALETTE, sign: str = "positive",
                 **kwargs) -> np.ndarray:
    """:func:`render` of the positive or negative focus of response maps (…, K, H, W)."""
    return render(*focus(responses, sign), palette, **kwargs)


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
    """Per-image CLEAR numbers, each of shape (…, N) (``…``: models or resampled zoos).

    ``shares[..., k]`` is the fraction of the positive focus mass Σ_p max(R̂(p), 0) on pixels whose dominant class is
    k, ``pixel_shares[..., k]`` the fraction of the pixels with positive focus whose dominant class is k and
    ``neg_shares`` the same as ``shares`` for the negative focus (mass Σ_p max(−min_k R_k(p), 0)). ``top`` and
    ``neg_top`` are the classes with the largest positive / negative mass (−1: the map has none); ``pred`` / ``second``
    the best and second-best classes by logit, ``confidence`` the softmax probability of ``pred``; ``smoothness``
    the fraction of neighbouring pixel pairs (both with positive focus) that share their dominant class;
    ``strongest`` the class whose map has the largest total |R_k| (−1: all maps are zero)."""

    true: torch.Tensor
    pred: torch.Tensor
    second: torch.Tensor
    confidence: torch.Tensor
    top: torch.Tensor
    neg_top: torch.Tensor
    smoothness: torch.Tensor
    strongest: torch.Tensor
    shares: torch.Tensor  # (…, N, K)
    pixel_shares: torch.Tensor  # (…, N, K)
    neg_shares: torch.Tensor  # (…, N, K)

    @property
    def correct(self) -> torch.Tensor:
        return self.pred == self.true

    def share_of(self, cls: torch.Tensor, what: str = "shares") -> torch.Tensor:
        return getattr(self, what).gather(-1, cls.unsqueeze(-1)).squeeze(-1)


def _class_mass(cls: torch.Tensor, mass: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(shares (…, K) of ``mass`` per class, top class or −1 where there is no mass)."""
    per_class = torch.zeros(*cls.shape[:-1], k, dtype=mass.dtype, device=mass.device).scatter_add_(-1, cls, mass)
    total = per_class.sum(-1, keepdim=True)
    top = torch.where(total[..., 0] > 0, per_class.argmax(-1), torch.full_like(total[..., 0], -1, dtype=torch.long))
    return per_class / total.clamp_min(torch.finfo(mass.dtype).tiny), top


def neighbour_agreement(dom_class: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fraction of horizontally or vertically adjacent pixel pairs, both in ``mask``, with the same dominant class:
    (…, H, W) -> (…,); NaN where no pair is in the mask. Low values = a speckled CLEAR map."""
    same = both = 0
    for a, b in (((..., slice(1, None), slice(None)), (..., slice(None, -1), slice(None))),
                 ((..., slice(None), slice(1, None)), (..., slice(None), slice(None, -1)))):
        pair = mask[a] & mask[b]
        same = same + ((dom_class[a] == dom_class[b]) & pair).flatten(-2).sum(-1)
        both = both + pair.flatten(-2).sum(-1)
    return same.float() / both.float().where(both > 0, torch.tensor(float("nan"), device=both.device))


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
    dom, val = focus(responses, "positive")
    neg, neg_val = focus(responses, "negative")
    pos = val > 0
    shares, top = _class_mass(dom.flatten(-2), val.clamp_min(0).flatten(-2), k)
    pixel_shares, _ = _class_mass(dom.flatten(-2), pos.flatten(-2).to(val.dtype), k)
    neg_shares, neg_top = _class_mass(neg.flatten(-2), neg_val.clamp_min(0).flatten(-2), k)
    best2 = logits.topk(2, dim=-1).indices
    true = labels.to(logits.device).expand(best2.shape[:-1])
    confidence = logits.float().softmax(-1).amax(-1)
    strength = responses.abs().flatten(-2).sum(-1)  # (…, N, K)
    strongest = torch.where(strength.amax(-1) > 0, strength.argmax(-1), torch.full_like(top, -1))
    return ClearStats(true, best2[..., 0], best2[..., 1], confidence, top, neg_top, neighbour_agreement(dom, pos),
                      strongest, shares, pixel_shares, neg_shares)


def stack_stats(parts: Sequence[ClearStats], dim: int = 0, cat: bool = False) -> ClearStats:
    """Stack (or with ``cat`` concatenate) the fields of several :class:`ClearStats` along ``dim``."""
    op = torch.cat if cat else torch.stack
    return ClearStats(*(op([getattr(p, f.name) for p in parts], dim) for f in fields(ClearStats)))


def class_correlation(responses: torch.Tensor) -> torch.Tensor:
    """Mean Pearson correlation between the K maps of one image over all pairs of classes: (…, K, H, W) -> (…,).
    Near 1: the K maps look alike and small differences decide the argmax (a class-blind back-projection)."""
    _check_responses(responses)
    k = responses.shape[-3]
    r = responses.flatten(-2).float()
    r = r - r.mean(-1, keepdim=True)
    r = r / r.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    corr = r @ r.transpose(-1, -2)
    return (corr.sum((-1, -2)) - corr.diagonal(dim1=-2, dim2=-1).sum(-1)) / (k * (k - 1))


def seed_agreement(dom_class: torch.Tensor, mask: torch.Tensor, n_classes: int) -> torch.Tensor:
    """How often the other models agree with model m on a pixel's dominant class: (M, …, H, W) -> (M, …).

    Over the pixels where model m and another model both have focus (``mask``), the fraction of (pixel, other
    model) pairs with the same dominant class; NaN where there is no such pair (e.g. M = 1)."""
    onehot = torch.nn.functional.one_hot(dom_class, n_classes) * mask[..., None]
    counts = onehot.sum(0)  # (…, H, W, K): models per class and pixel
    same = (counts.expand_as(onehot).gather(-1, dom_class[..., None]).squeeze(-1) - 1) * mask  # others with m's class
    both = (mask.sum(0) - 1) * mask
    same, both = same.flatten(-2).sum(-1).double(), both.flatten(-2).sum(-1).double()
    return same / both.where(both > 0, torch.tensor(float("nan"), dtype=both.dtype, device=both.device))


def class_disagreement(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Fraction of the pixels with positive focus in ``a`` or ``b`` (both (…, K, H, W)) whose dominant class differs:
    (…,), NaN where neither map has positive focus."""
    ca, va = focus(a)
    cb, vb = focus(b)
    any_focus = ((va > 0) | (vb > 0)).flatten(-2)
    differ = ((ca != cb).flatten(-2) & any_focus).sum(-1).double()
    n = any_focus.sum(-1).double()
    return differ / n.where(n > 0, torch.tensor(float("nan"), dtype=n.dtype, device=n.device))


@dataclass(frozen=True)
class ZooStats:
    """CLEAR statistics of a zoo for one reading (start): ``single`` (M, N) per model, ``marginalized`` (N,) over all
    M models, ``boot`` (B, N) marginalized over zoos drawn from the M models with replacement (``weights`` (B, M):
    how often each model is drawn; ``image_weights`` (B, N): how often each image is drawn, the multi-bootstrap of
    Sellam et al., ICLR 2022), ``agreement`` (M, N) how often the other models agree with model m on the
    dominant class of a pixel (:func:`seed_agreement`), ``how_disagreement`` (N,) the fraction of pixels (with
    positive focus in either map) whose dominant class differs between the two marginalizations of
    :data:`MARGINALIZATIONS` (0 for the unit start, where they coincide)."""

    single: ClearStats
    marginalized: ClearStats
    boot: ClearStats
    weights: torch.Tensor
    image_weights: torch.Tensor
    agreement: torch.Tensor  # (M, N)
    how_disagreement: torch.Tensor  # (N,)

    @property
    def n_models(self) -> int:
        return int(self.weights.shape[1])


def bootstrap_weights(n_models: int, n_boot: int, seed: int = 0) -> torch.Tensor:
    """(B, M) counts: how often each of the M models is drawn in each of ``n_boot`` resampled zoos of size M."""
    if n_boot < 1 or n_models < 1:
        raise ValueError(f"n_boot={n_boot}, n_models={n_models}: pass positive numbers")
    draws = torch.randint(0, n_models, (n_boot, n_models), generator=torch.Generator().manual_seed(seed))
    return torch.zeros(n_boot, n_models).scatter_add_(1, draws, torch.ones(n_boot, n_models))


def zoo_stats(models: Sequence[nn.Module], x: torch.Tensor, labels: torch.Tensor, backend: str = "deconvolution",
              starts: Sequence[str] = ("response", "unit"), how: str = "explanations", n_boot: int = 200,
              seed: int = 0, batch_size: int = 4096,
              memory: int = 2 ** 28) -> tuple[dict[str, ZooStats], torch.Tensor]:
    """CLEAR statistics of every reading in ``starts`` and the class correlation (M, N) of the unit-start maps.

    One back-projection per model and chunk of images serves every reading (the response start only rescales the
    unit maps). The marginalized map follows ``how`` (:func:`marginalize`); its prediction is the mean-logit
    ensemble's. ``n_boot`` resampled zoos give intervals over models; ``memory`` bounds the bytes of one chunk."""
    _check_models(models)
    for s in starts:
        check_start(s)
    check_marginalization(how)
    m, (h, w) = len(models), x.shape[-2:]
    k = _num_classes(models[0], x)
    weights = bootstrap_weights(m, n_boot, seed).to(x.device)
    block = max(1, memory // (4 * m * k * h * w))  # images per back-projection block
    chunk = max(1, memory // (4 * n_boot * k * h * w))  # images per resampling chunk
    parts: dict[str, list] = {s: [] for s in starts}
    corr = []
    for i in range(0, x.shape[0], block):
        xb, yb = x[i:i + block], labels[i:i + block].to(x.device)
        unit_all = per_model_responses(models, xb, backend, batch_size, start="unit")  # (M, n, K, H, W)
        z_all = zoo_logits(models, xb)
        corr.append(class_correlation(unit_all))
        for j in range(0, xb.shape[0], chunk):
            unit, z, yc = unit_all[:, j:j + chunk], z_all[:, j:j + chunk], yb[j:j + chunk]
            zb = torch.einsum("bm,m...->b...", weights / m, z)
            for s in starts:
                r = scale_responses(unit, z, s)
                rb = (scale_responses(torch.einsum("bm,m...->b...", weights / m, unit), zb, s) if how == "ensemble"
                      else torch.einsum("bm,m...->b...", weights / m, r))
                dom, val = focus(r)
                marg = marginalize(unit, z, s, how)
                other = marginalize(unit, z, s, "ensemble" if how == "explanations" else "explanations")
                parts[s].append((image_stats(r, z, yc), image_stats(marg, z.mean(0), yc),
                                 image_stats(rb, zb, yc), seed_agreement(dom, val > 0, k),
                                 class_disagreement(marg, other)))
                del rb
    image_weights = bootstrap_weights(x.shape[0], n_boot, seed + 1)
    cpu = (lambda st: ClearStats(*(getattr(st, f.name).cpu() for f in fields(ClearStats))))
    out = {}
    for s, p in parts.items():
        single, marg, boot = (cpu(stack_stats([q[j] for q in p], dim=d, cat=True)) for j, d in enumerate((1, 0, 1)))
        out[s] = ZooStats(single, marg, boot, weights.cpu(), image_weights, torch.cat([q[3] for q in p], -1).cpu(),
                          torch.cat([q[4] for q in p]).cpu())
    return out, torch.cat(corr, -1).cpu()


METRICS: dict[str, Callable[[ClearStats], torch.Tensor]] = {
    "pixels: predicted": lambda s: s.share_of(s.pred, "pixel_shares"),
    "mass: predicted": lambda s: s.share_of(s.pred),
    "mass: true": lambda s: s.share_of(s.true),
    "mass: runner-up": lambda s: s.share_of(s.second),
    "top: predicted": lambda s: (s.top == s.pred).float(),
    "top: true": lambda s: (s.top == s.true).float(),
    "top: runner-up": lambda s: (s.top == s.second).float(),
    "negative top: predicted": lambda s: (s.neg_top == s.pred).float(),
    "runner-up is true": lambda s: (s.second == s.true).float(),
    "strongest map: predicted": lambda s: (s.strongest == s.pred).float(),
    "smoothness": lambda s: s.smoothness,
}


def groups(threshold: float | None = None) -> dict[str, Callable[[ClearStats], torch.Tensor]]:
    """Prediction groups: all, correct, wrong; with a softmax ``threshold`` the correct ones are split into
    confident correct (confidence > threshold) and unconfident correct."""
    if threshold is None:
        return {"all": lambda s: torch.ones_like(s.correct), "correct": lambda s: s.correct,
                "wrong": lambda s: ~s.correct}
    return {"all": lambda s: torch.ones_like(s.correct),
            "confident correct": lambda s: s.correct & (s.confidence > threshold),
            "unconfident correct": lambda s: s.correct & (s.confidence <= threshold),
            "wrong": lambda s: ~s.correct}


def _pooled(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(values with NaN and unselected entries set to 0, the selection as float) for weighted means."""
    ok = mask & torch.isfinite(values)
    return torch.where(ok, values, torch.zeros_like(values)).double(), ok.double()


def single_replicates(values: torch.Tensor, mask: torch.Tensor, model_weights: torch.Tensor,
                      image_weights: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Mean of ``values`` (M, N) over the (model, image) pairs in ``mask``: (point, replicates (B,)), each replicate
    weighting models and images by how often the multi-bootstrap draw b holds them (Sellam et al., ICLR 2022)."""
    v, ok = _pooled(values, mask)
    w, u = model_weights.double(), image_weights.double()
    point = float(v.sum() / ok.sum()) if ok.sum() > 0 else float("nan")
    return point, ((w @ v) * u).sum(-1) / ((w @ ok) * u).sum(-1)


def marginal_replicates(values: torch.Tensor, mask: torch.Tensor, boot_values: torch.Tensor, boot_mask: torch.Tensor,
                        image_weights: torch.Tensor,
                        bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, torch.Tensor]:
    """Mean of ``values`` (N,) over the images in ``mask``: (point, replicates (B,)). Replicate b uses the map, the
    prediction and the group of the zoo drawn in b (``boot_values``, ``boot_mask`` (B, N)) and its image weights.

    A drawn zoo repeats models, so its mean map averages fewer distinct models (about 63 % of M) and is noisier than
    the zoo's own: statistics of the argmax (smoothness, top class) come out shifted. The replicates are therefore
    shifted by the bootstrap's estimate of that bias (their mean minus the point estimate; Efron & Tibshirani 1993,
    §10.2), which keeps their spread and centres them on the estimate; shifted replicates are clipped to ``bounds``
    (every metric of :data:`METRICS` is a fraction)."""
    v, ok = _pooled(values, mask)
    point = float(v.sum() / ok.sum()) if ok.sum() > 0 else float("nan")
    vb, okb = _pooled(boot_values, boot_mask)
    u = image_weights.double()
    reps = (vb * u).sum(-1) / (okb * u).sum(-1)
    finite = torch.isfinite(reps)
    if finite.any() and point == point:
        reps = (reps - (reps[finite].mean() - point)).clamp(*bounds)
    return point, reps


@dataclass(frozen=True)
class Summary:
    """Point estimates and multi-bootstrap replicates of CLEAR metrics, keyed by (setting, group, metric) with
    setting "single" (pooled over (model, image) pairs) or "marginalized" (the mean over all M models)."""

    points: dict
    reps: dict
    counts: dict  # (setting, group) -> number of maps
    level: float = 0.9

    def interval(self, setting: str, group: str, metric: str) -> Interval:
        key = (setting, group, metric)
        if key not in self.points:
            raise KeyError(f"no estimate for {key}: choose among {sorted(self.points)[:6]} …")
        return percentile(self.points[key], self.reps[key], self.level)

    def rows(self, settings: Sequence[str] = ("single", "marginalized")) -> list[dict]:
        """One row per setting and group: ``n`` and an :class:`~helpers.intervals.Interval` per metric."""
        metrics = list(dict.fromkeys(k[2] for k in self.points))
        return [{"setting": s, "group": g, "n": self.counts[(s, g)],
                 **{m: self.interval(s, g, m) for m in metrics}}
                for s in settings for g in dict.fromkeys(k[1] for k in self.points)]


def summarize(zs: ZooStats, metrics: Sequence[str] | None = None,
              by: Mapping[str, Callable[[ClearStats], torch.Tensor]] | None = None, level: float = 0.9) -> Summary:
    """Every metric of :data:`METRICS` (or ``metrics``) for every group of ``by`` (default correct / wrong), single
    and marginalized, with replicates of the multi-bootstrap over models and images stored in ``zs``."""
    names = list(METRICS) if metrics is None else list(metrics)
    by = groups() if by is None else by
    points, reps, counts = {}, {}, {}
    for g, sel in by.items():
        mask, m_mask, b_mask = sel(zs.single), sel(zs.marginalized), sel(zs.boot)
        counts[("single", g)], counts[("marginalized", g)] = int(mask.sum()), int(m_mask.sum())
        for k in names:
            points[("single", g, k)], reps[("single", g, k)] = single_replicates(
                METRICS[k](zs.single), mask, zs.weights, zs.image_weights)
            points[("marginalized", g, k)], reps[("marginalized", g, k)] = marginal_replicates(
                METRICS[k](zs.marginalized), m_mask, METRICS[k](zs.boot), b_mask, zs.image_weights)
    return Summary(points, reps, counts, level)


def difference(a: Summary, key_a: tuple[str, str, str], b: Summary | None = None,
               key_b: tuple[str, str, str] | None = None) -> Interval:
    """The paired difference b − a of two estimates (same multi-bootstrap draws: one zoo, or two readings of it)."""
    b = a if b is None else b
    key_b = key_a if key_b is None else key_b
    return percentile(b.points[key_b] - a.points[key_a], b.reps[key_b] - a.reps[key_a], a.level)


def model_image_interval(values: torch.Tensor, zs: ZooStats, level: float = 0.9) -> Interval:
    """Mean of per-(model, image) ``values`` (M, N), e.g. ``zs.agreement`` (:func:`seed_agreement`) or the class
    correlation of :func:`zoo_stats`, with the multi-bootstrap interval of ``zs``'s draws."""
    mask = torch.ones_like(values, dtype=torch.bool)
    return percentile(*single_replicates(values, mask, zs.weights, zs.image_weights), level)


def interval_text(iv: Interval, pct: bool = True, digits: int = 1) -> str:
    """``"13.6% [12.1%, 15.0%]"`` for the prose and tables; ``"–"`` for an empty group, no brackets without an
    interval (e.g. a single model)."""
    spec = f".{digits}%" if pct else f".{digits + 1}f"
    if iv.point != iv.point:
        return "–"
    if iv.low != iv.low:
        return format(iv.point, spec)
    return format(iv, spec)


def dominance_confusion(stats: ClearStats, wrong_only: bool = True) -> torch.Tensor:
    """(K, K) counts over maps (wrong predictions by default): row = top class of the CLEAR map, column = the
    second-best class by logit. The diagonal counts maps whose largest share goes to the runner-up class."""
    k = stats.shares.shape[-1]
    top, second = stats.top.reshape(-1), stats.second.reshape(-1)
    keep = top >= 0
    if wrong_only:
        keep &= ~stats.correct.reshape(-1)
    return torch.bincount(top[keep] * k + second[keep], minlength=k * k).reshape(k, k)


def frequent_top(confusion: torch.Tensor, n: int = 2) -> tuple[list[int], float, int]:
    """(the ``n`` classes that are most often the top class, their share of the maps, the least frequent one)."""
    per_class = confusion.sum(1)
    order = per_class.argsort(descending=True)
    total = int(per_class.sum())
    share = float(per_class[order[:n]].sum()) / total if total else float("nan")
    return [int(c) for c in order[:n]], share, int(order[-1])


METRIC_KEYS: dict[str, str] = {
    "pixels: predicted": "pix_pred", "mass: predicted": "mass_pred", "mass: true": "mass_true",
    "mass: runner-up": "mass_second", "top: predicted": "top_pred", "top: true": "top_true",
    "top: runner-up": "top_second", "negative top: predicted": "negtop_pred", "runner-up is true": "second_true",
    "strongest map: predicted": "strong_pred", "smoothness": "smooth"}
GROUP_KEYS: dict[str, str] = {"all": "all", "correct": "ok", "wrong": "bad", "confident correct": "conf",
                              "unconfident correct": "unconf"}


def key(setting: str, group: str, metric: str | None = None, prefix: str = "") -> str:
    """The glue key of an estimate: ``key("single", "wrong", "top: runner-up")`` -> ``"s_bad_top_second"``
    (``metric=None``: the number of maps, ``"s_bad_n"``)."""
    tail = "n" if metric is None else METRIC_KEYS[metric]
    return f"{prefix}{setting[0]}_{GROUP_KEYS[group]}_{tail}"


def prose_values(summary: Summary, prefix: str = "") -> dict[str, str | int]:
    """Every estimate of ``summary`` as interval text and every group size, under :func:`key` names (for glue)."""
    out: dict[str, str | int] = {key(s, g, prefix=prefix): n for (s, g), n in summary.counts.items()}
    out.update({key(s, g, m, prefix): interval_text(summary.interval(s, g, m)) for (s, g, m) in summary.points})
    return out


def points_text(diff: Interval) -> str:
    """A difference of two shares in percentage points: ``"+1.8 points [+0.9, +2.7]"``."""
    if diff.point != diff.point:
        return "no difference can be computed"
    if diff.low != diff.low:
        return f"{100 * diff.point:+.1f} points"
    return f"{100 * diff.point:+.1f} points [{100 * diff.low:+.1f}, {100 * diff.high:+.1f}]"


def contrast(diff: Interval, higher: str = "higher", lower: str = "lower",
             same: str = "no clear difference") -> str:
    """The difference with the word it supports (:func:`helpers.intervals.verdict`: ``higher`` only if the interval
    lies above 0): ``"+1.8 points [+0.9, +2.7] (higher)"``."""
    if diff.point != diff.point:
        return "not computable (a group has no maps)"
    return f"{points_text(diff)} ({verdict(diff, higher, lower, same)})"


def comparisons(summary: Summary, prefix: str = "") -> dict[str, str]:
    """Phrases for the prose, each a paired difference with its verdict (:func:`contrast`):

    - ``d_<group>_<metric>``: marginalized − single ("a clear rise" / "a clear drop" / "no clear change");
    - ``<s|m>_<group>_second_vs_pred_top`` / ``_mass``: runner-up − predicted class, within single or marginalized
      maps ("the runner-up more often" / "the predicted class more often" / "no clear difference")."""
    out = {}
    for (s, g, m) in summary.points:
        if s == "single":
            out[f"{prefix}d_{GROUP_KEYS[g]}_{METRIC_KEYS[m]}"] = contrast(
                difference(summary, (s, g, m), None, ("marginalized", g, m)), "a clear rise", "a clear drop",
                "no clear change")
    for (s, g) in summary.counts:
        for what in ("top", "mass"):
            if (s, g, f"{what}: predicted") in summary.points and (s, g, f"{what}: runner-up") in summary.points:
                out[f"{prefix}{s[0]}_{GROUP_KEYS[g]}_second_vs_pred_{what}"] = contrast(
                    difference(summary, (s, g, f"{what}: predicted"), None, (s, g, f"{what}: runner-up")),
                    "the runner-up more often" if what == "top" else "the runner-up holds more",
                    "the predicted class more often" if what == "top" else "the predicted class holds more",
                    "no clear difference")
    return out


def reading_comparisons(unit: Summary, response: Summary, prefix: str = "ur_") -> dict[str, str]:
    """Response start minus unit start for every estimate both summaries hold (same multi-bootstrap draws, so the
    difference is paired): ``ur_<s>_<group>_<metric>`` -> ``"+48.0 points [+44.1, +51.2] (higher)"``."""
    return {f"{prefix}{s[0]}_{GROUP_KEYS[g]}_{METRIC_KEYS[m]}": contrast(
        difference(unit, (s, g, m), response, (s, g, m)), "higher with the response start",
        "lower with the response start", "no clear difference") for (s, g, m) in unit.points if (s, g, m) in response.points}


def shown_values(stats: ClearStats) -> dict[str, float | int | str]:
    """Glue values for the shown images' marginalized maps (``stats`` (N,)): how many, the largest share of any
    image's positive mass, whether that gives an image to one class, and how often the top class is not the
    ensemble's prediction."""
    largest = float(stats.shares.amax(-1).max()) if stats.shares.numel() else float("nan")
    return {"shown_n": int(stats.pred.numel()), "shown_max_share": largest,
            "shown_one_class": ("the marginalized map gives none of them to one class" if not largest >= 0.5
                                else "the marginalized map can give an image largely to one class"),
            "shown_top_not_pred": int((stats.top != stats.pred).sum())}


def glue_values(summaries: Mapping[str, Summary], zs: Mapping[str, ZooStats], class_corr: torch.Tensor,
                prefixes: Mapping[str, str] | None = None) -> dict[str, float | int | str]:
    """Everything chapter 5's prose cites from the statistics, for ``report.glue_all``: per reading (prefix ``r_`` for
    the response start, ``u_`` for the unit start) every estimate (:func:`prose_values`), the single-vs-marginalized
    phrases (:func:`comparisons`), the seed agreement, the disagreement of the two marginalizations; the paired
    response − unit phrases (:func:`reading_comparisons`, prefix ``ur_``) with a verdict sentence; the class
    correlation of the unit-start maps with the words it supports; the interval level and the number of images."""
    prefixes = {"response": "r_", "unit": "u_"} if prefixes is None else prefixes
    out: dict[str, float | int | str] = {}
    for s, p in prefixes.items():
        out.update(prose_values(summaries[s], p))
        out.update(comparisons(summaries[s], p))
        out[f"{p}agreement"] = interval_text(model_image_interval(zs[s].agreement, zs[s]))
        out[f"{p}how"] = float(torch.nanmean(zs[s].how_disagreement.double()))
    if {"unit", "response"} <= set(summaries):
        out.update(reading_comparisons(summaries["unit"], summaries["response"]))
        key_ = ("single", "confident correct", "top: predicted")
        if key_ in summaries["unit"].points:
            diff = difference(summaries["unit"], key_, summaries["response"])
            out["ur_conf_sentence"] = "This run has no confident correct maps to compare the two starts on" \
                if diff.point != diff.point else verdict(
                diff,
                "Starting from the response makes the predicted class the top class of confident correct maps more "
                "often than the unit start does",
                "Starting from the response makes the predicted class the top class of confident correct maps less "
                "often than the unit start does",
                "Where the back-projection starts does not clearly change how often the predicted class is the top "
                "class of confident correct maps")
    first = next(iter(zs.values()))
    corr = model_image_interval(class_corr, first)
    out.update({"class_corr": interval_text(corr, pct=False),
                "class_corr_words": ("the maps look alike, and small differences decide the argmax" if corr.low > 0.5
                                     else "the maps are not alike across classes"),
                "level": next(iter(summaries.values())).level, "n_stats_images": int(first.marginalized.pred.numel()),
                "chance": 1 / first.marginalized.shares.shape[-1]})
    return out
