"""Attribution methods behind one call: ``attribute(method, model, inputs, target)``.

Every method returns a tensor of the inputs' shape (N, C, H, W), computed batched over the N images, with
``target`` the class whose **logit** (pre-softmax score) is explained. Methods are registered by name in
:data:`METHODS` with a one-line summary and the paper they come from, so chapters can list them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

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


METHODS: dict[str, Method] = {}


def register(name: str, summary: str, reference: str, stochastic: bool = False) -> Callable[[MethodFn], MethodFn]:
    """Decorator adding ``fn(model, inputs, target, **kwargs) -> Tensor`` to :data:`METHODS`."""

    def deco(fn: MethodFn) -> MethodFn:
        METHODS[name] = Method(name, fn, summary, reference, stochastic)
        return fn

    return deco


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown attribution method {name!r}: choose one of {', '.join(METHODS)}")
    return METHODS[name]


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
    out = m.fn(model, inputs, t, **kwargs)
    return out.detach()


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
