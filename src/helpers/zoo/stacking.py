"""Stacking the weights of models of one architecture for ``torch.func.vmap``: batched gradients over models
and vectorised training.
"""
from __future__ import annotations

import copy
from typing import Sequence
import torch
from torch import nn
from torch.func import stack_module_state



def _same_architecture(models: Sequence[nn.Module]) -> bool:
    first = [(k, v.shape) for k, v in models[0].state_dict().items()]
    return all(type(m) is type(models[0]) and [(k, v.shape) for k, v in m.state_dict().items()] == first
               for m in models[1:])


def stack_models(models: Sequence[nn.Module]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Parameters and buffers of same-architecture models stacked along a new first axis, for
    ``vmap(functional_call(meta_copy(models[0]), …))``; parameters are detached (gradients go to the inputs)."""
    params, buffers = stack_module_state(list(models))
    return {k: v.detach() for k, v in params.items()}, buffers


def meta_copy(model: nn.Module) -> nn.Module:
    """A weightless copy of ``model`` (on the meta device) to call with stacked weights."""
    return copy.deepcopy(model).to("meta")
