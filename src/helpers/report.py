"""Short Markdown reports that chapters display (tables of accuracies, summary numbers)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from IPython.display import Markdown

from .zoo import ZooSpec


def zoo_summary(spec: ZooSpec, records: Sequence[dict[str, Any]], profile: str = "manual",
                device: torch.device | str = "cpu") -> Markdown:
    """Accuracy of every model of the zoo, with its seeds and training time."""
    acc = np.array([r["test_accuracy"] for r in records])
    secs = np.array([r["train_seconds"] for r in records])
    r = spec.recipe
    lines = [
        f"**Zoo** `{spec.arch}` on `{spec.dataset}`, {spec.n_models} models, recipe: {r.epochs} epochs, "
        f"{r.optimizer} lr={r.lr}, batch {r.batch_size}, schedule {r.schedule}, augment {r.augment}"
        f"{'' if r.n_train is None else f', {r.n_train} training images'}; cache key `{spec.key}`; "
        f"profile `{profile}`; device `{device}`.",
        "",
        f"**Test accuracy** mean {acc.mean():.4f} ± {acc.std():.4f} (min {acc.min():.4f}, max {acc.max():.4f}); "
        f"training time per model {secs.mean():.1f} s (as recorded when each model was trained).",
        "",
        "| model | init seed | data seed | test accuracy | train s |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {k} | {rec['init_seed']} | {rec['data_seed']} | {rec['test_accuracy']:.4f} | "
              f"{rec['train_seconds']:.1f} |" for k, rec in enumerate(records)]
    return Markdown("\n".join(lines))


def convergence_summary(curve: torch.Tensor, pairwise: torch.Tensor, preds: torch.Tensor,
                        labels: torch.Tensor) -> Markdown:
    """Numbers behind the convergence figure: single-model agreement and the M needed for a given correlation."""
    mean_curve = curve.mean(0)
    def first_m(th: float) -> str:
        hit = torch.nonzero(mean_curve >= th)
        return str(int(hit[0]) + 1) if len(hit) else f"> {len(mean_curve)}"
    agree = (preds == labels.view(1, -1)).float().mean().item()
    return Markdown("\n".join([
        f"- Mean pairwise correlation between single-model gradients: **{pairwise.mean():.3f}** "
        f"(per image {', '.join(f'{v:.2f}' for v in pairwise.tolist())}).",
        f"- Correlation of one model with the full-zoo mean: **{mean_curve[0]:.3f}**; "
        f"of the mean of 2 models: {mean_curve[min(1, len(mean_curve) - 1)]:.3f}.",
        f"- Models needed for a correlation of 0.9: **{first_m(0.9)}**; for 0.95: {first_m(0.95)}.",
        f"- The models classify {100 * agree:.1f} % of the shown (model, image) pairs correctly.",
    ]))


def methods_table(methods: Sequence[str]) -> Markdown:
    """The registered attribution methods with their defaults and sources."""
    from .attribution import get_method

    lines = ["| method | what it computes | defaults | source |", "| --- | --- | --- | --- |"]
    for name in methods:
        m = get_method(name)
        defaults = ", ".join(f"{k}={v}" for k, v in m.defaults.items()) or "—"
        if m.stochastic:
            defaults += ", seed (own randomness)"
        lines.append(f"| `{name}` | {m.summary} | {defaults} | {m.reference} |")
    return Markdown("\n".join(lines))


def table(rows: Sequence[dict[str, Any]], digits: int = 3) -> Markdown:
    """A Markdown table of dictionaries with the same keys (floats rounded)."""
    if not rows:
        return Markdown("*(no rows)*")
    keys = list(rows[0])
    fmt = lambda v: f"{v:.{digits}f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    return Markdown("\n".join(lines))
