"""Live CLEAR exploration with ipywidgets (needs a running kernel: Colab or Jupyter, not the static book).

Pick an image, the number of models M (mean of the first M, or model M alone) and a class; the maps of the chosen
image are computed on first use for every model and cached, so moving the sliders is instant afterwards.
CLEAR: Kumar, Wong & Taylor, CVPR Workshops 2017; marginalization: Woerl et al., CVPR 2023.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from . import clear
from .viz import png_bytes

ALL = -1  # "class" value meaning: the CLEAR map over all classes


class ClearExplorer:
    """An ipywidgets panel: image, M (or single model M), class → input | map picture and a line of numbers.

    ``denormalize`` maps a normalised batch back to [0, 1] for display (e.g. ``Dataset.denormalize``).
    """

    def __init__(self, models: Sequence[nn.Module], x: torch.Tensor, labels: torch.Tensor,
                 class_names: Sequence[str], backend: str = "deconvolution",
                 denormalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 palette: Sequence[str] = clear.PALETTE, scale: int = 8) -> None:
        import ipywidgets as w

        clear.get_backend(backend)
        if len(models) == 0 or x.ndim != 4 or labels.shape != (x.shape[0],):
            raise ValueError("ClearExplorer needs ≥ 1 model, images (N, C, H, W) and one label per image: "
                             "pass zoo.models, ds.test.x[idx], ds.test.y[idx]")
        self.models, self.x, self.labels = list(models), x, labels
        self.class_names, self.backend, self.palette, self.scale = list(class_names), backend, palette, scale
        self.denormalize = denormalize or (lambda t: t)
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.image = w.IntSlider(0, 0, x.shape[0] - 1, description="image")
        self.n_models = w.IntSlider(1, 1, len(self.models), description="M")
        self.single = w.Checkbox(False, description="model M alone (not the mean of the first M)")
        self.cls = w.Dropdown(options=[("all classes (CLEAR)", ALL)] + [(n, k) for k, n in enumerate(class_names)],
                              value=ALL, description="class")
        self.picture = w.Image(format="png")
        self.info = w.HTML()
        for control in (self.image, self.n_models, self.single, self.cls):
            control.observe(self.update, names="value")
        self.widget = w.VBox([w.HBox([self.image, self.n_models]), w.HBox([self.cls, self.single]),
                              self.picture, self.info])
        self.update()

    def responses(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, K, H, W) responses and (M, K) logits of image ``i`` for every model (computed once)."""
        if i not in self._cache:
            xi = self.x[i:i + 1]
            r = clear.per_model_responses(self.models, xi, self.backend)[:, 0]
            with torch.no_grad():
                z = torch.stack([m(xi)[0] for m in self.models])
            self._cache[i] = (r, z)
        return self._cache[i]

    def update(self, change: object = None) -> None:
        """Recompute the picture and the numbers for the current controls (the widgets' callback)."""
        i, m, k = self.image.value, self.n_models.value, self.cls.value
        r, z = self.responses(i)
        sel = slice(m - 1, m) if self.single.value else slice(0, m)
        resp, logits = r[sel].mean(0), z[sel].mean(0)
        if k == ALL:
            rgb = clear.render(clear.dominant_class(resp), clear.dominant_response(resp), self.palette)
        else:  # one class: its own map in its own colour
            rgb = clear.render(torch.full(resp.shape[-2:], k, dtype=torch.long), resp[k], self.palette)
        img = self.denormalize(self.x[i:i + 1])[0].detach().cpu()
        img = img.expand(3, *img.shape[-2:]) if img.shape[0] == 1 else img
        gap = np.ones((rgb.shape[0], 1, 3), dtype=np.float32)
        self.picture.value = png_bytes(np.concatenate([img.permute(1, 2, 0).numpy(), gap, rgb], axis=1), self.scale)
        stats = clear.image_stats(resp[None], logits[None], self.labels[i:i + 1])
        top = stats.shares[0].topk(min(3, len(self.class_names)))
        which = f"model {m}" if self.single.value else f"mean of models 1–{m}"
        self.info.value = (f"{which}: true <b>{self.class_names[int(self.labels[i])]}</b>, predicted "
                           f"<b>{self.class_names[int(stats.pred[0])]}</b>, second-best "
                           f"{self.class_names[int(stats.second[0])]}; largest CLEAR shares: "
                           + ", ".join(f"{self.class_names[int(c)]} {100 * float(v):.0f} %"
                                       for v, c in zip(top.values, top.indices)))


def explore(models: Sequence[nn.Module], x: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str],
            **kwargs) -> ClearExplorer:
    """Build a :class:`ClearExplorer` and display it."""
    from IPython.display import display

    panel = ClearExplorer(models, x, labels, class_names, **kwargs)
    display(panel.widget)
    return panel
