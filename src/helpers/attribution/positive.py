"""Positive and signed aggregation and propagation of gradients (Khakzar, Baselizadeh & Navab, 2020).

Khakzar et al. (*Rethinking Positive Aggregation and Propagation of Gradients in Gradient-based Saliency Methods*,
ICML Workshop 2020) sort gradient methods by what they do with negative gradient information:

- **positive aggregation**: a layer's gradients are pooled after dropping or flipping their negative part —
  GradCAM++ (ReLU of the gradients in the channel weights, Chattopadhay et al. 2018) and FullGrad (absolute value of
  every bias-gradient term, Srinivas & Fleuret 2019);
- **positive propagation**: only positive signals travel backwards — LRP's z⁺ rule (Bach et al. 2015), RectGrad
  (Kim et al. 2019) and Guided Backprop (already in :mod:`helpers.attribution`).

Every positive method is registered next to a signed variant that keeps the sign: ``gradcam_pp_signed``,
``fullgrad_signed``, ``lrp_epsilon`` (next to ``lrp_zplus``), and the plain ``gradient`` / ``input_x_gradient``
(next to ``rectgrad`` and ``guided_backprop``). All are batched over images and explain the target **logit**.

GradCAM++ and FullGrad are written here rather than taken from ``pytorch_grad_cam``: its outputs are min–max scaled
per image (the signed variants and a completeness check need the raw terms), its FullGrad skips the biases of linear
layers, and it goes through NumPy and OpenCV. tests/test_positive.py checks ours against it where they overlap (the
GradCAM++ channel weights, FullGrad's convolution and BatchNorm terms). LRP uses zennit's rules and hooks; its
canonizers merge each BatchNorm into the convolution before it and give the residual additions a rule, so relevance
is conserved through BatchNorm and skip connections alike.
"""
from __future__ import annotations

import contextlib
from typing import Iterator
import torch
import torch.nn.functional as F
from torch import nn

from .captum_methods import cam_layer
from .registry import register, register_variants


@contextlib.contextmanager
def captured(module: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Context manager: ``out["a"]`` is the output of ``module`` in the forward passes run inside it."""
    out: dict[str, torch.Tensor] = {}
    handle = module.register_forward_hook(lambda _m, _i, o: out.__setitem__("a", o))
    try:
        yield out
    finally:
        handle.remove()


def _spread(cam: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """(N, H', W') map -> (N, C, H, W): bilinear upsampling, spread over channels so the channel sum is the map."""
    c = inputs.shape[1]
    up = F.interpolate(cam[:, None], size=tuple(inputs.shape[-2:]), mode="bilinear", align_corners=False)
    return up.expand(-1, c, -1, -1) / c


def layer_gradients(model: nn.Module, layer: nn.Module, inputs: torch.Tensor,
                    target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations A and gradients ∂z_target/∂A of ``layer``, (N, K, h, w) each, all images in one pass."""
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad(), captured(layer) as out:
        logits = model(x)
        act = out["a"]
        (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), act)
    return act.detach(), grad.detach()


def gradcam_pp_weights(act: torch.Tensor, grad: torch.Tensor, positive: bool = True,
                       eps: float = 1e-6) -> torch.Tensor:
    """GradCAM++ channel weights (Chattopadhay et al., WACV 2018, eq. 19 with the logit as score), (N, K).

    α_ij = g_ij² / (2 g_ij² + Σ_ab A_ab · g_ij³ + eps) (0 where g_ij = 0) and w = Σ_ij α_ij · ReLU(g_ij). With
    ``positive=False`` the ReLU is dropped, w = Σ_ij α_ij · g_ij: Khakzar et al.'s signed aggregation."""
    g2 = grad ** 2
    alpha = g2 / (2 * g2 + act.sum((-2, -1), keepdim=True) * g2 * grad + eps)
    alpha = torch.where(grad != 0, alpha, torch.zeros_like(alpha))
    return (alpha * (grad.clamp_min(0) if positive else grad)).sum((-2, -1))


def gradcam_pp(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, positive: bool = True) -> torch.Tensor:
    """GradCAM++ map of ``model.gradcam_layer``: Σ_k w_k A^k, with the paper's ReLU when ``positive``."""
    act, grad = layer_gradients(model, cam_layer(model), inputs, target)
    cam = (gradcam_pp_weights(act, grad, positive)[:, :, None, None] * act).sum(1)
    return _spread(cam.clamp_min(0) if positive else cam, inputs)


register_variants(gradcam_pp, {
    "gradcam_pp": ("GradCAM++: channel weights from α-weighted positive gradients (ReLU(g)), ReLU of the map",
                   "Chattopadhay et al., WACV 2018", {"positive": True}),
    "gradcam_pp_signed": ("GradCAM++ with signed aggregation: α-weighted signed gradients, no ReLU",
                          "Khakzar, Baselizadeh & Navab 2020; Chattopadhay et al. 2018", {"positive": False}),
})


def _effective_bias(module: nn.Module) -> torch.Tensor | None:
    """The bias a module adds: its ``bias``, or for BatchNorm in eval mode β − μ·γ/√(σ² + ε)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if module.training:
            raise ValueError("FullGrad needs BatchNorm in eval mode (its bias depends on the batch otherwise): "
                             "call model.eval()")
        var = module.running_var if module.running_var is not None else torch.ones(module.num_features)
        mean = module.running_mean if module.running_mean is not None else torch.zeros(module.num_features)
        gamma = module.weight if module.weight is not None else torch.ones_like(mean)
        beta = module.bias if module.bias is not None else torch.zeros_like(mean)
        return (beta - mean * gamma / torch.sqrt(var + module.eps)).detach()
    if isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
        return module.bias.detach()
    return None


def fullgrad_terms(model: nn.Module, inputs: torch.Tensor,
                   target: torch.Tensor) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    """FullGrad's full-gradient decomposition (Srinivas & Fleuret, NeurIPS 2019): the input term ∇_x z ⊙ x
    (N, C, H, W) and, for every module with a bias (convolutions, linear layers, BatchNorm), its bias term
    ∇_b z ⊙ b at each position ((N, K, h, w) for convolutions and BatchNorm, (N, K) for linear layers).

    For a piecewise-linear network (ReLU, max-pooling, BatchNorm in eval mode) the terms sum to the logit."""
    biased = [(name, m, b) for name, m in model.named_modules() if (b := _effective_bias(m)) is not None]
    outs: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda _m, _i, o, name=name: outs.__setitem__(name, o))
               for name, m, _ in biased]
    x = inputs.detach().clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            z = model(x).gather(1, target[:, None]).sum()
            grads = torch.autograd.grad(z, [x, *[outs[name] for name, _, _ in biased]], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    terms = []
    for (name, _, b), g in zip(biased, grads[1:]):
        if g is None:
            continue
        shape = (1, -1) + (1,) * (g.ndim - 2)
        terms.append((name, (g * b.view(shape)).detach()))
    return (grads[0] * inputs).detach(), terms


def _psi(t: torch.Tensor, positive: bool) -> torch.Tensor:
    """FullGrad's post-processing ψ per image: |·| then min–max scaling to [0, 1] (the paper's code), or, signed,
    division by the largest |value| (keeps the sign and 0)."""
    flat = t.flatten(1)
    if positive:
        flat = flat.abs()
        flat = flat - flat.amin(1, keepdim=True)
        flat = flat / (flat.amax(1, keepdim=True) + 1e-6)
    else:
        flat = flat / (flat.abs().amax(1, keepdim=True) + 1e-6)
    return flat.view_as(t)


def fullgrad(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, positive: bool = True) -> torch.Tensor:
    """FullGrad saliency: ψ(∇_x z ⊙ x) summed over channels plus, for every spatial bias term, ψ(∇_b z ⊙ b) summed
    over channels and bilinearly upsampled (idiap/fullgrad-saliency). ``positive=False``: Khakzar's signed ψ."""
    grad_x, terms = fullgrad_terms(model, inputs, target)
    cam = _psi(grad_x, positive).sum(1)
    size = tuple(inputs.shape[-2:])
    for _, t in terms:
        if t.ndim == 4:
            cam = cam + F.interpolate(_psi(t, positive), size=size, mode="bilinear", align_corners=True).sum(1)
    c = inputs.shape[1]
    return cam[:, None].expand(-1, c, -1, -1) / c


register_variants(fullgrad, {
    "fullgrad": ("FullGrad: |input-gradient ⊙ input| plus |bias-gradient ⊙ bias| of every layer, each scaled to [0, 1] "
                 "and upsampled", "Srinivas & Fleuret, NeurIPS 2019", {"positive": True}),
    "fullgrad_signed": ("FullGrad with signed aggregation: the same terms without the absolute value, each divided by "
                        "its largest |value|", "Khakzar, Baselizadeh & Navab 2020; Srinivas & Fleuret 2019",
                        {"positive": False}),
})


def _batchnorm_pairs(model: nn.Module) -> list[tuple[list[str], str]]:
    """(linear layer name, BatchNorm name) for every BatchNorm that directly follows a convolution or linear layer
    whose output it alone reads (found by tracing the model with torch.fx), to be merged into that layer."""
    import torch.fx

    modules = dict(model.named_modules())
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in modules.values()):
        return []
    pairs = []
    for node in torch.fx.symbolic_trace(model).graph.nodes:
        if node.op == "call_module" and isinstance(modules[node.target], nn.modules.batchnorm._BatchNorm):
            src = node.args[0]
            if (getattr(src, "op", None) == "call_module" and isinstance(modules[src.target], (nn.Conv2d, nn.Linear))
                    and len(src.users) == 1):
                pairs.append(([src.target], node.target))
    return pairs  # any other BatchNorm (e.g. after a max-pool) passes relevance through unchanged


def _residual_canonizer():
    """zennit canonizer for helpers.models' BasicBlock and Bottleneck: the skip addition goes through a
    zennit ``Sum`` module, so the Norm rule splits relevance between the branches in proportion to their inputs."""
    from zennit.canonizers import AttributeCanonizer
    from zennit.layer import Sum

    from ..zoo.architectures import BasicBlock, Bottleneck

    def basic(self: BasicBlock, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(self.canonizer_sum(torch.stack([out, self.shortcut(x)], dim=-1)))

    def bottleneck(self: Bottleneck, x: torch.Tensor) -> torch.Tensor:
        out = self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))
        out = self.bn3(self.conv3(out))
        return self.relu3(self.canonizer_sum(torch.stack([out, self.shortcut(x)], dim=-1)))

    def attribute_map(_name: str, module: nn.Module) -> dict | None:
        if isinstance(module, Bottleneck):
            return {"forward": bottleneck.__get__(module), "canonizer_sum": Sum()}
        if isinstance(module, BasicBlock):
            return {"forward": basic.__get__(module), "canonizer_sum": Sum()}
        return None

    return AttributeCanonizer(attribute_map)


def lrp(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, rule: str, epsilon: float) -> torch.Tensor:
    """Layer-wise relevance propagation (Bach et al., PLoS ONE 2015) with one rule on every convolution and linear
    layer: ``"epsilon"`` (signed) or ``"zplus"`` (z⁺ = α1β0, positive contributions only). ReLUs pass relevance,
    max-pooling routes it to the maximum, average pooling and skip additions split it in proportion (Norm rule)."""
    from zennit.canonizers import NamedMergeBatchNorm
    from zennit.composites import LayerMapComposite
    from zennit.rules import Epsilon, Norm, Pass, ZPlus
    from zennit.types import Activation, AvgPool, BatchNorm
    from zennit.layer import Sum

    if rule not in ("epsilon", "zplus"):
        raise ValueError(f"unknown LRP rule {rule!r}: use 'epsilon' or 'zplus'")
    main = Epsilon(epsilon=epsilon) if rule == "epsilon" else ZPlus()
    composite = LayerMapComposite(
        layer_map=[(Activation, Pass()), (Sum, Norm()), (AvgPool, Norm()), (BatchNorm, Pass()),
                   ((nn.Conv2d, nn.Linear), main)],
        canonizers=[NamedMergeBatchNorm(_batchnorm_pairs(model)), _residual_canonizer()])
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad(), composite.context(model) as modified:
        z = modified(x)
        onehot = torch.zeros_like(z).scatter_(1, target[:, None], 1.0)
        (relevance,) = torch.autograd.grad(z, x, grad_outputs=z * onehot)
    return relevance.detach()


@register("lrp_epsilon", "LRP with the ε rule on every layer (signed relevance; BatchNorm merged into its "
          "convolution)", "Bach et al., PLoS ONE 2015", epsilon=0.25)
def _lrp_epsilon(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, epsilon: float) -> torch.Tensor:
    return lrp(model, inputs, target, "epsilon", epsilon)


@register("lrp_zplus", "LRP with the z⁺ (α1β0) rule on every layer: only positive contributions propagate",
          "Bach et al., PLoS ONE 2015; Montavon et al. 2017")
def _lrp_zplus(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return lrp(model, inputs, target, "zplus", 0.0)


@contextlib.contextmanager
def rectified(model: nn.Module, q: float) -> Iterator[nn.Module]:
    """Context manager: every ``nn.ReLU`` of ``model`` backpropagates with RectGrad's rule (Kim et al. 2019):
    the gradient g at a unit with output a passes only if a > 0 (the ReLU's own gate) and a·g ≥ τ, τ being the
    ``q``-th percentile of a·g over the layer's units, per image. q = 0 keeps every active unit: the plain gradient."""
    if not 0 <= q <= 100:
        raise ValueError(f"q={q}: use a percentile between 0 and 100 (Kim et al. use 98)")
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError(f"{type(model).__name__} has no nn.ReLU module: RectGrad rectifies gradients at ReLUs")

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return _RectGradReLU.apply(output, q)

    handles = [m.register_forward_hook(hook) for m in relus]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


class _RectGradReLU(torch.autograd.Function):
    """Identity on a ReLU's output whose backward applies RectGrad's importance threshold."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, q: float) -> torch.Tensor:
        ctx.save_for_backward(a)
        ctx.q = q
        return a.view_as(a)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (a,) = ctx.saved_tensors
        score = (a * grad).flatten(1)
        tau = torch.quantile(score, ctx.q / 100, dim=1, keepdim=True)
        keep = (score >= tau) & (a.flatten(1) > 0)
        return grad * keep.view_as(grad), None


@register("rectgrad", "RectGrad: input × gradient propagated only through units whose activation × gradient is in "
          "the top (100 − q) % of their layer", "Kim et al. 2019", q=98.0)
def _rectgrad(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, q: float) -> torch.Tensor:
    from .gradients import logit_gradient

    with rectified(model, q):
        return inputs * logit_gradient(model, inputs, target)
