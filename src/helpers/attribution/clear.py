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

- **Nulls** (:data:`NULLS`, :func:`null_maps`; not in the paper). With the response start a map carries its
  class's scale z_k⁺, so a statistic of CLEAR maps may read the logits rather than the maps. The *permuted* null
  permutes each image's class maps across the classes and keeps every scale with its class; the *shared* null gives
  every class the image's mean map, scaled as CLEAR scales it. A statistic that a null reproduces is no finding about
  the maps (``helpers.evaluation.clear_stats.null_comparison``).

For the deconvnet, all K classes share one forward pass per chunk of images (one backward pass per class); other
backends repeat every image K times with targets 0…K−1.
"""
from __future__ import annotations

import warnings
from typing import Callable, Sequence
import numpy as np
import torch
from plotly.colors import hex_to_rgb
from torch import nn

from .marginal import MarginalMaps
from .registry import attribute, check_inputs
from ..zoo.outputs import logits as batched_logits, zoo_logits
from . import maps


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
    check_inputs(x, model)
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


NULLS: dict[str, str] = {
    "permuted": "each image's K unit-start class maps D_k permuted across the classes (one seeded permutation per "
                "image, the same for every model); the scale z_k⁺ stays with class k",
    "shared": "one map for every class: the mean over k of the image's unit-start maps D_k, scaled per class as "
              "CLEAR does (z_k⁺ for the response start; exact ties broken by a seeded class order)",
}


SHARED_TIE_BREAK = 1e-4  # relative size of the seeded class order that breaks the ties of the shared null


def check_null(null: str) -> str:
    if null not in NULLS:
        raise ValueError(f"unknown CLEAR null {null!r}: choose one of {', '.join(NULLS)}")
    return null


def null_permutations(n_images: int, n_classes: int, seed: int = 0) -> torch.Tensor:
    """(N, K) seeded random permutations of the K classes, one per image (row n is a permutation of 0…K−1)."""
    if n_images < 0 or n_classes < 1:
        raise ValueError(f"n_images={n_images}, n_classes={n_classes}: pass n_images ≥ 0 and n_classes ≥ 1")
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n_images, n_classes, generator=gen).argsort(-1)


def null_maps(unit: torch.Tensor, null: str, perm: torch.Tensor) -> torch.Tensor:
    """Unit-start maps D (…, N, K, H, W) of a CLEAR null, from which :func:`scale_responses` and
    :func:`marginalize` build null response maps exactly as they build CLEAR's (``perm`` (N, K): one permutation
    of the classes per image, e.g. :func:`null_permutations`).

    - ``"permuted"``: class k gets the map of class perm[n, k], D'_k = D_{π(k)}; its logit stays its own, so the
      response start gives z_k⁺ D_{π(k)}. The spatial content of a class's map is broken, its scale kept.
    - ``"shared"``: every class gets the image's mean map D̄ = (1/K) Σ_k D_k, times 1 + ε·perm[n, k]/K
      (ε = :data:`SHARED_TIE_BREAK`): only the per-class scale differs, and the unit start, where all K maps
      would tie, gets a random dominant class per image instead of class 0.

    A statistic that a null reproduces reads the logits (or the construction), not what the maps show."""
    check_null(null)
    _check_responses(unit, min_ndim=4, what="unit maps")
    n, k = unit.shape[-4:-2]
    if perm.shape != (n, k):
        raise ValueError(f"perm {tuple(perm.shape)} does not match the maps {tuple(unit.shape)}: pass one "
                         f"permutation of the {k} classes per image, shape ({n}, {k})")
    perm = perm.to(unit.device)
    if null == "permuted":
        index = perm[..., None, None].expand(*unit.shape[:-4], n, k, *unit.shape[-2:])
        return unit.gather(-3, index)
    order = 1 + SHARED_TIE_BREAK * perm.to(unit.dtype) / k
    return unit.mean(-3, keepdim=True) * order[..., None, None]


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


def _check_models(models: Sequence[nn.Module]) -> None:
    if len(models) == 0:
        raise ValueError("no models given: pass a non-empty list (e.g. load_zoo(spec).models)")


def _check_responses(responses: torch.Tensor, min_ndim: int = 3, what: str = "responses") -> None:
    if not isinstance(responses, torch.Tensor) or responses.ndim < min_ndim:
        shape = tuple(responses.shape) if isinstance(responses, torch.Tensor) else type(responses).__name__
        raise ValueError(f"{what} must be a tensor (…, K, H, W) with at least {min_ndim} axes, got {shape}: "
                         f"pass the output of class_responses")


def class_last(responses: torch.Tensor) -> torch.Tensor:
    """(…, K, H, W) -> (…, H, W, K) with the class axis contiguous: a view, no copy, when ``responses`` is stored
    class-last already (as :func:`helpers.evaluation.clear_stats.zoo_stats` keeps its big tensors)."""
    _check_responses(responses)
    return responses.movedim(-3, -1).contiguous()


def _extreme(responses: torch.Tensor, largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(class, value) of the largest or smallest response per pixel: (…, K, H, W) -> two (…, H, W) tensors.

    Reduces over a contiguous last axis (:func:`class_last`), much faster than ``argmax(dim=-3)`` on large CPU
    tensors."""
    r = class_last(responses)
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


def focus_both(responses: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``(focus(r, "positive"), focus(r, "negative"))`` with one class-last copy of ``responses`` (or none)."""
    r = class_last(responses)
    value, cls = r.max(-1)
    low, neg = r.min(-1)
    return (cls, value), (neg, -low)


def palette_rgb(palette: Sequence[str] = PALETTE, n_classes: int | None = None) -> np.ndarray:
    """Hex colours -> (K, 3) floats in [0, 1]; checks that ``n_classes`` classes have a colour each."""
    if n_classes is not None and n_classes > len(palette):
        raise ValueError(f"{n_classes} classes but the palette has {len(palette)} colours: pass a palette with "
                         f"at least {n_classes} colours")
    return np.array([hex_to_rgb(c) for c in palette], dtype=np.float32) / 255.0


RENDER_SCALE = ("brightness = R̂ divided by its 90th percentile over the map's pixels with focus, clipped at 1 "
                "(a per-map quantile normalization: the strongest tenth of the focus is at full colour)")


def focus_quantile(values: torch.Tensor, q: float = 0.95) -> torch.Tensor:
    """The ``q``-quantile of each map's positive values (…, H, W) -> (…,); 0 for a map with none."""
    flat = values.detach().float().flatten(-2)
    pos = torch.where(flat > 0, flat, torch.full_like(flat, float("nan")))
    return torch.nan_to_num(torch.nanquantile(pos, q, dim=-1), nan=0.0)


def render(dom_class: torch.Tensor, dom_response: torch.Tensor, palette: Sequence[str] = PALETTE,
           norm: str = "focus", q: float = 0.9, floor: float = 0.0, gamma: float = 1.0) -> np.ndarray:
    """The CLEAR map as RGB floats in [0, 1], shape (…, H, W, 3): colour = class colour, brightness = R̂.

    R̂ is clipped at 0 and normalized per map: ``"focus"`` (default) divides by the ``q``-quantile of the map's
    pixels with focus (R̂ > 0; a map's many black pixels would pull a quantile over all pixels down) and clips at 1;
    ``"quantile"`` and ``"maxabs"`` are those of ``helpers.maps.normalize`` over all pixels (the 99th percentile
    over all pixels left most CLEAR maps dim). The normalized value is raised to ``gamma`` (1: linear, the default,
    :data:`RENDER_SCALE`; 0.5 lifts weak focus, and the background noise with it). Pixels below ``floor`` (after
    normalization) and pixels with no positive response are black.
    """
    if dom_class.shape != dom_response.shape or dom_class.ndim < 2:
        raise ValueError(f"dominant class {tuple(dom_class.shape)} and response {tuple(dom_response.shape)} must be "
                         f"maps of one shape (…, H, W): pass dominant_class(r) and dominant_response(r)")
    if dom_class.is_floating_point():
        raise ValueError("dom_class must hold integer class indices: pass dominant_class(responses)")
    if gamma <= 0:
        raise ValueError(f"gamma={gamma}: pass a positive exponent (1: linear, 0.5: square root)")
    colours = palette_rgb(palette, int(dom_class.max()) + 1 if dom_class.numel() else None)
    r = dom_response.detach().float().clamp_min(0)
    if norm == "focus":
        scale = focus_quantile(r, q).clamp_min(torch.finfo(torch.float32).tiny)
        value = (r / scale[..., None, None]).clamp(0, 1)
    else:
        value = maps.normalize(r, norm, q).clamp(0, 1)
    value = torch.where(value < floor, torch.zeros_like(value), value) ** gamma
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
