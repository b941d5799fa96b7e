"""Live CLEAR exploration with ipywidgets (needs a running kernel: Colab or Jupyter, not the static book).

Pick an image, the number of models M (the mean of models 0…M−1, or one model alone), a class and the focus
(positive or negative); the unit-start maps and logits of the chosen image are computed on first use for every model
and cached, so moving the controls is instant afterwards. CLEAR: Kumar, Wong & Taylor, CVPR Workshops 2017;
marginalization: Woerl et al., CVPR 2023.
"""
from __future__ import annotations

from typing import Callable, Sequence
import numpy as np
import torch
from torch import nn

from .common import png_bytes
from ..attribution import clear
from ..evaluation import clear_stats
from ..zoo import outputs


ALL = -1  # "class" value meaning: the CLEAR map over all classes


class ClearExplorer:
    """An ipywidgets panel: image, M (or one model alone), class, focus → input | map picture and a line of numbers.

    ``start`` and ``how`` as in :func:`helpers.clear.marginalize`; ``denormalize`` maps a normalized batch back to
    [0, 1] for display (e.g. ``Dataset.denormalize``).
    """

    def __init__(self, models: Sequence[nn.Module], x: torch.Tensor, labels: torch.Tensor,
                 class_names: Sequence[str], backend: str = "deconvolution",
                 denormalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 palette: Sequence[str] = clear.PALETTE, scale: int = 8, start: str = "response",
                 how: str = "explanations") -> None:
        import ipywidgets as w

        clear.get_backend(backend), clear.check_start(start), clear.check_marginalization(how)
        if len(models) == 0 or x.ndim != 4 or labels.shape != (x.shape[0],):
            raise ValueError("ClearExplorer needs ≥ 1 model, images (N, C, H, W) and one label per image: "
                             "pass zoo.models, ds.test.x[idx], ds.test.y[idx]")
        self.models, self.x, self.labels = list(models), x, labels
        self.class_names, self.backend, self.palette, self.scale = list(class_names), backend, palette, scale
        self.start, self.how = start, how
        self.denormalize = denormalize or (lambda t: t)
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.image = w.IntSlider(0, 0, x.shape[0] - 1, description="image")
        self.n_models = w.IntSlider(1, 1, len(self.models), description="M")
        self.model = w.IntSlider(0, 0, len(self.models) - 1, description="model")
        self.single = w.Checkbox(False, description="one model alone (not the mean of models 0…M−1)")
        self.cls = w.Dropdown(options=[("all classes (CLEAR)", ALL)] + [(n, k) for k, n in enumerate(class_names)],
                              value=ALL, description="class")
        self.sign = w.Dropdown(options=[("positive focus", "positive"), ("negative focus", "negative")],
                               value="positive", description="focus")
        self.picture = w.Image(format="png")
        self.info = w.HTML()
        for control in (self.image, self.n_models, self.model, self.single, self.cls, self.sign):
            control.observe(self.update, names="value")
        self.widget = w.VBox([w.HBox([self.image, self.n_models, self.model]),
                              w.HBox([self.cls, self.sign, self.single]), self.picture, self.info])
        self.update()

    def responses(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, K, H, W) unit-start maps and (M, K) logits of image ``i`` for every model (computed once)."""
        if i not in self._cache:
            xi = self.x[i:i + 1]
            unit = clear.per_model_responses(self.models, xi, self.backend, start="unit")[:, 0]
            self._cache[i] = (unit, outputs.zoo_logits(self.models, xi)[:, 0])
        return self._cache[i]

    def update(self, change: object = None) -> None:
        """Recompute the picture and the numbers for the current controls (the widgets' callback)."""
        i, m, k, sign = self.image.value, self.n_models.value, self.cls.value, self.sign.value
        unit, z = self.responses(i)
        sel = slice(self.model.value, self.model.value + 1) if self.single.value else slice(0, m)
        resp, logits = clear.marginalize(unit[sel], z[sel], self.start, self.how), z[sel].mean(0)
        if k == ALL:
            rgb = clear.render_focus(resp, self.palette, sign)
        else:  # one class: its own map in its own colour (its negative part for the negative focus)
            own = resp[k] if sign == "positive" else -resp[k]
            rgb = clear.render(torch.full(resp.shape[-2:], k, dtype=torch.long), own, self.palette)
        img = self.denormalize(self.x[i:i + 1])[0].detach().cpu()
        img = img.expand(3, *img.shape[-2:]) if img.shape[0] == 1 else img
        gap = np.ones((rgb.shape[0], 1, 3), dtype=np.float32)
        self.picture.value = png_bytes(np.concatenate([img.permute(1, 2, 0).numpy(), gap, rgb], axis=1), self.scale)
        stats = clear_stats.image_stats(resp[None], logits[None], self.labels[i:i + 1])
        shares = stats.shares[0] if sign == "positive" else stats.neg_shares[0]
        top = shares.topk(min(3, len(self.class_names)))
        which = f"model {self.model.value}" if self.single.value else f"mean of models 0–{m - 1}"
        self.info.value = (f"{which} ({self.start} start): true <b>{self.class_names[int(self.labels[i])]}</b>, "
                           f"predicted <b>{self.class_names[int(stats.pred[0])]}</b>, second-best "
                           f"{self.class_names[int(stats.second[0])]}; largest {sign} focus shares: "
                           + ", ".join(f"{self.class_names[int(c)]} {100 * float(v):.0f} %"
                                       for v, c in zip(top.values, top.indices)))


def explore(models: Sequence[nn.Module], x: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str],
            **kwargs) -> ClearExplorer:
    """Build a :class:`ClearExplorer` and display it."""
    from IPython.display import display

    panel = ClearExplorer(models, x, labels, class_names, **kwargs)
    display(panel.widget)
    return panel
