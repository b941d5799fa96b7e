"""Plain gradients of the target logit with respect to the pixels (Simonyan et al. 2014) and input × gradient
(Shrikumar et al. 2016): the logit-by-image gradients that Woerl et al. (CVPR 2023) marginalize over seeds.
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import register


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
