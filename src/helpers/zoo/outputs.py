"""What a zoo's models output: logits batched over images, every model's logits (M, N, K), accuracy, classes
ranked by the zoo's mean logit, and the mean-logit ensemble as a module.
"""
from __future__ import annotations

from typing import Sequence
import torch
from torch import nn



class MeanLogit(nn.Module):
    """The ensemble whose logit is the mean of its members' logits (its maps are the "ensemble's map")."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)


@torch.no_grad()
def logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The model's logits for every image of ``x``, ``batch_size`` images at a time, without autograd."""
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def zoo_logits(models: Sequence[nn.Module], x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Every model's logits for every image of ``x``: (M, N, K), without autograd."""
    if len(models) == 0:
        raise ValueError("no models given: pass a non-empty list (e.g. load_zoo(spec).models)")
    return torch.stack([logits(m, x, batch_size) for m in models])


def ranked_classes(models: Sequence[nn.Module], x: torch.Tensor, first: torch.Tensor, n: int) -> torch.Tensor:
    """(N, n) classes per image: ``first[i]`` (e.g. the true class), then the others by the zoo's mean logit, highest
    first ("runner-up", "third", …)."""
    mean = zoo_logits(models, x).mean(0)
    return mean.scatter(1, first.view(-1, 1).to(mean.device), torch.inf).argsort(1, descending=True)[:, :n]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    model.eval()
    return (logits(model, x, batch_size).argmax(1) == y).sum().item() / max(1, len(y))
