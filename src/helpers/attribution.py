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


METHODS: dict[str, Method] = {}


def register(name: str, summary: str, reference: str, stochastic: bool = False,
             **defaults: Any) -> Callable[[MethodFn], MethodFn]:
    """Decorator adding ``fn(model, inputs, target, **kwargs) -> Tensor`` to :data:`METHODS`.

    ``defaults`` are the keyword arguments the method is called with unless the caller overrides them."""

    def deco(fn: MethodFn) -> MethodFn:
        METHODS[name] = Method(name, fn, summary, reference, stochastic, dict(defaults))
        return fn

    return deco


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


def check_inputs(inputs: torch.Tensor) -> None:
    if not isinstance(inputs, torch.Tensor) or inputs.ndim != 4:
        shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise ValueError(f"inputs must be a batch of images (N, C, H, W), got {shape}: "
                         f"add a batch dimension with x.unsqueeze(0)")


def as_target(target: TargetLike, n: int, device: torch.device) -> torch.Tensor:
    """One class index per image, as a long tensor of shape (n,)."""
    t = torch.as_tensor(target, device=device).long()
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"target must be one class index or one per image ({n}), got shape {tuple(t.shape)}: "
                         f"pass an int or a sequence of length {n}")
    return t


def attribute(method: str, model: nn.Module, inputs: torch.Tensor, target: TargetLike, **kwargs) -> torch.Tensor:
    """Attribution of ``model``'s ``target`` logit to each input pixel, batched over images.

    >>> attribute("gradient", model, x, target=3)  # doctest: +SKIP
    """
    m = get_method(method)
    check_inputs(inputs)
    t = as_target(target, inputs.shape[0], inputs.device)
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


def logit_gradient(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """d logit_target / d input for every image at once (images are independent in eval mode)."""
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), x)
    return grad


@register("gradient", "signed logit-by-image gradient ∂z_c/∂x",
          "Simonyan et al. 2014; Woerl et al., CVPR 2023")
def _gradient(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return logit_gradient(model, inputs, target)


@register("input_x_gradient", "input times gradient x ⊙ ∂z_c/∂x", "Shrikumar et al. 2016")
def _input_x_gradient(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return inputs * logit_gradient(model, inputs, target)


@register("integrated_gradients", "path integral of gradients from a baseline (completeness: Σ = f(x) − f(x'))",
          "Sundararajan, Taly, Yan, ICML 2017", n_steps=32, baseline=0.0, internal_batch_size=None)
def _integrated_gradients(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_steps: int,
                          baseline: float, internal_batch_size: int | None) -> torch.Tensor:
    from captum.attr import IntegratedGradients

    return IntegratedGradients(model).attribute(inputs, baselines=baseline, target=target, n_steps=n_steps,
                                                method="gausslegendre", internal_batch_size=internal_batch_size)


@register("smoothgrad", "mean signed gradient over Gaussian-noised copies of the input",
          "Smilkov et al. 2017", stochastic=True, n_samples=16, noise_level=0.15)
def _smoothgrad(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_samples: int,
                noise_level: float, seed: int) -> torch.Tensor:
    """σ = ``noise_level`` × (max − min) of each image, as in the paper (their 10–20 %)."""
    from captum.attr import NoiseTunnel, Saliency

    flat = inputs.flatten(1)
    sigma = noise_level * (flat.max(1).values - flat.min(1).values)
    out = []
    for i in range(inputs.shape[0]):  # captum takes one σ per input tensor, ours is per image
        torch.manual_seed(seed)
        out.append(NoiseTunnel(Saliency(model)).attribute(
            inputs[i:i + 1], nt_type="smoothgrad", nt_samples=n_samples, nt_samples_batch_size=n_samples,
            stdevs=float(sigma[i]), target=target[i:i + 1], abs=False))
    return torch.cat(out)


@register("deeplift", "DeepLIFT rescale rule against a baseline", "Shrikumar, Greenside, Kundaje, ICML 2017",
          baseline=0.0)
def _deeplift(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, baseline: float) -> torch.Tensor:
    from captum.attr import DeepLift

    with _quiet():
        return DeepLift(model).attribute(inputs, baselines=baseline, target=target)


def cam_layer(model: nn.Module) -> nn.Module:
    """The layer whose activations the CAM methods weight (``model.gradcam_layer``), or a one-line error."""
    layer = getattr(model, "gradcam_layer", None)
    if layer is None:
        raise ValueError(f"{type(model).__name__} has no gradcam_layer: build it with helpers.models.build_model "
                         f"or set model.gradcam_layer to its last convolutional block")
    return layer


def _gradcam(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, relu: bool) -> torch.Tensor:
    from captum.attr import LayerAttribution, LayerGradCam

    cam = LayerGradCam(model, cam_layer(model)).attribute(inputs, target=target, relu_attributions=relu)
    cam = LayerAttribution.interpolate(cam, tuple(inputs.shape[-2:]), interpolate_mode="bilinear")
    c = inputs.shape[1]
    return cam.expand(-1, c, -1, -1) / c  # spread over channels so that the channel sum is the CAM


@register("gradcam", "GradCAM of the model's gradcam_layer (LeNet: last conv; CIFAR nets: an intermediate "
          "block), signed (no ReLU), bilinearly upsampled",
          "Selvaraju et al., ICCV 2017")
def _gradcam_signed(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return _gradcam(model, inputs, target, relu=False)


@register("gradcam_relu", "GradCAM as in the paper: ReLU of the weighted activation map, upsampled",
          "Selvaraju et al., ICCV 2017")
def _gradcam_relu(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return _gradcam(model, inputs, target, relu=True)


@register("guided_backprop", "gradient with negative signals stopped at every ReLU on the way back",
          "Springenberg et al., ICLR Workshop 2015")
def _guided_backprop(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    from captum.attr import GuidedBackprop

    with _quiet():
        return GuidedBackprop(model).attribute(inputs, target=target)


def _surrogate(kind: str, model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_samples: int,
               patch: int | None, baseline: float | torch.Tensor, seed: int) -> torch.Tensor:
    """LIME and KernelSHAP on square patches, batched over images (:mod:`helpers.surrogate`: captum's algorithms
    and defaults, without its per-image Python loop; LIME draws the same coalitions as captum's ``Lime`` with
    ``torch.manual_seed(seed)``). Each patch's weight is spread over its pixels and channels, so that a map's sum
    is the sum of the patch weights (for KernelSHAP: f(x) − f(baseline), Lundberg & Lee's completeness)."""
    from . import surrogate

    return surrogate.attribute(kind, model, inputs, target, n_samples, patch or _patch(inputs), baseline, seed)


@register("lime", "linear surrogate fitted on random on/off patches (4×4 on MNIST), exponential kernel",
          "Ribeiro, Singh, Guestrin, KDD 2016", stochastic=True, n_samples=200, patch=None, baseline=0.0)
def _lime(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_samples: int, patch: int | None,
          baseline: float, seed: int) -> torch.Tensor:
    return _surrogate("lime", model, inputs, target, n_samples, patch, baseline, seed)


@register("kernel_shap", "Shapley values of patches estimated by weighted linear regression",
          "Lundberg & Lee, NeurIPS 2017", stochastic=True, n_samples=200, patch=None, baseline=0.0)
def _kernel_shap(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_samples: int, patch: int | None,
                 baseline: float, seed: int) -> torch.Tensor:
    return _surrogate("kernel_shap", model, inputs, target, n_samples, patch, baseline, seed)


@register("occlusion", "drop of the logit when a sliding patch is set to the baseline",
          "Zeiler & Fergus, ECCV 2014", window=None, stride=None, baseline=0.0)
def _occlusion(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, window: int | None,
               stride: int | None, baseline: float) -> torch.Tensor:
    from captum.attr import Occlusion

    k = window or _patch(inputs)
    st = stride or max(1, k // 2)
    c = inputs.shape[1]
    return Occlusion(model).attribute(inputs, sliding_window_shapes=(c, k, k), strides=(c, st, st),
                                      baselines=baseline, target=target, perturbations_per_eval=64) / c


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """captum warns on every call that hooks on non-linear modules may misbehave; our models give every ReLU its
    own module (helpers.models), which is what the warning asks for."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-linear.*|.*Setting forward, backward hooks.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="captum")
        yield


@register("rise", "randomized input sampling: mean class **probability** under n_samples random upsampled binary "
          "masks (cell px, keep probability p), each mask weighted by the score it leaves; baseline fills the masked "
          "part", "Petsiuk, Das & Saenko, BMVC 2018", stochastic=True, n_samples=500, cell=4, p=0.5, baseline=0.0)
def _rise(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, n_samples: int, cell: int, p: float,
          baseline: float | torch.Tensor, seed: int) -> torch.Tensor:
    from .perturbation import rise

    return rise(model, inputs, target, baseline, n_masks=n_samples, cell=cell, p=p, seed=seed)


# The methods that chapters 2 and 3 compare when ``methods=None``. RISE (chapter 6) is left out: its masks are shared
# by every model (the book's shared-method-seed convention), so their sampling pattern is common to all its maps and
# would count as agreement between seeds; chapter 6 measures how much. Methods registered after this line (chapter 7's
# positive/signed variants) are chosen by name.
CORE_METHODS: tuple[str, ...] = ("gradient", "input_x_gradient", "integrated_gradients", "smoothgrad", "deeplift",
                                 "gradcam", "gradcam_relu", "guided_backprop", "lime", "kernel_shap", "occlusion")


from helpers import positive as _positive  # noqa: E402,F401  (registers GradCAM++, FullGrad, LRP, RectGrad)
