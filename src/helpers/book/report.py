"""What chapters say: glued numbers and words for the prose, Markdown tables, and boxes for recorded runs.

Rule of the book: every result in a chapter's prose comes from the run. A code cell computes it and :func:`glue`s it
(myst-nb), the Markdown cites it with ``{glue:text}`name``` (or ``{glue:text}`name:.2f```); a word that depends on
a comparison is glued too (:func:`pick`). Results of other machines appear only in a :func:`recorded_run` box.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence
import numpy as np
import torch
from IPython.display import HTML, Markdown

from ..zoo.spec import ZooSpec


GLUED: dict[str, Any] = {}  # everything glued in this kernel (for exercises and tests)
_CODE_MARK = re.compile(r"`([^`\n]*)`")


def cell(value: Any) -> str:
    """A table cell: ``|`` escaped, so that "p(class | baseline)" or FullGrad's "|x|" cannot split the row."""
    return str(value).replace("\\|", "|").replace("|", "\\|").replace("\n", " ")


def plain(value: Any) -> Any:
    """A Python scalar or string for a tensor / numpy scalar, so that ``{glue:text}`k:.2f``` can format it. A
    string loses its Markdown code marks: ``{glue:text}`` pastes plain text, where a backtick would show as one."""
    if isinstance(value, str):
        return _CODE_MARK.sub(r"\1", value)
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return value


class _Quiet:
    """Mixed into what :func:`glue` returns: as the last expression of a cell it shows nothing (IPython calls
    ``_ipython_display_`` instead of printing a repr), so that a page shows figures, tables and prose only."""

    def _ipython_display_(self) -> None:
        return None


class _QuietStr(_Quiet, str):
    pass


class _QuietInt(_Quiet, int):
    pass


class _QuietFloat(_Quiet, float):
    pass


class Glued(_Quiet, dict):
    """The values that :func:`glue_all` stored, by key (a dict that shows nothing as a cell's last expression)."""


def _quiet(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return value
    return (_QuietStr if isinstance(value, str) else _QuietFloat if isinstance(value, float) else _QuietInt)(value)


def glue(name: str, value: Any) -> Any:
    """Store ``value`` under ``name`` for the chapter's prose (myst-nb glue, not displayed); returns the value
    (strings and numbers as quiet subclasses: a cell that ends with ``glue(…)`` shows no stray output).

    Without myst-nb (e.g. on Colab) the value is only kept in :data:`GLUED`."""
    value = plain(value)
    GLUED[name] = value
    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - the book extra is not installed
        return _quiet(value)
    _glue(name, value, display=False)
    return _quiet(value)


def glue_all(values: Mapping[str, Any], prefix: str = "") -> Glued:
    """:func:`glue` every entry of ``values`` (keys prefixed by ``prefix``); the result shows nothing as the last
    expression of a cell."""
    return Glued({k: glue(prefix + k, v) for k, v in values.items()})


def pick(condition: bool, if_true: str, if_false: str) -> str:
    """The word the run supports: ``pick(b > a, "higher", "lower")``."""
    return if_true if condition else if_false


def recorded_run(path: str | Path, summary: str, rows: Sequence[dict[str, Any]] | None = None,
                 digits: int = 2) -> HTML:
    """A labelled box for results recorded on another machine (``docs/results/*.json``): its date, device, profile
    and commit, a summary sentence and optionally a table. Never this page's result: the box says so."""
    path = Path(path)
    meta = json.loads(path.read_text())
    missing = [k for k in ("date", "device", "profile", "commit") if k not in meta]
    if missing:
        raise ValueError(f"{path.name} lacks {', '.join(missing)}: a recorded run must say when, where and how")
    head = (f"<b>Recorded run, not computed on this page</b> — {html.escape(str(meta['date']))}, "
            f"{html.escape(str(meta['device']))}, profile <code>{html.escape(str(meta['profile']))}</code>, "
            f"commit <code>{html.escape(str(meta['commit']))}</code>, file <code>docs/results/{path.name}</code>.")
    body = f"<p>{head}</p><p>{html.escape(summary)}</p>"
    if rows:
        keys = list(rows[0])
        fmt = lambda v: f"{v:.{digits}f}" if isinstance(v, float) else html.escape(str(v))  # noqa: E731
        body += ("<table><thead><tr>" + "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "</tr></thead><tbody>"
                 + "".join("<tr>" + "".join(f"<td>{fmt(r[k])}</td>" for k in keys) + "</tr>" for r in rows)
                 + "</tbody></table>")
    return HTML(f'<div class="admonition note recorded-run">{body}</div>')


def accuracy_numbers(records: Sequence[dict[str, Any]]) -> dict[str, float | int]:
    """Number of models and the mean, s.d., min and max of their test accuracy (for glue)."""
    acc = np.array([r["test_accuracy"] for r in records], dtype=np.float64)
    return {"n": len(acc), "mean": float(acc.mean()), "sd": float(acc.std()), "min": float(acc.min()),
            "max": float(acc.max())}


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


def methods_table(methods: Sequence[str]) -> Markdown:
    """The registered attribution methods with their defaults and sources."""
    from ..attribution.registry import get_method

    lines = ["| method | what it computes | defaults | source |", "| --- | --- | --- | --- |"]
    for name in methods:
        m = get_method(name)
        defaults = ", ".join(f"{k}={v}" for k, v in m.defaults.items()) or "—"
        if m.stochastic:
            defaults += ", seed (own randomness)"
        lines.append(f"| `{name}` | {cell(m.summary)} | {cell(defaults)} | {cell(m.reference)} |")
    return Markdown("\n".join(lines))


def table(rows: Sequence[dict[str, Any]], digits: int = 3) -> Markdown:
    """A Markdown table of dictionaries with the same keys (floats rounded)."""
    if not rows:
        return Markdown("*(no rows)*")
    keys = list(rows[0])
    fmt = lambda v: f"{v:.{digits}f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(map(cell, keys)) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
    lines += ["| " + " | ".join(cell(fmt(r[k])) for k in keys) + " |" for r in rows]
    return Markdown("\n".join(lines))


def recorded_gpu_run(name: str) -> HTML | Markdown:
    """The :func:`recorded_run` box of a ``docs/results/<name>`` file written by ``benchmarks/gpu_zoo.py``: per
    architecture the zoo, its accuracy and, per method, the SNR and pairwise correlation of that run's definitions."""
    from ..data.settings import repo_root

    root = repo_root()
    path = None if root is None else root / "docs" / "results" / name
    if path is None or not path.is_file():
        return Markdown(f"*(The recorded run `docs/results/{name}` is not part of this installation.)*")
    data = json.loads(path.read_text())
    rows, parts = [], []
    for arch, res in data["archs"].items():
        acc = np.asarray(res["accuracy"], dtype=np.float64)
        parts.append(f"{arch}: {len(acc)} models, mean test accuracy {acc.mean():.1%}")
        rows += [{"architecture": arch, "method": m, "energy SNR": v["energy_snr"], "pairwise ρ": v["pairwise"]}
                 for m, v in res["snr"].items()]
    r = data["recipe"]
    summary = (f"{r['dataset']}, {r['epochs']} epochs; " + "; ".join(parts) + ". SNR definition of that run: "
               f"{data.get('snr_definition', 'see its commit')}.")
    return recorded_run(path, summary, rows)
