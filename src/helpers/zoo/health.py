"""Training health: a model that diverged or learned nothing is never cached or published.

A non-finite loss stops training at once (:func:`check_loss`); after training every model must have finite weights
and a test accuracy above its recipe's floor (:func:`check_trained`; by default chance plus
:data:`ACCURACY_MARGIN`). A failure raises :class:`TrainingFailed` with one line that names the model, what failed
and the likely fix, before anything is written.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .spec import Recipe, ZooSpec, model_name

ACCURACY_MARGIN = 0.1  # the default floor: chance (1/K) plus this


# a random-label model must fit its own permuted training labels above chance plus this. Measured on mnist-5k
# LeNets (chance 0.100): at initialization 0.098–0.112; the default recipe (6 epochs, 4,000 digits) 0.167–0.193;
# 5 epochs on 1,000 digits 0.154–0.177; 1 epoch on 1,000 digits (the smoke recipe) 0.100, which fails: a random-label
# zoo needs more epochs than the smoke recipe's one
RANDOM_LABEL_MARGIN = 0.02


class TrainingFailed(RuntimeError):
    """A model of a zoo failed its health check; the message is one line that names the fix."""


def _fix(recipe: Recipe) -> str:
    """The likely fix for a model that diverged or stayed at chance."""
    if recipe.lr > 0.01:
        return f"try lr ≤ 0.01 (lr={recipe.lr:g})"
    if recipe.optimizer == "sgd":
        return f"try a smaller lr than {recipe.lr:g} or optimizer=adam"
    return f"try a smaller lr than {recipe.lr:g}, or more epochs (epochs={recipe.epochs})"


def where(spec: ZooSpec, seeds: tuple[int, int] | None = None) -> str:
    zoo = f"{spec.arch}/{spec.dataset}"
    return f"model {model_name(*seeds)} of {zoo}" if seeds is not None else f"a model of {zoo}"


def check_loss(loss: torch.Tensor, spec: ZooSpec, seed_pairs: Sequence[tuple[int, int]], epoch: int,
               step: int) -> None:
    """Raise :class:`TrainingFailed` if ``loss`` (a scalar, or one loss per model of ``seed_pairs``) is not
    finite. On CUDA this synchronizes: call it once per epoch there, with the epoch's losses."""
    bad = ~torch.isfinite(loss.detach().reshape(-1))
    if bool(bad.any()):
        k = int(bad.nonzero()[0]) if bad.numel() == len(seed_pairs) else 0
        who = where(spec, tuple(seed_pairs[k])) if len(seed_pairs) and bad.numel() == len(seed_pairs) else (
            where(spec, tuple(seed_pairs[0])) if len(seed_pairs) == 1 else f"the models {_names(seed_pairs)}")
        raise TrainingFailed(f"{who} diverged: the training loss became {loss.detach().reshape(-1)[k].item()} "
                             f"at epoch {epoch + 1}, step {step + 1}: {_fix(spec.recipe)}")


def _names(seed_pairs: Sequence[tuple[int, int]]) -> str:
    names = [model_name(*p) for p in seed_pairs]
    return ", ".join(names[:4]) + (f" … ({len(names)} models)" if len(names) > 4 else "")


def accuracy_floor(recipe: Recipe, num_classes: int) -> float:
    """The recipe's ``min_accuracy``, or chance plus :data:`ACCURACY_MARGIN`."""
    if recipe.min_accuracy is not None:
        return recipe.min_accuracy
    return 1.0 / num_classes + ACCURACY_MARGIN


def finite_weights(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


def random_label_floor(num_classes: int) -> float:
    """The floor of a random-label model's accuracy on its own permuted training labels: chance plus
    :data:`RANDOM_LABEL_MARGIN` (its test accuracy is at chance on purpose and is not checked)."""
    return 1.0 / num_classes + RANDOM_LABEL_MARGIN


def check_trained(model: nn.Module, accuracy: float, spec: ZooSpec, seeds: tuple[int, int], num_classes: int,
                  control: str | None = None, train_accuracy: float | None = None) -> None:
    """Raise :class:`TrainingFailed` unless ``model`` has finite weights and, for a trained zoo, a test accuracy
    above :func:`accuracy_floor`. Control zoos are at chance on the test split on purpose (``control``, default
    ``spec.control``): an ``"untrained"`` model is checked for finite weights only, a ``"random-labels"`` model also
    for ``train_accuracy`` (on its own permuted training labels) above :func:`random_label_floor`, never for the
    test-accuracy floor."""
    control = spec.control if control is None else control
    who = where(spec, seeds)
    if not finite_weights(model):
        what = "at initialization" if control == "untrained" else "after training"
        raise TrainingFailed(f"{who} has non-finite weights {what}: {_fix(spec.recipe)}")
    if control == "random-labels":
        floor = random_label_floor(num_classes)
        if train_accuracy is None or not (math.isfinite(train_accuracy) and train_accuracy > floor):
            got = "no training accuracy" if train_accuracy is None else f"training accuracy {train_accuracy:.3f}"
            raise TrainingFailed(f"{who} (random labels) reached {got} on its own permuted labels, not above the "
                                 f"floor {floor:.3f} (chance {1 / num_classes:.3f} + {RANDOM_LABEL_MARGIN}): "
                                 f"train it longer (epochs={spec.recipe.epochs}) or with more images")
        return
    if control is not None:
        return
    floor = accuracy_floor(spec.recipe, num_classes)
    if not (math.isfinite(accuracy) and accuracy > floor):
        raise TrainingFailed(f"{who} reached test accuracy {accuracy:.3f}, not above the floor {floor:.3f} (chance "
                             f"{1 / num_classes:.3f} + {ACCURACY_MARGIN}): {_fix(spec.recipe)}; or set "
                             f"Recipe(min_accuracy=…) if a weak model is intended")


class LossWatch:
    """Checks every training step's loss: at once on the CPU; on CUDA, where a check waits for the GPU, the steps
    of an epoch are checked together at its end (a NaN stays NaN, so the epoch that produced it is named)."""

    def __init__(self, spec: ZooSpec, seed_pairs: Sequence[tuple[int, int]], device: torch.device) -> None:
        self.spec, self.pairs, self.lazy = spec, list(seed_pairs), device.type == "cuda"
        self.first: torch.Tensor | None = None

    def step(self, loss: torch.Tensor, epoch: int, step: int) -> None:
        if not self.lazy:
            check_loss(loss, self.spec, self.pairs, epoch, step)
        elif self.first is None:
            self.first = loss.detach().float().reshape(-1).clone()
        else:  # keep the first non-finite loss of the epoch
            self.first = torch.where(torch.isfinite(self.first), loss.detach().float().reshape(-1), self.first)

    def end_epoch(self, epoch: int) -> None:
        if self.lazy and self.first is not None:
            check_loss(self.first, self.spec, self.pairs, epoch, -1)
            self.first = None
