"""Attribution methods computed by captum: integrated gradients (Sundararajan et al. 2017), SmoothGrad (Smilkov
et al. 2017), DeepLIFT (Shrikumar et al. 2017), GradCAM (Selvaraju et al. 2017, signed and with the paper's ReLU) and
Guided Backprop (Springenberg et al. 2015), registered in :mod:`helpers.attribution.registry`.
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import _quiet, register, register_variants


@register("integrated_gradients", "path integral of gradients from a baseline (completeness: Σ = f(x) − f(x'))",
          "Sundararajan, Taly, Yan, ICML 2017", parallel=True, n_steps=32, baseline=0.0, internal_batch_size=None)
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
          parallel=True, baseline=0.0)
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


register_variants(_gradcam, {
    "gradcam": ("GradCAM of the model's gradcam_layer (LeNet: last conv; CIFAR nets: an intermediate block), signed (no "
                "ReLU), bilinearly upsampled", "Selvaraju et al., ICCV 2017", {"relu": False}),
    "gradcam_relu": ("GradCAM as in the paper: ReLU of the weighted activation map, upsampled",
                     "Selvaraju et al., ICCV 2017", {"relu": True}),
}, parallel=True)


@register("guided_backprop", "gradient with negative signals stopped at every ReLU on the way back",
          "Springenberg et al., ICLR Workshop 2015", parallel=True)
def _guided_backprop(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    from captum.attr import GuidedBackprop

    with _quiet():
        return GuidedBackprop(model).attribute(inputs, target=target)
