"""Attribution methods behind one call: ``attribute(method, model, inputs, target)``.

Every method returns a tensor of the inputs' shape (N, C, H, W), computed batched over the N images, with
``target`` the class whose **logit** (pre-softmax score) is explained. Methods are registered by name in
:data:`METHODS` with a one-line summary, the paper they come from and their defaults, so chapters can list them.

Defaults are explicit and differ from captum's where captum's would change the meaning: the gradient is signed
(captum's ``Saliency`` takes ``abs=True``), GradCAM is reported signed and, separately, with the ReLU of the paper.
Baselines are 0 in the models' input space, i.e. the dataset's mean colour (inputs are normalized). Methods with
randomness of their own (SmoothGrad, LIME, KernelSHAP) take ``seed`` so that the method's noise can be told apart
from the noise of the model's seed (Woerl et al., CVPR 2023).
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence
import torch
from torch import nn



TargetLike = int | Sequence[int] | torch.Tensor


MethodFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Method:
    """A registered attribution method."""

    name: str
    fn: MethodFn
    summary: str
    reference: str
    stochastic: bool = False  # has its own randomness (takes ``seed``)
    defaults: dict[str, Any] = field(default_factory=dict)
    parallel: bool = False  # two models at once in threads is safe (no global RNG): attribution.parallel


METHODS: dict[str, Method] = {}


def register(name: str, summary: str, reference: str, stochastic: bool = False, parallel: bool = False,
             **defaults: Any) -> Callable[[MethodFn], MethodFn]:
    """Decorator adding ``fn(model, inputs, target, **kwargs) -> Tensor`` to :data:`METHODS`.

    ``defaults`` are the keyword arguments the method is called with unless the caller overrides them; ``parallel``
    marks a method that draws nothing from torch's global random generator, so that
    :mod:`helpers.attribution.parallel` may explain two models at once."""

    def deco(fn: MethodFn) -> MethodFn:
        METHODS[name] = Method(name, fn, summary, reference, stochastic, dict(defaults), parallel)
        return fn

    return deco


def register_variants(fn: MethodFn, variants: dict[str, tuple[str, str, dict[str, Any]]],
                      parallel: bool = False) -> None:
    """Register one function under several names, each calling it with fixed keyword arguments: the signed and the
    positive variant of a method (Khakzar et al. 2020), e.g. ``{"gradcam": (summary, reference, {"relu": False})}``.
    Every variant reports ``fn``'s module, so the map cache keys its maps by that module's source."""
    for name, (summary, reference, fixed) in variants.items():
        def call(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, _fixed=dict(fixed)) -> torch.Tensor:
            return fn(model, inputs, target, **_fixed)

        call.__module__, call.__name__, call.__qualname__ = fn.__module__, f"{fn.__name__}[{name}]", name
        METHODS[name] = Method(name, call, summary, reference, parallel=parallel)


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown attribution method {name!r}: choose one of {', '.join(METHODS)}")
    return METHODS[name]


def method_kwargs(methods: Sequence[str], seed: int = 0, surrogate_samples: int | None = None) -> dict[str, dict]:
    """Keyword arguments of a chapter's methods: the same ``seed`` for every stochastic method (so that maps of
    different models differ by the models, not the methods' sampling) and ``surrogate_samples`` perturbations for
    LIME and KernelSHAP."""
    out: dict[str, dict] = {}
    for name in methods:
        m = get_method(name)
        kw: dict[str, Any] = {"seed": seed} if m.stochastic else {}
        if surrogate_samples is not None and "n_samples" in m.defaults and name in ("lime", "kernel_shap"):
            kw["n_samples"] = surrogate_samples
        out[name] = kw
    return out


def _takes(model: nn.Module | None) -> tuple[int | None, int | None, int | None, str]:
    """(channels, image size, classes, name) the model takes: its ``input_spec`` (set by build_model), else the
    first convolution's input channels and the last linear layer's outputs; None where unknown."""
    if model is None:
        return None, None, None, "the model"
    spec = getattr(model, "input_spec", None)
    if spec is not None:
        return spec.channels, spec.size, spec.classes, spec.arch
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return (convs[0].in_channels if convs else None, None, linears[-1].out_features if linears else None,
            type(model).__name__)


def check_inputs(inputs: torch.Tensor, model: nn.Module | None = None) -> None:
    """Refuse inputs no model should explain, before any work, with one line that names the fix: not a batch of
    images, an empty batch, a non-float dtype, NaN or inf pixels, or channels / size the model does not take."""
    if not isinstance(inputs, torch.Tensor) or inputs.ndim != 4:
        shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise ValueError(f"inputs must be a batch of images (N, C, H, W), got {shape}: "
                         f"add a batch dimension with x.unsqueeze(0)")
    if inputs.shape[0] == 0:
        raise ValueError("inputs is an empty batch (0 images): pass at least one image")
    if not inputs.is_floating_point():
        raise ValueError(f"inputs are {inputs.dtype}: pass float images normalized like the model's dataset "
                         f"(e.g. load_dataset(name).test.x), not raw pixels")
    bad = ~torch.isfinite(inputs)
    if bool(bad.any()):
        images = bad.flatten(1).any(1).nonzero().flatten().tolist()
        raise ValueError(f"inputs hold {int(bad.sum())} NaN or inf pixel value(s), in image(s) {images[:5]}"
                         f"{' …' if len(images) > 5 else ''}: clean or drop those images before explaining them")
    channels, size, _, name = _takes(model)
    if channels is not None and inputs.shape[1] != channels:
        raise ValueError(f"inputs have {inputs.shape[1]} channel(s) but {name} takes {channels}: explain images of "
                         f"the dataset the model was trained on")
    if size is not None and tuple(inputs.shape[-2:]) != (size, size):
        raise ValueError(f"inputs are {inputs.shape[-2]}×{inputs.shape[-1]} but {name} takes {size}×{size}: explain "
                         f"images of the dataset the model was trained on")


def as_target(target: TargetLike, n: int, device: torch.device, model: nn.Module | None = None) -> torch.Tensor:
    """One class index per image, as a long tensor of shape (n,); with ``model``, checked against its classes."""
    t = torch.as_tensor(target, device=device)
    if t.is_floating_point() or t.dtype == torch.bool:
        raise ValueError(f"target must be class indices (int), got {t.dtype}: pass an int or a list of ints")
    t = t.long()
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"target must be one class index or one per image ({n}), got shape {tuple(t.shape)}: "
                         f"pass an int or a sequence of length {n}")
    classes = _takes(model)[2]
    if n and (int(t.min()) < 0 or (classes is not None and int(t.max()) >= classes)):
        bad = int(t.min()) if int(t.min()) < 0 else int(t.max())
        top = f"0 … {classes - 1}" if classes is not None else "indices ≥ 0"
        raise ValueError(f"target {bad} is out of range for {_takes(model)[3]}"
                         f"{f' with {classes} classes' if classes is not None else ''}: use {top}")
    return t


def attribute(method: str, model: nn.Module, inputs: torch.Tensor, target: TargetLike, **kwargs) -> torch.Tensor:
    """Attribution of ``model``'s ``target`` logit to each input pixel, batched over images.

    >>> attribute("gradient", model, x, target=3)  # doctest: +SKIP
    """
    m = get_method(method)
    check_inputs(inputs, model)
    t = as_target(target, inputs.shape[0], inputs.device, model)
    unknown = set(kwargs) - set(m.defaults) - ({"seed"} if m.stochastic else set())
    if unknown:
        raise ValueError(f"{method} takes no argument(s) {', '.join(sorted(unknown))}: "
                         f"it accepts {', '.join(sorted(m.defaults) + (['seed'] if m.stochastic else [])) or 'none'}")
    options = {**m.defaults, **kwargs}
    if m.stochastic:  # the RNG is reseeded per image inside, so batched == one image at a time
        options.setdefault("seed", 0)
        with torch.random.fork_rng(devices=[inputs.device.index or 0] if inputs.device.type == "cuda" else []):
            out = m.fn(model, inputs, t, **options)
    else:
        out = m.fn(model, inputs, t, **options)
    return out.detach()


def grid_mask(height: int, width: int, cell: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Feature mask of square ``cell``×``cell`` patches (1, 1, H, W): the "superpixels" of LIME and KernelSHAP."""
    rows = torch.arange(height, device=device) // cell
    cols = torch.arange(width, device=device) // cell
    return (rows[:, None] * (-(-width // cell)) + cols[None, :]).view(1, 1, height, width)


def _patch(inputs: torch.Tensor) -> int:
    return max(2, inputs.shape[-1] // 7)  # 4 px on 28×28 MNIST, 4 px on 32×32 CIFAR (49–64 features)


_HELD = threading.Event()  # set while quiet_for_threads() holds the warning filters for a pool of workers


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """captum warns on every call that hooks on non-linear modules may misbehave; our models give every ReLU its
    own module (helpers.models), which is what the warning asks for."""
    if _HELD.is_set():  # the filters are set for the whole pool: catch_warnings is not thread-safe
        yield
        return
    with quiet_filters():
        yield


@contextlib.contextmanager
def quiet_for_threads() -> Iterator[None]:
    """:func:`_quiet` once, in the calling thread, for workers that call methods meanwhile (they then leave the
    process-wide warning filters alone: two threads' ``catch_warnings`` would restore each other's)."""
    with quiet_filters():
        _HELD.set()
        try:
            yield
        finally:
            _HELD.clear()


@contextlib.contextmanager
def quiet_filters() -> Iterator[None]:
    """The warning filters of :func:`_quiet`."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-linear.*|.*Setting forward, backward hooks.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="captum")
        yield


# The methods that chapters 2 and 3 compare when ``methods=None``. RISE (chapter 6) is left out: its masks are shared
# by every model (the book's shared-method-seed convention), so their sampling pattern is common to all its maps and
# would count as agreement between seeds; chapter 6 measures how much. Methods registered after this line (chapter 7's
# positive/signed variants) are chosen by name.
CORE_METHODS: tuple[str, ...] = ("gradient", "input_x_gradient", "integrated_gradients", "smoothgrad", "deeplift",
                                 "gradcam", "gradcam_relu", "guided_backprop", "lime", "kernel_shap", "occlusion")
